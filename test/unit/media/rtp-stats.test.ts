import t from 'tap';
import { RtpStats } from '../../../src/media/rtp-stats.ts';
import { writeRtpHeader } from '../../../src/media/rtp.ts';

interface PacketSpec {
  readonly seq: number;
  readonly ts?: number;
  readonly ssrc?: number;
  readonly pt?: number;
}

/** A PCMU-sized RTP packet; ts defaults to 160 * seq. */
function rtp(spec: PacketSpec): Buffer {
  const buf = Buffer.alloc(12 + 160, 0xd5);
  writeRtpHeader(buf, 0, {
    payloadType: spec.pt ?? 0,
    sequence: spec.seq,
    timestamp: spec.ts ?? spec.seq * 160,
    ssrc: spec.ssrc ?? 0x1234,
  });
  return buf;
}

/** Feeds packets with the given sequence numbers, 20 ms apart and perfectly paced. */
function feed(
  stats: RtpStats,
  seqs: readonly number[],
  opts: { ssrc?: number; startMs?: number } = {},
): void {
  let at = opts.startMs ?? 1000;
  for (const seq of seqs) {
    stats.update(rtp({ seq, ssrc: opts.ssrc ?? 0x1234 }), at);
    at += 20;
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

function counters(s: RtpStats): Record<string, number> {
  return { nsent: s.nsent, nrcvd: s.nrcvd, ndups: s.ndups, nlost: s.nlost, perrs: s.perrs };
}

t.test('rtpStats starts at zero', async (t) => {
  const s = new RtpStats();
  t.same(counters(s), { nsent: 0, nrcvd: 0, ndups: 0, nlost: 0, perrs: 0 });
  t.same([s.jlast, s.jmax, s.javg, s.longestIpi], [0, 0, 0, 0]);
});

t.test('rtpStats.update() in-order paced stream of 50 packets', async (t) => {
  const s = new RtpStats();
  for (let i = 0; i < 50; i++) s.update(rtp({ seq: 1000 + i }), 5000 + i * 20);
  t.same(counters(s), { nsent: 50, nrcvd: 50, ndups: 0, nlost: 0, perrs: 0 });
  t.equal(s.jlast, 0);
  t.equal(s.jmax, 0);
  t.equal(s.javg, 0);
  t.equal(s.longestIpi, 0.02);
});

t.test('rtpStats.update() counts a lost packet', async (t) => {
  const s = new RtpStats();
  feed(s, [1, 2, 3, 5, 6]);
  t.same(counters(s), { nsent: 6, nrcvd: 5, ndups: 0, nlost: 1, perrs: 0 });
});

t.test('rtpStats.update() counts a duplicate once', async (t) => {
  const s = new RtpStats();
  feed(s, [1, 2, 2, 3, 1, 4]);
  t.same(counters(s), { nsent: 4, nrcvd: 4, ndups: 2, nlost: 0, perrs: 0 });
});

t.test('rtpStats.update() detects a duplicate up to the window edge', async (t) => {
  const s = new RtpStats();
  feed(s, [...range(0, 99), 0, 50, 99]);
  t.same(counters(s), { nsent: 100, nrcvd: 100, ndups: 3, nlost: 0, perrs: 0 });
});

t.test('rtpStats.update() takes reordered packets as received, not lost', async (t) => {
  const s = new RtpStats();
  feed(s, [10, 11, 13, 12, 14, 16, 15]);
  t.same(counters(s), { nsent: 7, nrcvd: 7, ndups: 0, nlost: 0, perrs: 0 });
});

t.test('rtpStats.update() extends the range for a packet older than the first one', async (t) => {
  const s = new RtpStats();
  feed(s, [2, 1, 3]);
  t.same(counters(s), { nsent: 3, nrcvd: 3, ndups: 0, nlost: 0, perrs: 0 });
});

t.test('rtpStats.update() follows the sequence wrap at 65535 -> 0', async (t) => {
  const s = new RtpStats();
  feed(s, [65530, 65531, 65532, 65534, 65535, 0, 65533, 1, 3, 4]);
  // 65530..4 is 11 numbers; 2 is missing; 65533 arrived late after the wrap.
  t.same(counters(s), { nsent: 11, nrcvd: 10, ndups: 0, nlost: 1, perrs: 0 });
  feed(s, [0, 65535], { startMs: 2000 });
  t.equal(s.ndups, 2, 'duplicates on both sides of the wrap');
});

t.test(
  'rtpStats.update() handles a wrap with the first packet at 0 and a late 65535',
  async (t) => {
    const s = new RtpStats();
    feed(s, [0, 65535, 1]);
    t.same(counters(s), { nsent: 3, nrcvd: 3, ndups: 0, nlost: 0, perrs: 0 });
  },
);

t.test('rtpStats.update() keeps counting across many wraps', async (t) => {
  const s = new RtpStats();
  const seqs: number[] = [];
  for (let i = 0; i < 3 * 65536 + 10; i++) if (i % 1000 !== 0) seqs.push(i & 0xffff);
  feed(s, seqs);
  t.equal(s.nsent, 3 * 65536 + 10 - 1);
  t.equal(s.nrcvd, seqs.length);
  t.equal(s.nlost, 196, 'multiples of 1000 in 1..196617');
  t.equal(s.ndups, 0);
});

t.test('rtpStats.update() sums counts across an SSRC change', async (t) => {
  const s = new RtpStats();
  feed(s, [100, 101, 103, 104], { ssrc: 0xaaaa });
  // Same sequence numbers under the new SSRC are new packets, not duplicates.
  feed(s, [100, 101, 102, 40000, 40001], { ssrc: 0xbbbb, startMs: 2000 });
  t.same(counters(s), { nsent: 5 + 3 + 2, nrcvd: 9, ndups: 0, nlost: 1, perrs: 0 });
});

t.test('rtpStats.update() restarts tracking on a confirmed sequence jump', async (t) => {
  const s = new RtpStats();
  feed(s, [1, 2, 3, 4, 5, 20000, 20001, 20002, 20004]);
  t.same(counters(s), { nsent: 5 + 5, nrcvd: 9, ndups: 0, nlost: 1, perrs: 0 });
});

t.test(
  'rtpStats.update() counts a lone stray packet once without breaking the stream',
  async (t) => {
    const s = new RtpStats();
    feed(s, [1, 2, 3, 40000, 4, 5, 6]);
    t.same(counters(s), { nsent: 7, nrcvd: 7, ndups: 0, nlost: 0, perrs: 0 });
  },
);

t.test('rtpStats.update() counts garbage as perrs only', async (t) => {
  const s = new RtpStats();
  feed(s, [1, 2]);
  s.update(Buffer.alloc(0), 2000);
  s.update(Buffer.from('80000003000001e0123456', 'hex'), 2001); // 11 bytes
  s.update(Buffer.from('40000003000001e000001234', 'hex'), 2002); // version 1
  s.update(Buffer.from('83000003000001e000001234', 'hex'), 2003); // CSRCs past the end
  s.update(Buffer.from('a0000003000001e0000012340009', 'hex'), 2004); // padding past the end
  t.same(counters(s), { nsent: 2, nrcvd: 2, ndups: 0, nlost: 0, perrs: 5 });
  t.equal(s.longestIpi, 0.02, 'garbage does not count as an arrival');
});

t.test('rtpStats.update() jitter matches a hand-computed RFC 3550 A.8 estimate', async (t) => {
  const s = new RtpStats();
  // PCMU, 8 timestamp units per ms, timestamps 160 apart. Arrivals at 0, 21, 40, 60 ms:
  // D = 21*8-160 = 8       J = 0 + (8 - 0)/16          = 0.5
  // D = 19*8-160 = -8      J = 0.5 + (8 - 0.5)/16      = 0.96875
  // D = 20*8-160 = 0       J = 0.96875 + (0 - 0.96875)/16 = 0.908203125
  const arrivals = [0, 21, 40, 60];
  arrivals.forEach((at, i) => s.update(rtp({ seq: i, ts: 1000 + i * 160 }), at));
  t.equal(s.jlast, 0.908203125);
  t.equal(s.jmax, 0.96875);
  t.equal(s.javg, (0.5 + 0.96875 + 0.908203125) / 3);
  t.equal(s.longestIpi, 0.021);
});

t.test('rtpStats.update() jitter uses the payload clock rate', async (t) => {
  const s = new RtpStats();
  // H263 (pt 34), 90 units per ms; a frame 3000 units (33.3 ms) apart arriving after 40 ms.
  s.update(rtp({ seq: 1, ts: 0, pt: 34 }), 100);
  s.update(rtp({ seq: 2, ts: 3000, pt: 34 }), 140);
  t.equal(s.jlast, (40 * 90 - 3000) / 16);
});

t.test(
  'rtpStats.update() jitter is non-zero for wobbling arrivals and survives ts wrap',
  async (t) => {
    const s = new RtpStats();
    let at = 0;
    for (let i = 0; i < 40; i++) {
      at += i % 2 === 0 ? 15 : 25;
      s.update(rtp({ seq: i, ts: (0xffffff00 + i * 160) >>> 0 }), at);
    }
    t.ok(s.jlast > 0);
    t.ok(s.jmax >= s.jlast);
    t.ok(s.javg > 0 && s.javg <= s.jmax);
    // |D| is 40 every packet, so the estimate converges towards 40 from below.
    t.ok(s.jmax < 40 && s.jmax > 35, `jmax ${String(s.jmax)}`);
    t.equal(s.longestIpi, 0.025);
  },
);

t.test('rtpStats.update() restarts jitter on an SSRC change and skips duplicates', async (t) => {
  const s = new RtpStats();
  s.update(rtp({ seq: 1, ts: 160 }), 0);
  s.update(rtp({ seq: 2, ts: 320 }), 20);
  s.update(rtp({ seq: 2, ts: 320 }), 35); // duplicate: no sample
  t.equal(s.jlast, 0);
  // New source with an unrelated timestamp base: no sample on its first packet.
  s.update(rtp({ seq: 9, ts: 987654, ssrc: 0x9999 }), 40);
  t.equal(s.jlast, 0);
  s.update(rtp({ seq: 10, ts: 987654 + 160, ssrc: 0x9999 }), 62);
  t.equal(s.jlast, 1);
  t.equal(s.javg, 0.5, 'one zero estimate for the first source, one for the second');
});

t.test('rtpStats.update() skips jitter for repeated timestamps (RFC 4733 events)', async (t) => {
  const s = new RtpStats();
  s.update(rtp({ seq: 1, ts: 160 }), 0);
  s.update(rtp({ seq: 2, ts: 320, pt: 101 }), 20);
  s.update(rtp({ seq: 3, ts: 320, pt: 101 }), 70);
  s.update(rtp({ seq: 4, ts: 320, pt: 101 }), 120);
  t.equal(s.jlast, 0);
});
