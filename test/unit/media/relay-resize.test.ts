/**
 * A relay stream with `z`: packets go through the re-packetizer, what it holds leaves on the
 * HeldPackets tick, the counters behind G's npkts_resizer_* add up, the recorder sees the packets
 * as they leave, and stopping it (a U/L without z, the end of the session) drops what it held.
 */
import { EventEmitter } from 'node:events';
import type dgram from 'node:dgram';
import t, { type Test } from 'tap';
import { HeldPackets, RelayStream } from '../../../src/media/relay.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

class FakeSocket extends EventEmitter {
  readonly sent: Buffer[] = [];
  send(data: Buffer): void {
    this.sent.push(data);
  }
  close(): void {
    this.removeAllListeners();
  }
}

const rinfo: dgram.RemoteInfo = { address: '10.0.0.1', port: 5000, family: 'IPv4', size: 0 };

/** 20 ms of PCMU, sequence `seq`, timestamp `seq * 160`. */
function pcmu(seq: number): Buffer {
  const b = Buffer.alloc(172, seq);
  b[0] = 0x80;
  b[1] = 0; // PCMU
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(seq * 160, 4);
  b.writeUInt32BE(0x77, 8);
  return b;
}

function setup(t: Test) {
  const now = { ms: 1000 };
  const stats = new GlobalStats();
  const held = new HeldPackets();
  t.teardown(() => {
    held.close();
  });
  const settings = { stats, now: () => now.ms, sendTwice: false, held };
  const sink = { touch: () => undefined };
  const from = new RelayStream(1, true, settings, sink);
  const to = new RelayStream(0, true, settings, sink);
  const inSocket = new FakeSocket();
  const outSocket = new FakeSocket();
  from.attach(inSocket as unknown as dgram.Socket, '127.0.0.1', 30000, 4);
  to.attach(outSocket as unknown as dgram.Socket, '127.0.0.1', 30002, 4);
  from.complete = true;
  to.complete = true;
  from.peer = to;
  to.peer = from;
  to.prefill('10.0.0.2', 4000);
  return { now, stats, held, from, to, inSocket, outSocket };
}

t.test('z30: joined as packets arrive, the rest on the tick; counters add up', async (t) => {
  const { now, stats, held, from, inSocket, outSocket } = setup(t);
  from.repacketize(30);
  t.equal(from.repacketizeMs, 30);
  const recorded: number[] = [];
  from.tap = { record: (packet) => recorded.push(packet.length) };
  for (let seq = 0; seq < 5; seq += 1) {
    inSocket.emit('message', pcmu(seq), rinfo);
    now.ms += 20;
  }
  t.same(
    outSocket.sent.map((p) => p.length),
    [252, 252, 252],
    'three 30 ms packets while the audio arrives',
  );
  t.equal(held.size, 1, 'the stream holds the 10 ms rest');
  held.tick();
  t.equal(outSocket.sent.length, 3, 'not due yet');
  now.ms += 60;
  held.tick();
  t.same(
    outSocket.sent.map((p) => p.readUInt16BE(2)),
    [0, 1, 2, 3],
  );
  t.equal(outSocket.sent[3]?.length, 92, 'the rest: 10 ms');
  t.equal(held.size, 0, 'nothing held: the stream left the tick');
  t.same(recorded, [252, 252, 252, 92], 'the recorder gets the packets as they leave');
  t.equal(stats.npktsResizerIn, 5);
  t.equal(stats.npktsResizerOut, 4);
  t.equal(stats.npktsRelayed, 4);
  t.equal(from.npktsIn, 5, 'received packets count as received');
  t.equal(from.nrelayed, 4, 'relayed ones as relayed');
});

t.test('stopping z drops what it held; the next packets pass unchanged', async (t) => {
  const { stats, from, to, inSocket, outSocket } = setup(t);
  const rtcp = new RelayStream(
    1,
    false,
    { stats, now: () => 0, sendTwice: false },
    {
      touch: () => undefined,
    },
  );
  rtcp.repacketize(20);
  t.equal(rtcp.repacketizeMs, undefined, 'never on RTCP');
  from.repacketize(40);
  inSocket.emit('message', pcmu(1), rinfo);
  t.equal(outSocket.sent.length, 0, 'held');
  from.repacketize(undefined);
  t.equal(stats.npktsResizerDiscard, 1);
  const p = pcmu(2);
  inSocket.emit('message', p, rinfo);
  t.same(outSocket.sent, [p], 'unchanged');

  // A fresh pair of sockets (`n`) keeps it; the end of the session drops what it held.
  from.repacketize(40);
  from.attach(new FakeSocket() as unknown as dgram.Socket, '127.0.0.1', 30010, 4);
  t.equal(from.repacketizeMs, 40, 'kept across a new socket');
  from.onPacket(pcmu(3), rinfo);
  from.detach();
  t.equal(stats.npktsResizerDiscard, 2);
  t.equal(from.repacketizeMs, undefined);
  to.detach();
});

t.test('a late packet is dropped and counted; an unknown payload type is relayed', async (t) => {
  const { stats, from, inSocket, outSocket } = setup(t);
  from.repacketize(10);
  inSocket.emit('message', pcmu(5), rinfo);
  t.equal(outSocket.sent.length, 2, '20 ms in two');
  inSocket.emit('message', pcmu(4), rinfo);
  t.equal(stats.npktsResizerDiscard, 1, 'older than what was sent');
  t.equal(outSocket.sent.length, 2);
  const dyn = pcmu(6);
  dyn[1] = 101;
  inSocket.emit('message', dyn, rinfo);
  t.equal(outSocket.sent.at(-1), dyn, 'passed as received');
  t.equal(stats.npktsResizerIn, 1);
});
