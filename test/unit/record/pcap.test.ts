import t from 'tap';
import fc from 'fast-check';
import {
  PCAP_GLOBAL_HEADER_SIZE,
  PCAP_IPV4_PREFIX_SIZE,
  PCAP_IPV6_PREFIX_SIZE,
  pcapGlobalHeader,
  pcapRecordPrefix,
} from '../../../src/record/pcap.ts';
import { checksumVerifies, decodeRecord } from '../../helpers/pcap-reader.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]+/g, ''), 'hex');

const RTP = Buffer.concat([hex('80 00 00 01 00 00 00 a0 00 00 12 34'), Buffer.alloc(160, 0xd5)]);

t.test(
  'pcapGlobalHeader() is the 24-byte little-endian header of docs/protocol.md 6.5',
  async (t) => {
    const want = hex(`
    d4 c3 b2 a1 | 02 00 | 04 00 | 00 00 00 00 | 00 00 00 00 | ff ff 00 00 | 01 00 00 00`);
    const got = pcapGlobalHeader();
    t.equal(got.length, PCAP_GLOBAL_HEADER_SIZE);
    t.same(got, want);
  },
);

t.test('pcapRecordPrefix() builds an IPv4 record byte for byte', async (t) => {
  const packet = hex('80 08 00 07 00 00 03 20 de ad be ef 01 02 03'); // 15 bytes: odd length
  const prefix = pcapRecordPrefix(
    packet,
    { address: '192.0.2.10', port: 40000 },
    { address: '198.51.100.1', port: 35000 },
    4,
    1_700_000_000_123.456,
    0x1234,
  );
  t.ok(prefix);
  if (prefix === undefined) return;
  t.equal(prefix.length, PCAP_IPV4_PREFIX_SIZE);
  const captured = 14 + 20 + 8 + packet.length; // 57 = 0x39
  t.same(
    prefix.subarray(0, 16),
    hex('00 f1 53 65 | 40 e2 01 00 | 39 00 00 00 | 39 00 00 00'),
    'record header',
  );
  t.same(
    prefix.subarray(16, 30),
    hex('00 00 c6 33 64 01 | 00 00 c0 00 02 0a | 08 00'),
    'ethernet: dst, src, type',
  );
  const ip = prefix.subarray(30, 50);
  t.same(
    ip.subarray(0, 10),
    hex('45 00 00 2b 12 34 00 00 7f 11'),
    'ver/ihl, tos, len 43, id, frag, ttl, proto',
  );
  t.same(ip.subarray(12, 20), hex('c0 00 02 0a c6 33 64 01'), 'addresses');
  t.same(prefix.subarray(50, 56), hex('9c 40 88 b8 00 17'), 'udp ports and length 23');

  const rec = decodeRecord(Buffer.concat([prefix, packet]));
  t.equal(rec.inclLen, captured);
  t.equal(rec.origLen, captured);
  t.equal(rec.sec, 1_700_000_000);
  t.equal(rec.usec, 123_456);
  t.ok(rec.ipChecksumOk, 'IPv4 header checksum verifies');
  t.ok(rec.udpChecksumOk, 'UDP checksum verifies');
  t.not(rec.udpChecksum, 0);
  t.same(rec.payload, packet);
});

t.test('pcapRecordPrefix() builds an IPv6 record with a valid UDP checksum', async (t) => {
  const src = '2001:db8:1:2:3:4:5:6';
  const dst = 'fe80::a:b:c:d';
  const prefix = pcapRecordPrefix(
    RTP,
    { address: src, port: 5004 },
    { address: dst, port: 6000 },
    6,
    1000.5,
    7,
  );
  t.ok(prefix);
  if (prefix === undefined) return;
  t.equal(prefix.length, PCAP_IPV6_PREFIX_SIZE);
  const rec = decodeRecord(Buffer.concat([prefix, RTP]));
  t.equal(rec.family, 6);
  t.equal(rec.ethertype, 0x86dd);
  t.same(
    prefix.subarray(30, 38),
    hex('60 00 00 00 | 00 b4 | 11 | 40'),
    'version, payload length 180, next 17, hop 64',
  );
  t.same(rec.src, hex('20010db8000100020003000400050006'));
  t.same(rec.dst, hex('fe80000000000000000a000b000c000d'));
  t.equal(rec.ttl, 64);
  t.equal(rec.srcPort, 5004);
  t.equal(rec.dstPort, 6000);
  t.equal(rec.udpLength, 8 + RTP.length);
  t.equal(rec.inclLen, 14 + 40 + 8 + RTP.length);
  t.equal(rec.sec, 1);
  t.equal(rec.usec, 500);
  t.ok(rec.udpChecksumOk, 'UDP checksum verifies over the IPv6 pseudo-header');
  // MAC: address bytes 0..5, then bytes 6..15 XOR-ed into MAC byte i % 6.
  const mac = (a: Buffer): Buffer => {
    const m = Buffer.from(a.subarray(0, 6));
    for (let i = 6; i < 16; i++) m[i % 6] = (m[i % 6] ?? 0) ^ (a[i] ?? 0);
    return m;
  };
  t.same(rec.srcMac, mac(rec.src));
  t.same(rec.dstMac, mac(rec.dst));
  // 2001:0db8:0001:0002:0003:0004:0005:0006 = 20 01 0d b8 00 01 | 00 02 00 03 00 04 | 00 05 00 06,
  // worked by hand: 20^00^00=20 01^02^05=06 0d^00^00=0d b8^03^06=bd 00^00=00 01^04=05
  t.same(rec.srcMac, hex('20 06 0d bd 00 05'));
});

t.test(
  'pcapRecordPrefix() writes IPv4 MACs as 00:00:a:b:c:d and uses the id modulo 2^16',
  async (t) => {
    const prefix = pcapRecordPrefix(
      RTP,
      { address: '10.1.2.3', port: 1 },
      { address: '10.4.5.6', port: 2 },
      4,
      0,
      0x1fffe,
    );
    const rec = decodeRecord(Buffer.concat([prefix ?? Buffer.alloc(0), RTP]));
    t.same(rec.dstMac, hex('0000 0a04 0506'));
    t.same(rec.srcMac, hex('0000 0a01 0203'));
    t.equal(rec.ipId, 0xfffe);
    t.equal(rec.ttl, 127);
    t.equal(rec.protocol, 17);
  },
);

t.test('pcapRecordPrefix() returns undefined for what it cannot represent', async (t) => {
  const a = { address: '10.0.0.1', port: 1 };
  const b6 = { address: '::1', port: 1 };
  t.equal(pcapRecordPrefix(RTP, { address: 'nonsense', port: 1 }, a, 4, 0, 0), undefined);
  t.equal(pcapRecordPrefix(RTP, a, { address: '10.0.0', port: 1 }, 4, 0, 0), undefined);
  t.equal(pcapRecordPrefix(RTP, b6, a, 4, 0, 0), undefined, 'IPv6 address in an IPv4 record');
  t.equal(pcapRecordPrefix(RTP, a, { address: '10.0.0.2', port: 70000 }, 4, 0, 0), undefined);
  t.equal(
    pcapRecordPrefix(Buffer.alloc(65508), a, a, 4, 0, 0),
    undefined,
    'IPv4 total length overflow',
  );
  t.ok(pcapRecordPrefix(Buffer.alloc(65507), a, a, 4, 0, 0));
  t.equal(pcapRecordPrefix(Buffer.alloc(65528), b6, b6, 6, 0, 0), undefined, 'UDP length overflow');
  t.ok(pcapRecordPrefix(Buffer.alloc(65527), b6, b6, 6, 0, 0));
  t.ok(
    pcapRecordPrefix(RTP, a, a, 6, 0, 0),
    'IPv4 text in an IPv6 record becomes the mapped address',
  );
});

t.test('pcapRecordPrefix() clamps odd times instead of throwing', async (t) => {
  for (const ms of [Number.NaN, -5, Number.POSITIVE_INFINITY, 2 ** 53]) {
    const p = pcapRecordPrefix(
      RTP,
      { address: '10.0.0.1', port: 1 },
      { address: '10.0.0.2', port: 2 },
      4,
      ms,
      0,
    );
    t.ok(p, String(ms));
  }
});

t.test('pcapRecordPrefix() checksums verify for any packet (property)', async (t) => {
  const v4 = fc.ipV4();
  const v6 = fc.ipV6();
  const port = fc.integer({ min: 0, max: 65535 });
  fc.assert(
    fc.property(
      fc.boolean(),
      v4,
      v4,
      v6,
      v6,
      port,
      port,
      fc.uint8Array({ maxLength: 1500 }),
      fc.integer({ min: 0, max: 0xffff }),
      (isV4, a4, b4, a6, b6, sp, dp, bytes, id) => {
        const packet = Buffer.from(bytes);
        const family = isV4 ? 4 : 6;
        const prefix = pcapRecordPrefix(
          packet,
          { address: isV4 ? a4 : a6, port: sp },
          { address: isV4 ? b4 : b6, port: dp },
          family,
          1_600_000_000_000,
          id,
        );
        if (prefix === undefined) return false;
        const rec = decodeRecord(Buffer.concat([prefix, packet]));
        return (
          rec.ipChecksumOk &&
          rec.udpChecksumOk &&
          rec.udpChecksum !== 0 &&
          rec.srcPort === sp &&
          rec.dstPort === dp &&
          rec.inclLen === prefix.length - 16 + packet.length &&
          rec.payload.equals(packet) &&
          (!isV4 || rec.ipId === id)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random records verified');
});

t.test('checksumVerifies() (test helper) accepts RFC 1071 example data', async (t) => {
  // RFC 1071 section 3 example words: 0001 f203 f4f5 f6f7 sum to ddf2 (folded); checksum 220d.
  t.ok(checksumVerifies(hex('0001 f203 f4f5 f6f7 220d')));
  t.notOk(checksumVerifies(hex('0001 f203 f4f5 f6f7 220c')));
});
