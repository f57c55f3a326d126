/**
 * The worker protocol without a worker: a StreamChange crosses a message port and lands on a
 * relay stream as the setters of WorkerStream meant it, and the shared counters read back on the
 * main thread what the worker wrote.
 */
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import t from 'tap';
import { RelayStream } from '../../../src/media/relay.ts';
import {
  applyStreamChange,
  clearCounters,
  readTotals,
  sharedSizes,
  SlotCounters,
  type StreamChange,
  type ToWorker,
  writeCounters,
} from '../../../src/media/worker/worker-protocol.ts';
import type { PacketTap } from '../../../src/media/stream.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

function stream(isRtp = true): RelayStream {
  const settings = { stats: new GlobalStats(), now: () => 0, sendTwice: false };
  return new RelayStream(0, isRtp, settings, { touch: () => undefined });
}

/** Posts `msg` through a real port and takes it back, as the worker receives it. */
function roundTrip(msg: ToWorker): ToWorker {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(msg);
    const received = receiveMessageOnPort(port2);
    if (received === undefined) throw new Error('nothing received');
    return received.message as ToWorker;
  } finally {
    port1.close();
    port2.close();
  }
}

const tap: PacketTap = { record: () => undefined };

t.test('a stream change crosses the port unchanged', async (t) => {
  const change: StreamChange = { prefill: { address: '192.0.2.1', port: 5000 } };
  t.same(roundTrip({ op: 'stream', slot: 7, change }), { op: 'stream', slot: 7, change });
});

t.test('each flag is applied alone, the others stay', async (t) => {
  const s = stream();
  applyStreamChange(s, { complete: true }, () => tap);
  t.equal(s.complete, true);
  t.equal(s.asymmetric, false);
  applyStreamChange(s, { asymmetric: true }, () => tap);
  applyStreamChange(s, { playing: true }, () => tap);
  t.same([s.complete, s.asymmetric, s.playing], [true, true, true]);
  applyStreamChange(s, { complete: false }, () => tap);
  t.same([s.complete, s.asymmetric, s.playing], [false, true, true]);
  applyStreamChange(s, { blocked: true }, () => tap);
  t.same([s.complete, s.asymmetric, s.playing, s.blocked], [false, true, true, true]);
  applyStreamChange(s, { playing: false }, () => tap);
  t.same([s.playing, s.blocked], [false, true], 'the end of a prompt leaves a block alone');
});

t.test('tap: true installs the worker recorder, false removes it', async (t) => {
  const s = stream();
  let made = 0;
  const make = (): PacketTap => {
    made += 1;
    return tap;
  };
  applyStreamChange(s, { complete: true }, make);
  t.equal(made, 0, 'no recorder made for another change');
  applyStreamChange(s, { tap: true }, make);
  t.equal(s.tap, tap);
  applyStreamChange(s, { tap: false }, make);
  t.equal(s.tap, undefined);
  t.equal(made, 1);
});

t.test('prefill names the remote; resizeMs starts and stops z', async (t) => {
  const s = stream();
  const msg = roundTrip({
    op: 'stream',
    slot: 0,
    change: { prefill: { address: '192.0.2.9', port: 6000 } },
  });
  if (msg.op !== 'stream') throw new Error('not a stream change');
  applyStreamChange(s, msg.change, () => tap);
  t.equal(s.remoteAddress, '192.0.2.9');
  t.equal(s.remotePort, 6000);
  applyStreamChange(s, { resizeMs: 30 }, () => tap);
  t.equal(s.repacketizeMs, 30);
  applyStreamChange(s, { resizeMs: 0 }, () => tap);
  t.equal(s.repacketizeMs, undefined, '0 stops it');
  const rtcp = stream(false);
  applyStreamChange(rtcp, { resizeMs: 20 }, () => tap);
  t.equal(rtcp.repacketizeMs, undefined, 'RTCP streams are never re-packetized');
});

t.test('counters written into a slot read back on the main thread', async (t) => {
  const sizes = sharedSizes(4);
  const counters = new Float64Array(new SharedArrayBuffer(sizes.counters));
  const s = stream();
  s.npktsIn = 5;
  s.nbytesIn = 800;
  s.nrelayed = 4;
  s.ndropped = 1;
  s.nignored = 2;
  s.nsendErrors = 3;
  const totals = {
    npktsRcvd: 10,
    npktsRelayed: 8,
    npktsDiscard: 2,
    npktsResizerIn: 1,
    npktsResizerOut: 2,
    npktsResizerDiscard: 3,
  };
  writeCounters(counters, 2, s, totals);
  const view = new SlotCounters(counters, 2, true);
  t.same(
    [view.npktsIn, view.nbytesIn, view.nrelayed, view.ndropped, view.nignored, view.nsendErrors],
    [5, 800, 4, 1, 2, 3],
  );
  t.ok(view.rtpStats !== undefined, 'an RTP slot has RTP figures');
  t.equal(new SlotCounters(counters, 3, false).rtpStats, undefined);
  t.same(readTotals(counters), totals);
  t.equal(new SlotCounters(counters, 1, true).npktsIn, 0, 'other slots untouched');
  clearCounters(counters, 2);
  t.equal(view.npktsIn, 0, 'a new stream in the slot starts from zero');
});
