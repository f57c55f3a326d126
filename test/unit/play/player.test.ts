import t from 'tap';
import { readRtpHeader } from '../../../src/media/rtp.ts';
import { EOF, LATER, Player, type PlayerInit } from '../../../src/play/player.ts';
import { packetFraming } from '../../../src/play/prompts.ts';

const PCMA_10MS = { payloadType: 8, payloadBytes: 80, packetMs: 10, timestampStep: 80 } as const;

function player(over: Partial<PlayerInit> = {}): Player {
  const data = over.data ?? Buffer.from(Array.from({ length: 240 }, (_, i) => i));
  return new Player({
    data,
    framing: over.framing ?? PCMA_10MS,
    count: over.count ?? 1,
    ssrc: over.ssrc ?? 0x12345678,
    sequence: over.sequence ?? 65534,
    timestamp: over.timestamp ?? 0xffffffb0,
    startMs: over.startMs ?? 1000,
  });
}

/** Every packet due by `until`, stepping the clock 1 ms at a time from `from`. */
function run(p: Player, from: number, until: number): { at: number; packet: Buffer }[] {
  const out: { at: number; packet: Buffer }[] = [];
  for (let now = from; now <= until; now += 1) {
    for (;;) {
      const r = p.next(now);
      if (r === LATER || r === EOF) break;
      out.push({ at: now, packet: r });
    }
  }
  return out;
}

t.test(
  'packetFraming() follows the reference frame table, rounded up to whole frames',
  async (t) => {
    t.same(packetFraming(0, -1), {
      payloadType: 0,
      payloadBytes: 80,
      packetMs: 10,
      timestampStep: 80,
    });
    t.same(packetFraming(8, 20), {
      payloadType: 8,
      payloadBytes: 160,
      packetMs: 20,
      timestampStep: 160,
    });
    t.same(packetFraming(3, 10), {
      payloadType: 3,
      payloadBytes: 33,
      packetMs: 20,
      timestampStep: 160,
    });
    t.same(packetFraming(4, 10), {
      payloadType: 4,
      payloadBytes: 24,
      packetMs: 30,
      timestampStep: 240,
    });
    t.same(packetFraming(18, 25), {
      payloadType: 18,
      payloadBytes: 30,
      packetMs: 30,
      timestampStep: 240,
    });
    t.same(packetFraming(9, 10), {
      payloadType: 9,
      payloadBytes: 80,
      packetMs: 10,
      timestampStep: 80,
    });
    t.equal(packetFraming(96, 10), undefined);
    t.equal(packetFraming(101, 20), undefined);
  },
);

t.test(
  'player.next() builds RTP with one SSRC, wrapping sequence and timestamp, marker first only',
  async (t) => {
    const p = player();
    const got = run(p, 1000, 1100);
    t.equal(got.length, 3, '240 bytes = three 80-byte packets');
    const heads = got.map((g) => readRtpHeader(g.packet));
    t.same(
      heads.map((h) => [
        h?.payloadType,
        h?.marker,
        h?.sequence,
        h?.timestamp,
        h?.ssrc,
        h?.payloadLength,
      ]),
      [
        [8, true, 65534, 0xffffffb0, 0x12345678, 80],
        [8, false, 65535, 0, 0x12345678, 80],
        [8, false, 0, 80, 0x12345678, 80],
      ],
    );
    t.same(
      got.map((g) => g.packet.subarray(12)),
      [0, 1, 2].map((k) => Buffer.from(Array.from({ length: 80 }, (_, i) => k * 80 + i))),
    );
    t.same(
      got.map((g) => g.at),
      [1000, 1010, 1020],
      'one packet per 10 ms from the start',
    );
    t.equal(p.next(5000), EOF);
    t.equal(p.next(6000), EOF, 'stays ended');
  },
);

t.test(
  'player.next() before the start is later; late callers get the backlog at once (no drift)',
  async (t) => {
    const p = player({ count: -1 });
    t.equal(p.next(999.9), LATER);
    const burst = run(p, 1035, 1035);
    t.equal(burst.length, 4, 'packets due at 1000, 1010, 1020 and 1030');
    t.equal(p.dueMs, 1040);
    // A million ms later the schedule is still anchored at the start.
    const many = run(p, 1036, 11_000);
    t.equal(burst.length + many.length, 1001);
    t.equal(p.dueMs, 11_010);
  },
);

t.test(
  'player.next() plays the file count times; a trailing partial packet is never sent',
  async (t) => {
    const data = Buffer.alloc(200, 7); // 2.5 packets
    const p = player({ data, count: 3 });
    const got = run(p, 1000, 2000);
    t.equal(got.length, 6);
    t.ok(got.every((g) => g.packet.length === 92));
    t.same(
      got.map((g) => readRtpHeader(g.packet)?.marker),
      [true, false, false, false, false, false],
    );
    t.equal(p.sent, 6);
  },
);

t.test(
  'player.next() with a negative count loops until stopped; count 0 plays nothing',
  async (t) => {
    const p = player({ count: -1 });
    t.equal(run(p, 1000, 1000 + 10 * 99).length, 100);
    t.equal(player({ count: 0 }).next(5000), EOF);
    t.equal(player({ data: Buffer.alloc(79) }).next(5000), EOF, 'less than one packet');
  },
);

t.test('player.defer() moves the schedule without skipping audio', async (t) => {
  const p = player({ count: -1 });
  run(p, 1000, 1000);
  p.defer(5000);
  t.equal(p.dueMs, 5000);
  const next = p.next(5000);
  t.ok(Buffer.isBuffer(next));
  if (Buffer.isBuffer(next)) {
    t.equal(readRtpHeader(next)?.sequence, 65535, 'the sequence goes on');
    t.same(
      next.subarray(12),
      Buffer.from(Array.from({ length: 80 }, (_, i) => 80 + i)),
      'the audio goes on',
    );
  }
  t.equal(p.next(5009), LATER);
});
