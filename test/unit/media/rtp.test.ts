import t from 'tap';
import fc from 'fast-check';
import {
  clockRateOf,
  readRtpHeader,
  rtpHeaderLength,
  rtpPayloadOffset,
  rtpSequence,
  rtpSsrc,
  writeRtpHeader,
  RTP_CLOCK_RATES,
  type RtpHeaderFields,
  type RtpHeaderView,
} from '../../../src/media/rtp.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

type Expected = Omit<RtpHeaderView, 'extensionOffset'> & { readonly extensionOffset?: number };

const valid: readonly (readonly [name: string, bytes: string, want: Expected])[] = [
  [
    'plain',
    '80000001 000000a0 12345678 deadbeef',
    {
      marker: false,
      payloadType: 0,
      sequence: 1,
      timestamp: 160,
      ssrc: 0x12345678,
      csrcCount: 0,
      extensionProfile: -1,
      extensionLength: 0,
      paddingLength: 0,
      payloadOffset: 12,
      payloadLength: 4,
    },
  ],
  [
    'plain_empty_payload',
    '80600000 00000000 00000000',
    {
      marker: false,
      payloadType: 96,
      sequence: 0,
      timestamp: 0,
      ssrc: 0,
      csrcCount: 0,
      extensionProfile: -1,
      extensionLength: 0,
      paddingLength: 0,
      payloadOffset: 12,
      payloadLength: 0,
    },
  ],
  [
    '_csrc',
    '8288ffff 00010000 cafebabe 00000001 00000002 010203',
    {
      marker: true,
      payloadType: 8,
      sequence: 0xffff,
      timestamp: 0x10000,
      ssrc: 0xcafebabe,
      csrcCount: 2,
      extensionProfile: -1,
      extensionLength: 0,
      paddingLength: 0,
      payloadOffset: 20,
      payloadLength: 3,
    },
  ],
  [
    '_ext',
    '90601234 11223344 0000002a bede0001 10ff0000 aabb',
    {
      marker: false,
      payloadType: 96,
      sequence: 0x1234,
      timestamp: 0x11223344,
      ssrc: 42,
      csrcCount: 0,
      extensionProfile: 0xbede,
      extensionOffset: 16,
      extensionLength: 4,
      paddingLength: 0,
      payloadOffset: 20,
      payloadLength: 2,
    },
  ],
  [
    '_ext_empty',
    '90000001 000000a0 12345678 10000000 dd',
    {
      marker: false,
      payloadType: 0,
      sequence: 1,
      timestamp: 160,
      ssrc: 0x12345678,
      csrcCount: 0,
      extensionProfile: 0x1000,
      extensionOffset: 16,
      extensionLength: 0,
      paddingLength: 0,
      payloadOffset: 16,
      payloadLength: 1,
    },
  ],
  [
    '_padding',
    'a0000002 00000140 12345678 112233 000003',
    {
      marker: false,
      payloadType: 0,
      sequence: 2,
      timestamp: 320,
      ssrc: 0x12345678,
      csrcCount: 0,
      extensionProfile: -1,
      extensionLength: 0,
      paddingLength: 3,
      payloadOffset: 12,
      payloadLength: 3,
    },
  ],
  [
    '_padding_only',
    'a0000002 00000140 12345678 00000004',
    {
      marker: false,
      payloadType: 0,
      sequence: 2,
      timestamp: 320,
      ssrc: 0x12345678,
      csrcCount: 0,
      extensionProfile: -1,
      extensionLength: 0,
      paddingLength: 4,
      payloadOffset: 12,
      payloadLength: 0,
    },
  ],
  [
    '_csrc_ext_padding',
    'b1e50007 fffffffe 01020304 0a0b0c0d 0100 0002 00112233 44556677 c0ffee 0001',
    {
      marker: true,
      payloadType: 101,
      sequence: 7,
      timestamp: 0xfffffffe,
      ssrc: 0x01020304,
      csrcCount: 1,
      extensionProfile: 0x0100,
      extensionOffset: 20,
      extensionLength: 8,
      paddingLength: 1,
      payloadOffset: 28,
      payloadLength: 4,
    },
  ],
];

/** Rebuilds a packet from its parsed view: header through writeRtpHeader, body copied. */
function rebuild(buf: Buffer, h: RtpHeaderView): Buffer {
  const csrcs: number[] = [];
  for (let i = 0; i < h.csrcCount; i++) csrcs.push(buf.readUInt32BE(12 + i * 4));
  const fields: RtpHeaderFields = {
    marker: h.marker,
    payloadType: h.payloadType,
    sequence: h.sequence,
    timestamp: h.timestamp,
    ssrc: h.ssrc,
    csrcs,
    padding: h.paddingLength > 0,
    ...(h.extensionProfile >= 0
      ? {
          extension: {
            profile: h.extensionProfile,
            data: buf.subarray(h.extensionOffset, h.extensionOffset + h.extensionLength),
          },
        }
      : {}),
  };
  const headerLength = rtpHeaderLength(fields);
  const out = Buffer.alloc(headerLength + h.payloadLength + h.paddingLength);
  const end = writeRtpHeader(out, 0, fields);
  buf.copy(out, end, h.payloadOffset);
  return out;
}

for (const [name, bytes, want] of valid) {
  t.test(`readRtpHeader(${name}) parses and round-trips`, async (t) => {
    const buf = hex(bytes);
    const h = readRtpHeader(buf);
    if (h === undefined) {
      t.fail('no header');
      return;
    }
    t.match(h, want);
    t.equal(h.payloadOffset + h.payloadLength + h.paddingLength, buf.length);
    if (want.extensionOffset === undefined) t.equal(h.extensionOffset, h.payloadOffset);
    t.equal(rtpPayloadOffset(buf), h.payloadOffset);
    t.equal(rtpSsrc(buf), want.ssrc);
    t.equal(rtpSequence(buf), want.sequence);
    t.same(rebuild(buf, h), buf);
  });
}

const invalid: readonly (readonly [name: string, bytes: string])[] = [
  ['_empty', ''],
  ['_truncated_11_bytes', '80000001 000000a0 123456'],
  ['_truncated_csrc', '83000001 000000a0 12345678 00000001'],
  ['_truncated_ext_header', '90000001 000000a0 12345678 bede'],
  ['_truncated_ext_length', '90000001 000000a0 12345678 bede0002 00000000'],
  ['_truncated_csrc_ext', '91000001 000000a0 12345678 00000001 bede'],
  ['_padding_exceeds_payload', 'a0000001 000000a0 12345678 1105'],
  ['_padding_zero', 'a0000001 000000a0 12345678 1100'],
  ['_padding_no_bytes', 'a0000001 000000a0 12345678'],
  ['_padding_into_ext', 'b0000001 000000a0 12345678 bede0001 00000000 03'],
  ['_bad_version_0', '00000001 000000a0 12345678 deadbeef'],
  ['_bad_version_1', '40000001 000000a0 12345678 deadbeef'],
  ['_bad_version_3', 'c0000001 000000a0 12345678 deadbeef'],
];

for (const [name, bytes] of invalid) {
  t.test(`readRtpHeader(${name}) returns undefined`, async (t) => {
    const buf = hex(bytes);
    t.equal(readRtpHeader(buf), undefined);
    t.equal(rtpPayloadOffset(buf), -1);
  });
}

t.test('rtpSsrc()/rtpSequence() return -1 only for short or non-v2 buffers', async (t) => {
  t.equal(rtpSsrc(hex('80000001 000000a0 123456')), -1);
  t.equal(rtpSequence(hex('80000001 000000a0 123456')), -1);
  t.equal(rtpSsrc(hex('40000001 000000a0 12345678')), -1);
  t.equal(rtpSequence(hex('c0000001 000000a0 12345678')), -1);
  // Only the fixed header matters to the hot-path readers.
  t.equal(rtpSsrc(hex('83000001 000000a0 12345678')), 0x12345678);
  t.equal(rtpSequence(hex('8300abcd 000000a0 12345678')), 0xabcd);
});

t.test('writeRtpHeader() writes at an offset and truncates fields to wire width', async (t) => {
  const buf = Buffer.alloc(16, 0xee);
  const end = writeRtpHeader(buf, 2, {
    marker: true,
    payloadType: 0x80 | 18,
    sequence: 0x1fffe,
    timestamp: -1,
    ssrc: 2 ** 32 + 5,
  });
  t.equal(end, 14);
  t.same(buf, hex('eeee 8092fffe ffffffff 00000005 eeee'));
});

t.test('writeRtpHeader() returns -1 and writes nothing when it cannot encode', async (t) => {
  const buf = Buffer.alloc(16, 0xee);
  const before = Buffer.from(buf);
  const base = { payloadType: 0, sequence: 1, timestamp: 2, ssrc: 3 };
  t.equal(writeRtpHeader(buf, 5, base), -1, 'does not fit');
  t.equal(writeRtpHeader(buf, -1, base), -1, 'negative offset');
  t.equal(
    writeRtpHeader(Buffer.alloc(200), 0, { ...base, csrcs: new Array<number>(16).fill(1) }),
    -1,
    '16 CSRCs',
  );
  t.equal(
    writeRtpHeader(Buffer.alloc(200), 0, {
      ...base,
      extension: { profile: 1, data: new Uint8Array(3) },
    }),
    -1,
    'ext not whole words',
  );
  t.same(buf, before);
});

t.test('clockRateOf() follows RFC 3551 and defaults to 8000', async (t) => {
  t.equal(clockRateOf(0), 8000);
  t.equal(clockRateOf(6), 16000);
  t.equal(clockRateOf(9), 8000);
  t.equal(clockRateOf(10), 44100);
  t.equal(clockRateOf(11), 44100);
  t.equal(clockRateOf(14), 90000);
  t.equal(clockRateOf(16), 11025);
  t.equal(clockRateOf(17), 22050);
  t.equal(clockRateOf(18), 8000);
  for (const pt of [25, 26, 28, 31, 32, 33, 34]) {
    t.equal(clockRateOf(pt), 90000, `pt ${String(pt)}`);
  }
  for (const pt of [1, 2, 19, 24, 27, 35, 96, 101, 127, 128, -1, 0.5, Number.NaN]) {
    t.equal(clockRateOf(pt), 8000, `pt ${String(pt)}`);
  }
  for (const [pt, rate] of Object.entries(RTP_CLOCK_RATES)) t.equal(clockRateOf(Number(pt)), rate);
});

t.test('readRtpHeader()/rtpSsrc()/rtpSequence() never throw on arbitrary bytes', async (t) => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    // Mostly version-2 first bytes so the CSRC/extension/padding paths get exercised.
    fc
      .tuple(fc.integer({ min: 0x80, max: 0xbf }), fc.uint8Array({ maxLength: 80 }))
      .map(([b0, rest]) => Uint8Array.of(b0, ...rest)),
  );
  fc.assert(
    fc.property(bytes, (raw) => {
      const buf = Buffer.from(raw);
      const h = readRtpHeader(buf);
      const ssrc = rtpSsrc(buf);
      const seq = rtpSequence(buf);
      const offset = rtpPayloadOffset(buf);
      if (h === undefined) return offset === -1;
      return (
        h.payloadOffset <= buf.length &&
        h.payloadOffset === offset &&
        h.payloadLength >= 0 &&
        h.payloadOffset + h.payloadLength + h.paddingLength === buf.length &&
        ssrc === h.ssrc &&
        seq === h.sequence
      );
    }),
    { numRuns: 2000 },
  );
  t.pass('property held');
});
