import t from 'tap';
import { waitUntil } from '../../helpers/control.ts';
import { readRtpHeader } from '../../../src/media/rtp.ts';
import { PromptCache, type PromptSource } from '../../../src/play/prompts.ts';
import {
  type PlaybackEnd,
  PlaybackScheduler,
  type PlayTarget,
} from '../../../src/play/scheduler.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

class FakeTarget implements PlayTarget {
  readonly sent: { packet: Buffer; port: number; address: string }[] = [];
  remoteAddress: string | undefined = '192.0.2.1';
  remotePort = 4000;
  playing = false;
  throwOnSend = false;
  socket: PlayTarget['socket'] = {
    send: (packet: Buffer, port: number, address: string) => {
      if (this.throwOnSend) throw new Error('Not running');
      this.sent.push({ packet, port, address });
    },
  };
}

const PROMPT: PromptSource = {
  path: 'p.8',
  data: Buffer.alloc(240, 0xd5),
  framing: { payloadType: 8, payloadBytes: 80, packetMs: 10, timestampStep: 80 },
};

function setup() {
  let now = 1000;
  const stats = new GlobalStats();
  let r = 0;
  const scheduler = new PlaybackScheduler({
    prompts: new PromptCache(),
    stats,
    now: () => now,
    randomInt: (max) => (r++ * 7919) % max,
  });
  t.teardown(() => {
    scheduler.close();
  });
  const ends: PlaybackEnd[] = [];
  let packets = 0;
  const hooks = {
    onPacket: () => (packets += 1),
    onEnd: (reason: PlaybackEnd) => ends.push(reason),
  };
  return {
    scheduler,
    stats,
    hooks,
    ends,
    packets: () => packets,
    at: (ms: number) => {
      now = ms;
      scheduler.tick(ms);
    },
  };
}

t.test('playbackScheduler.start() mutes the target, plays, and unmutes at the end', async (t) => {
  const s = setup();
  const target = new FakeTarget();
  s.scheduler.start(target, PROMPT, 1, s.hooks);
  t.equal(target.playing, true);
  t.equal(s.stats.nplrsCreated, 1);
  s.at(1000);
  s.at(1015);
  t.equal(target.sent.length, 2);
  t.same(
    target.sent.map((x) => [x.port, x.address]),
    [
      [4000, '192.0.2.1'],
      [4000, '192.0.2.1'],
    ],
  );
  s.at(1030);
  t.equal(target.sent.length, 3);
  t.equal(target.playing, false, 'end of prompt');
  t.same(s.ends, ['eof']);
  t.same([s.stats.nplrsDestroyed, s.stats.npktsPlayed, s.packets()], [1, 3, 3]);
  t.equal(s.scheduler.size, 0);
});

t.test('playbackScheduler.start() replaces the running player; stop() ends it', async (t) => {
  const s = setup();
  const target = new FakeTarget();
  const first = s.scheduler.start(target, PROMPT, -1, s.hooks);
  s.at(1000);
  const second = s.scheduler.start(target, PROMPT, -1, s.hooks);
  t.not(first.ssrc, second.ssrc);
  t.same(s.ends, ['stopped']);
  t.equal(target.playing, true);
  s.at(1001);
  t.equal(readRtpHeader(target.sent[1]?.packet ?? Buffer.alloc(0))?.ssrc, second.ssrc);
  t.equal(s.scheduler.stop(target), true);
  t.equal(s.scheduler.stop(target), false);
  t.equal(target.playing, false);
  s.at(2000);
  t.equal(target.sent.length, 2);
  t.same([s.stats.nplrsCreated, s.stats.nplrsDestroyed], [2, 2]);
});

t.test('playbackScheduler.tick() waits for a target address, then starts from then', async (t) => {
  const s = setup();
  const target = new FakeTarget();
  target.remoteAddress = undefined;
  s.scheduler.start(target, PROMPT, 1, s.hooks);
  s.at(1000);
  s.at(1500);
  t.equal(target.sent.length, 0);
  t.equal(target.playing, true, 'the other party is muted meanwhile');
  target.remoteAddress = '192.0.2.9';
  s.at(1520);
  t.equal(target.sent.length, 1, 'no burst of the waiting time');
  t.equal(readRtpHeader(target.sent[0]?.packet ?? Buffer.alloc(0))?.marker, true);
  s.at(1530);
  t.equal(target.sent.length, 2);
});

t.test('playbackScheduler.tick() resumes after a long stall instead of bursting', async (t) => {
  const s = setup();
  const target = new FakeTarget();
  s.scheduler.start(target, { ...PROMPT, data: Buffer.alloc(8000) }, 1, s.hooks);
  s.at(1000);
  s.at(1150);
  t.equal(target.sent.length, 16, 'a short delay is caught up');
  s.at(3000);
  t.equal(target.sent.length, 17, 'a stall of 1.85 s is not');
  s.at(3010);
  t.equal(target.sent.length, 18);
});

t.test(
  'playbackScheduler.tick() ends a player whose socket throws, and keeps the others',
  async (t) => {
    const s = setup();
    const broken = new FakeTarget();
    const fine = new FakeTarget();
    s.scheduler.start(broken, PROMPT, -1, s.hooks);
    s.scheduler.start(fine, PROMPT, -1, s.hooks);
    broken.throwOnSend = true;
    s.at(1000);
    t.same(s.ends, ['send-error']);
    t.equal(broken.playing, false);
    t.equal(fine.sent.length, 1);
  },
);

t.test('playbackScheduler.close() stops every player; later starts play nothing', async (t) => {
  const s = setup();
  const a = new FakeTarget();
  s.scheduler.start(a, PROMPT, -1, s.hooks);
  s.scheduler.close();
  s.scheduler.close();
  t.equal(a.playing, false);
  const b = new FakeTarget();
  s.scheduler.start(b, PROMPT, -1, s.hooks);
  t.equal(b.playing, false);
  s.at(5000);
  t.equal(b.sent.length, 0);
});

t.test('playbackScheduler drives players from its own timer in real time', async (t) => {
  const stats = new GlobalStats();
  const scheduler = new PlaybackScheduler({
    prompts: new PromptCache(),
    stats,
    now: () => performance.now(),
  });
  t.teardown(() => {
    scheduler.close();
  });
  const target = new FakeTarget();
  let ended = false;
  scheduler.start(target, PROMPT, 2, { onPacket: () => undefined, onEnd: () => (ended = true) });
  // A prompt that never ends is left to the assertion below.
  await waitUntil(() => ended, 'the prompt ended', 3000).catch(() => undefined);
  t.equal(ended, true);
  t.equal(target.sent.length, 6);
  t.equal(scheduler.size, 0);
});
