/**
 * Session.close(), the close cascade: forks come off, sockets close, TOS marks go, recorders and
 * players end, each once, in the manager's old order; the figures come back, and a second close
 * changes nothing. Socket-less streams from the fake media plane, fake recorders and hooks.
 */
import t from 'tap';
import { makeManager } from '../../helpers/manager.ts';
import { FakeMedia } from '../../helpers/fake-media.ts';
import { localStream } from '../../../src/media/plane.ts';
import type { Recorder, RecordingStats } from '../../../src/record/recorder.ts';
import type { OfferRequest } from '../../../src/session/manager.ts';
import { IdleCounter, Leg, Session, type SessionCloseHooks } from '../../../src/session/session.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

/** Counts its closes; each close resolves at once. */
class FakeRecorder implements Recorder {
  readonly combined = false;
  readonly paths: readonly string[] = [];
  closes = 0;
  readonly #events: string[];
  readonly #name: string;
  constructor(events: string[], name: string) {
    this.#events = events;
    this.#name = name;
  }
  record(): void {
    return undefined;
  }
  stats(): RecordingStats {
    return { records: 0, dropped: 0, bytesWritten: 0, failed: 0 };
  }
  close(): Promise<void> {
    this.closes += 1;
    this.#events.push(`close ${this.#name}`);
    return Promise.resolve();
  }
}

function setup() {
  const events: string[] = [];
  let now = 10_000;
  const stats = new GlobalStats();
  const media = new FakeMedia(stats);
  const streams = media.createStreams({ touch: () => undefined });
  const counter = new IdleCounter(60);
  const local = { address: '127.0.0.1', family: 4 } as const;
  const legs = [
    new Leg(0, streams[0].rtp, streams[0].rtcp, local, counter, 60),
    new Leg(1, streams[1].rtp, streams[1].rtcp, local, counter, 60),
  ] as const;
  const names = new Map<object, string>([
    [legs[0], 'leg0'],
    [legs[1], 'leg1'],
    [legs[0].rtp, 'rtp0'],
    [legs[1].rtp, 'rtp1'],
  ]);
  const hooks: SessionCloseHooks = {
    now: () => now,
    unmark: (owner) => events.push(`unmark ${names.get(owner) ?? 'other'}`),
    stopPlayer: (stream) => events.push(`stop player ${names.get(stream) ?? 'other'}`),
  };
  const session = new Session('call', 'ft', legs, true, now, hooks);
  const recorders = [new FakeRecorder(events, 'rec0'), new FakeRecorder(events, 'rec1')] as const;
  names.set(recorders[0], 'rec0');
  names.set(recorders[1], 'rec1');
  legs[0].startRecording(recorders[0]);
  legs[1].startRecording(recorders[1]);
  return {
    session,
    legs,
    recorders,
    events,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

t.test('close() ends forks, sockets, marks, recorders and players, in that order', async (t) => {
  const { session, legs, recorders, events } = setup();
  session.onClose(() => events.push('fork off'));
  t.equal(session.closed, false);
  const end = session.close();
  t.equal(session.closed, true);
  t.same(events, [
    'fork off',
    'unmark leg0',
    'unmark leg1',
    'unmark rec0',
    'close rec0',
    'unmark rec1',
    'close rec1',
    'stop player rtp0',
    'stop player rtp1',
  ]);
  t.equal(recorders[0].closes, 1);
  t.equal(recorders[1].closes, 1);
  t.equal(legs[0].recorder, undefined, 'the recorder slots are empty');
  t.equal(legs[1].recorder, undefined);
  t.equal(legs[0].bound, false, 'the sockets are released');
  t.equal(end.recordings.length, 2, 'one recording close per leg');
  await Promise.all(end.recordings);
});

t.test(
  'close() is idempotent: the second call closes nothing and returns the same figures',
  (t) => {
    const { session, recorders, events, advance } = setup();
    const first = session.close();
    const seen = events.length;
    advance(5_000);
    const second = session.close();
    t.equal(second, first, 'the same result object');
    t.equal(events.length, seen, 'no hook ran again');
    t.equal(recorders[0].closes, 1);
    t.equal(recorders[1].closes, 1);
    t.end();
  },
);

t.test('close() returns the figures the manager folds and logs', (t) => {
  const { session, legs, advance } = setup();
  advance(1_500);
  session.markComplete(10_250);
  advance(1_000);
  const rtp1 = localStream(legs[1].rtp);
  rtp1.npktsIn = 3;
  rtp1.nbytesIn = 480;
  rtp1.nrelayed = 2;
  rtp1.ndropped = 1;
  localStream(legs[0].rtcp).nignored = 4;
  const end = session.close();
  t.equal(end.duration, 2.5, 'seconds from creation to close');
  t.equal(end.setup, 0.25, 'seconds from creation to completion');
  t.equal(end.complete, true);
  t.equal(end.rtpDirections, 1, 'one leg received RTP');
  t.equal(end.rtcpDirections, 0);
  t.same(end.traffic, {
    callerPkts: 3,
    calleePkts: 0,
    callerBytes: 480,
    calleeBytes: 0,
    relayed: 2,
    dropped: 1,
    ignored: 4,
  });
  t.end();
});

t.test('a session never completed has no setup time', (t) => {
  const { session } = setup();
  const end = session.close();
  t.equal(end.complete, false);
  t.equal(end.setup, undefined);
  t.end();
});

const offer = (tag2?: string): OfferRequest => ({
  callId: 'c',
  tag1: 'ft',
  ...(tag2 === undefined ? {} : { tag2 }),
  remote: { kind: 'address', address: '192.0.2.1', port: 4000, family: 4 },
  weak: false,
  local: { kind: 'default' },
  newPorts: false,
});

t.test('the manager ends a session through close() and folds its figures once', async (t) => {
  const { manager, stats, setNow } = makeManager();
  const { session } = await manager.update(offer());
  await manager.lookup(offer('tt'));
  setNow(2_000);
  t.ok(manager.delete('c', 'ft', 'tt', false));
  t.equal(session.closed, true);
  t.equal(manager.size, 0);
  t.equal(stats.nsessDestroyed, 1);
  t.equal(stats.totalDuration, 2);
  t.equal(stats.nsessNortp, 1, 'complete without RTP');
  manager.destroy(session, 'delete');
  t.equal(stats.nsessDestroyed, 1, 'a second destroy folds nothing');
  await manager.close();
});
