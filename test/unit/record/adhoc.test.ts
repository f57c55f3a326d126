import t from 'tap';
import {
  ADHOC_HEADER_SIZE,
  adhocRecordHeader,
  readAdhocHeader,
} from '../../../src/record/adhoc.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]+/g, ''), 'hex');

// 1234567890.5 s = 0x41D26580B4A00000 as an IEEE-754 double, stored little-endian.
const TIME_MS = 1234567890500;
const TIME_LE = '00 00 a0 b4 80 65 d2 41';

/** A 172-byte RTP packet (12-byte header + 160 bytes PCMU). */
const RTP = Buffer.concat([hex('80 00 00 01 00 00 00 a0 00 00 12 34'), Buffer.alloc(160, 0xff)]);

t.test(
  'adhocRecordHeader() matches the documented first record byte for byte (IPv4)',
  async (t) => {
    // docs/protocol.md 6.4: 02 00 | b5 d4 | 7f 00 00 01 | 12 zero bytes | 8-byte time | ac 00 | RTP...
    const fixture = hex(`02 00 | b5 d4 | 7f 00 00 01 | ${'00'.repeat(12)} | ${TIME_LE} | ac 00`);
    const header = adhocRecordHeader(
      { address: '127.0.0.1', port: 0xb5d4 },
      4,
      TIME_MS,
      RTP.length,
    );
    t.ok(header);
    t.equal(header?.length, ADHOC_HEADER_SIZE);
    t.same(header, fixture);
  },
);

t.test('adhocRecordHeader() writes family 10 and the 16-byte address for IPv6', async (t) => {
  const fixture = hex(
    `0a 00 | 13 88 | 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 | ${TIME_LE} | 10 00`,
  );
  t.same(adhocRecordHeader({ address: '2001:db8::1', port: 5000 }, 6, TIME_MS, 16), fixture);
});

t.test('adhocRecordHeader() accepts the mapped forms of a dual-stack socket', async (t) => {
  const a = adhocRecordHeader({ address: '::ffff:192.0.2.7', port: 1 }, 4, 0, 0);
  t.same(a?.subarray(4, 8), hex('c0 00 02 07'));
  const b = adhocRecordHeader({ address: '192.0.2.7', port: 1 }, 6, 0, 0);
  t.same(b?.subarray(4, 20), hex('0000 0000 0000 0000 0000 ffff c000 0207'));
});

t.test('adhocRecordHeader() returns undefined for what it cannot represent', async (t) => {
  const ok = { address: '10.0.0.1', port: 1000 };
  t.equal(adhocRecordHeader({ address: 'example.com', port: 1 }, 4, 0, 1), undefined);
  t.equal(adhocRecordHeader({ address: '2001:db8::1', port: 1 }, 4, 0, 1), undefined);
  t.equal(adhocRecordHeader({ address: '10.0.0.1', port: 65536 }, 4, 0, 1), undefined);
  t.equal(adhocRecordHeader({ address: '10.0.0.1', port: -1 }, 4, 0, 1), undefined);
  t.equal(adhocRecordHeader(ok, 4, 0, 65536), undefined);
  t.equal(adhocRecordHeader(ok, 4, 0, 1.5), undefined);
  t.ok(adhocRecordHeader(ok, 4, 0, 65535));
});

t.test('readAdhocHeader() parses what adhocRecordHeader() wrote', async (t) => {
  const header = adhocRecordHeader({ address: '127.0.0.1', port: 46548 }, 4, TIME_MS, RTP.length);
  t.ok(header);
  if (header === undefined) return;
  const file = Buffer.concat([header, RTP]);
  const view = readAdhocHeader(file);
  t.match(view, { family: 4, port: 46548, time: 1234567890.5, length: 172, packetOffset: 30 });
  t.same(view?.address, hex('7f000001'));
  t.same(file.subarray(30), RTP);
});

t.test('readAdhocHeader() returns undefined for garbage', async (t) => {
  const header = adhocRecordHeader({ address: '127.0.0.1', port: 1 }, 4, 0, 10) ?? Buffer.alloc(0);
  t.equal(readAdhocHeader(Buffer.alloc(29)), undefined, 'short');
  t.equal(readAdhocHeader(Buffer.concat([header, Buffer.alloc(9)])), undefined, 'packet truncated');
  t.equal(readAdhocHeader(Buffer.alloc(40)), undefined, 'family 0');
  t.equal(
    readAdhocHeader(Buffer.concat([header, Buffer.alloc(10)]), -1),
    undefined,
    'negative offset',
  );
  t.ok(readAdhocHeader(Buffer.concat([header, Buffer.alloc(10)])));
});
