/**
 * The `z` re-packetizer on byte literals: splits and joins for PCMU, G.729, GSM and G.723, the
 * frame-size minimums, what passes through unchanged, late packets, SSRC changes, sequence
 * wrap, timestamp gaps and the timed flush (sippy/rtpproxy src/rtp_resizer.c, src/rtp.c).
 */
import fc from 'fast-check';
import t from 'tap';
import { RtpResizer } from '../../../src/media/resizer.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** `n` payload bytes counting up from `from` (mod 256), so joins and splits are visible. */
const bytes = (n: number, from = 0): Buffer =>
  Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));
const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

/** Every packet due at `nowMs`. */
function drain(r: RtpResizer, nowMs: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 100; i += 1) {
    const p = r.get(nowMs);
    if (p === undefined) break;
    out.push(p);
  }
  return out;
}

t.test(
  'PCMU 20 ms split into 10 ms: contiguous seq, ts + 80, marker on the first only',
  async (t) => {
    const r = new RtpResizer(10);
    // V=2 M=1 PT=0 seq=100 ts=800 ssrc=0x1234, 160 bytes of audio.
    const p = cat(hex('80 80 0064 00000320 00001234'), bytes(160));
    t.equal(r.enqueue(p, 0), 'held');
    t.same(drain(r, 0), [
      cat(hex('80 80 0064 00000320 00001234'), bytes(80)),
      cat(hex('80 00 0065 00000370 00001234'), bytes(80, 80)),
    ]);
    t.equal(r.held, 0);
    t.equal(r.get(1000), undefined, 'nothing left');
  },
);

t.test('PCMU 10 ms joined into 30 ms; a rest leaves after the wait', async (t) => {
  const r = new RtpResizer(30);
  const ten = (seq: number, ts: number, from: number): Buffer =>
    cat(
      hex(
        `80 00 ${seq.toString(16).padStart(4, '0')} ${ts.toString(16).padStart(8, '0')} 0000abcd`,
      ),
      bytes(80, from),
    );
  t.equal(r.enqueue(ten(7, 0, 0), 0), 'held');
  t.same(drain(r, 0), [], 'one 10 ms packet waits');
  r.enqueue(ten(8, 80, 80), 10);
  t.same(drain(r, 10), []);
  r.enqueue(ten(9, 160, 160), 20);
  t.same(drain(r, 20), [cat(hex('80 00 0007 00000000 0000abcd'), bytes(240))]);
  r.enqueue(ten(10, 240, 240), 30);
  t.same(drain(r, 30), [], 'the rest waits for more');
  // The wait: max(2 * 30 ms, 40 ms) of the stream's timeline, less the 5 ms lead.
  t.same(drain(r, 84), [], 'still within the wait');
  t.same(drain(r, 86), [cat(hex('80 00 0008 000000f0 0000abcd'), bytes(80, 240))]);
});

t.test('PCMU 20 ms into 30 ms: a split packet feeds two outputs', async (t) => {
  const r = new RtpResizer(30);
  const twenty = (seq: number): Buffer =>
    cat(
      hex(`80 00 000${String(seq)} ${(seq * 160).toString(16).padStart(8, '0')} 00000001`),
      bytes(160, seq * 160),
    );
  r.enqueue(twenty(0), 0);
  t.same(drain(r, 0), []);
  r.enqueue(twenty(1), 20);
  r.enqueue(twenty(2), 40);
  t.same(drain(r, 40), [
    cat(hex('80 00 0000 00000000 00000001'), bytes(240, 0)),
    cat(hex('80 00 0001 000000f0 00000001'), bytes(240, 240)),
  ]);
});

t.test('the packet time is rounded up to whole 10 ms units for G.711', async (t) => {
  const r = new RtpResizer(25);
  r.enqueue(cat(hex('80 08 0001 00000000 00000002'), bytes(400)), 0);
  t.same(
    drain(r, 0).map((p) => p.length - 12),
    [240],
    'z25 -> 30 ms (PCMA)',
  );
  t.same(
    drain(r, 100).map((p) => p.length - 12),
    [160],
    'the shorter rest after the wait',
  );
  const r5 = new RtpResizer(5);
  r5.enqueue(cat(hex('80 00 0001 00000000 00000002'), bytes(160)), 0);
  t.same(
    drain(r5, 0).map((p) => p.length - 12),
    [80, 80],
    'z5 -> 10 ms, the smallest',
  );
});

t.test('G.729: 10-byte frames per 10 ms; a comfort-noise tail is sent as it is', async (t) => {
  const r = new RtpResizer(20);
  // 40 ms: four frames.
  r.enqueue(cat(hex('80 12 0010 00000000 00000003'), bytes(40)), 0);
  t.same(drain(r, 0), [
    cat(hex('80 12 0010 00000000 00000003'), bytes(20)),
    cat(hex('80 12 0011 000000a0 00000003'), bytes(20, 20)),
  ]);

  const sid = new RtpResizer(30);
  // One frame and a 2-byte SID frame (160 samples, not appendable), then one more frame.
  const withSid = cat(hex('80 12 0020 00000000 00000004'), bytes(12));
  sid.enqueue(withSid, 0);
  sid.enqueue(cat(hex('80 12 0021 000000a0 00000004'), bytes(10, 12)), 0);
  t.same(drain(sid, 0), [withSid], 'the SID packet leaves alone, unchanged');
  t.equal(sid.held, 1, 'the next frame waits');

  const join = new RtpResizer(30);
  join.enqueue(cat(hex('80 12 0001 00000000 00000005'), bytes(20)), 0);
  join.enqueue(cat(hex('80 12 0002 000000a0 00000005'), bytes(20, 20)), 0);
  t.same(drain(join, 0), [cat(hex('80 12 0001 00000000 00000005'), bytes(30))], '20 + 10 ms');
  t.equal(join.held, 1);
});

t.test('GSM: 33-byte frames per 20 ms, never less than 20 ms', async (t) => {
  const r = new RtpResizer(10);
  r.enqueue(cat(hex('80 03 0100 00001000 00000006'), bytes(66)), 0);
  t.same(drain(r, 0), [
    cat(hex('80 03 0100 00001000 00000006'), bytes(33)),
    cat(hex('80 03 0101 000010a0 00000006'), bytes(33, 33)),
  ]);
});

t.test('G.723: 24- and 20-byte frames per 30 ms; a reserved frame type passes', async (t) => {
  const r = new RtpResizer(30);
  // A 6.3 kbit/s frame (first byte ...00) and a 5.3 kbit/s one (...01): 60 ms.
  const f63 = cat(hex('00'), bytes(23, 1));
  const f53 = cat(hex('01'), bytes(19, 24));
  r.enqueue(cat(hex('80 04 0001 00000000 00000007'), f63, f53), 0);
  t.same(drain(r, 0), [
    cat(hex('80 04 0001 00000000 00000007'), f63),
    cat(hex('80 04 0002 000000f0 00000007'), f53),
  ]);
  t.equal(r.enqueue(cat(hex('80 04 0003 000001e0 00000007'), hex('03'), bytes(23)), 0), 'pass');
});

t.test('what it cannot re-packetize passes through untouched', async (t) => {
  const r = new RtpResizer(10);
  const dynamic = cat(hex('80 60 0001 00000000 00000008'), bytes(160));
  const copy = Buffer.from(dynamic);
  t.equal(r.enqueue(dynamic, 0), 'pass', 'a dynamic payload type');
  t.same(dynamic, copy, 'not modified');
  t.equal(r.enqueue(hex('80 00 0001 00000000 00000008'), 0), 'pass', 'no payload');
  t.equal(r.enqueue(hex('80 00 0001 000000'), 0), 'pass', 'shorter than a header');
  t.equal(r.enqueue(cat(hex('40 00 0001 00000000 00000008'), bytes(160)), 0), 'pass', 'version 1');
  t.equal(
    r.enqueue(cat(hex('a0 00 0001 00000000 00000008'), bytes(2), hex('05')), 0),
    'pass',
    'bad padding',
  );
  t.equal(r.held, 0);
});

t.test('CSRCs and extension are kept; padding is dropped from a rebuilt packet', async (t) => {
  const r = new RtpResizer(10);
  // P=1 X=1 CC=1, CSRC, a one-word extension, 160 bytes, 4 bytes of padding.
  const received = hex('b1 00 0001 00000000 00000009 11111111 bede0001 01020304');
  r.enqueue(cat(received, bytes(160), hex('00000004')), 0);
  t.same(drain(r, 0), [
    cat(hex('91 00 0001 00000000 00000009 11111111 bede0001 01020304'), bytes(80)),
    cat(hex('91 00 0002 00000050 00000009 11111111 bede0001 01020304'), bytes(80, 80)),
  ]);
});

t.test('a packet older than what was sent is late; a new SSRC starts over', async (t) => {
  const r = new RtpResizer(10);
  r.enqueue(cat(hex('80 00 0100 00010000 0000000a'), bytes(80)), 0);
  t.equal(drain(r, 0).length, 1);
  t.equal(r.enqueue(cat(hex('80 00 00ff 0000ff60 0000000a'), bytes(80)), 10), 'late');
  // Another source whose timestamps are far behind: not late, and the output sequence goes on.
  t.equal(r.enqueue(cat(hex('80 00 5000 00000010 0000000b'), bytes(80, 7)), 20), 'held');
  t.same(drain(r, 20), [cat(hex('80 00 0101 00000010 0000000b'), bytes(80, 7))]);
});

t.test('the output sequence wraps at 16 bits', async (t) => {
  const r = new RtpResizer(10);
  r.enqueue(cat(hex('80 00 ffff 00000000 0000000c'), bytes(160)), 0);
  r.enqueue(cat(hex('80 00 0000 000000a0 0000000c'), bytes(80, 160)), 0);
  t.same(
    drain(r, 0).map((p) => p.readUInt16BE(2)),
    [0xffff, 0, 1],
  );
});

t.test('a timestamp gap ends an output packet early', async (t) => {
  const r = new RtpResizer(30);
  r.enqueue(cat(hex('80 00 0001 00000000 0000000d'), bytes(160)), 0);
  r.enqueue(cat(hex('80 00 0002 000000a0 0000000d'), bytes(160, 160)), 20);
  t.same(drain(r, 20), [cat(hex('80 00 0001 00000000 0000000d'), bytes(240))]);
  // Packet 3 (ts 320) is lost: the 10 ms rest of packet 2 cannot be joined to packet 4.
  r.enqueue(cat(hex('80 00 0004 000001e0 0000000d'), bytes(160, 0x40)), 60);
  t.same(drain(r, 60), [cat(hex('80 00 0002 000000f0 0000000d'), bytes(80, 240))]);
  t.equal(r.held, 1);
});

t.test('held packets are sorted by timestamp; clear() drops and counts them', async (t) => {
  const r = new RtpResizer(30);
  r.enqueue(cat(hex('80 00 0002 00000050 0000000e'), bytes(80, 80)), 0);
  r.enqueue(cat(hex('80 00 0001 00000000 0000000e'), bytes(80)), 0);
  r.enqueue(cat(hex('80 00 0003 000000a0 0000000e'), bytes(80, 160)), 0);
  t.same(drain(r, 0), [cat(hex('80 00 0001 00000000 0000000e'), bytes(240))]);
  r.enqueue(cat(hex('80 00 0004 000000f0 0000000e'), bytes(80)), 0);
  r.enqueue(cat(hex('80 00 0005 00000140 0000000e'), bytes(80)), 0);
  t.equal(r.clear(), 2);
  t.equal(r.held, 0);
});

t.test('a party cannot make it hold without bound', async (t) => {
  const r = new RtpResizer(10);
  // 1000-byte GSM packets: a 964-byte header extension and a 20-byte payload (no whole frame,
  // so no samples), all at once.
  let most = 0;
  let sent = 0;
  let taken = 0;
  for (let i = 0; i < 1000; i += 1) {
    const p = Buffer.alloc(1000);
    p[0] = 0x90;
    p[1] = 3;
    p.writeUInt16BE(i, 2);
    p.writeUInt32BE(0x55, 8);
    p.writeUInt16BE(0xbede, 12);
    p.writeUInt16BE(240, 14);
    if (r.enqueue(p, 0) === 'held') taken += 1;
    sent += drain(r, 0).length;
    most = Math.max(most, r.held);
  }
  t.equal(taken, 1000);
  t.ok(most <= 66, `held at most ${String(most)} packets of 1000 bytes`);
  t.ok(sent > 0, 'the rest was sent');
});

t.test('property: contiguous PCMU of any sizes re-packetizes losslessly to any z', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 999 }),
      fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (ms, sizes, ts0) => {
        const r = new RtpResizer(ms);
        const sent: Buffer[] = [];
        const got: Buffer[] = [];
        let ts = ts0;
        let now = 1000;
        for (const [i, size] of sizes.entries()) {
          const head = Buffer.alloc(12);
          head[0] = 0x80;
          head.writeUInt16BE(i, 2);
          head.writeUInt32BE(ts >>> 0, 4);
          head.writeUInt32BE(0x42, 8);
          const payload = bytes(size, i * 7);
          sent.push(payload);
          if (r.enqueue(cat(head, payload), now) !== 'held') return false;
          got.push(...drain(r, now));
          ts += size;
          now += size / 8;
        }
        got.push(...drain(r, now + 3000));
        if (r.held !== 0) return false;
        let nextTs = ts0 >>> 0;
        for (const [i, p] of got.entries()) {
          if (p.readUInt16BE(2) !== i || p.readUInt32BE(4) !== nextTs) return false;
          if (p.length - 12 > Math.ceil(ms / 10) * 80) return false;
          nextTs = (nextTs + p.length - 12) >>> 0;
        }
        return Buffer.concat(got.map((p) => p.subarray(12))).equals(Buffer.concat(sent));
      },
    ),
    { numRuns: 300 },
  );
  t.pass('held');
});

t.test('property: arbitrary bytes never throw', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 999 }),
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      (ms, packets) => {
        const r = new RtpResizer(ms);
        let now = 0;
        for (const p of packets) {
          const buf = Buffer.from(p);
          if (buf.length > 0) buf[0] = 0x80 | ((buf[0] ?? 0) & 0x3f);
          r.enqueue(buf, now);
          drain(r, now);
          now += 20;
        }
        drain(r, now + 1000);
      },
    ),
    { numRuns: 300 },
  );
  t.pass('held');
});
