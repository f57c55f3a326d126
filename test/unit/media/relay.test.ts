import { EventEmitter } from 'node:events';
import type dgram from 'node:dgram';
import fc from 'fast-check';
import t from 'tap';
import {
  CONFIRM_PACKETS,
  Connections,
  RelayStream,
  wireSession,
} from '../../../src/media/relay.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

/** Just enough of a dgram socket for the relay: records what it sends. */
class FakeSocket extends EventEmitter {
  readonly sent: { data: Buffer; port: number; address: string }[] = [];
  send(data: Buffer, port: number, address: string): void {
    this.sent.push({ data, port, address });
  }
  close(): void {
    this.removeAllListeners();
  }
}

function setup(now: { ms: number }, strictSource = false) {
  const stats = new GlobalStats();
  const touched: number[] = [];
  const sink = { touch: (leg: 0 | 1) => touched.push(leg) };
  const settings = { stats, now: () => now.ms, sendTwice: false, strictSource };
  const legs = [0, 1].map((i) => {
    const rtp = new RelayStream(i as 0 | 1, true, settings, sink);
    const socket = new FakeSocket();
    rtp.attach(socket as unknown as dgram.Socket, '127.0.0.1', 30000 + i * 2, 4);
    rtp.complete = true;
    return { rtp, socket };
  });
  const [l0, l1] = legs as [(typeof legs)[0], (typeof legs)[0]];
  l0.rtp.peer = l1.rtp;
  l1.rtp.peer = l0.rtp;
  return { stats, l0, l1, touched };
}

const rinfo = (address: string, port: number): dgram.RemoteInfo => ({
  address,
  port,
  family: 'IPv4',
  size: 0,
});
const rtp = (ssrc: number, seq: number): Buffer => {
  const b = Buffer.alloc(20);
  b[0] = 0x80;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(ssrc, 8);
  return b;
};

t.test('relayStream latches on the first source and relays out of the peer', async (t) => {
  const now = { ms: 0 };
  const { l0, l1, stats } = setup(now);
  l0.rtp.prefill('10.0.0.2', 4000);
  l1.socket.emit('message', rtp(1, 1), rinfo('10.0.0.1', 5000));
  t.same(
    l0.socket.sent.map((s) => [s.address, s.port]),
    [['10.0.0.2', 4000]],
    'sent from leg 0 to its peer',
  );
  t.equal(l1.rtp.remoteAddress, '10.0.0.1');
  t.ok(l1.rtp.latched);
  l1.socket.emit('message', rtp(2, 5000), rinfo('10.0.0.9', 5000));
  t.equal(l1.rtp.nignored, 1, 'another SSRC from another source is refused');
  l1.socket.emit('message', rtp(1, 2), rinfo('10.0.0.7', 6000));
  t.equal(l1.rtp.remoteAddress, '10.0.0.7', 'same SSRC, next sequence: re-latched');
  t.equal(stats.npktsRelayed, 2);
});

t.test(
  'relayStream: a pre-fill opens a 10 s window in which a new source may take over',
  async (t) => {
    const now = { ms: 100_000 };
    const { l1 } = setup(now);
    l1.socket.emit('message', rtp(1, 1), rinfo('10.0.0.1', 5000));
    l1.rtp.prefill('10.0.0.1', 5002);
    t.equal(l1.rtp.remoteAddress, '10.0.0.1');
    t.equal(l1.rtp.remotePort, 5000, 'an address learnt from packets is not moved by signalling');
    now.ms += 5000;
    l1.socket.emit('message', rtp(3, 900), rinfo('10.0.0.3', 7000));
    t.equal(l1.rtp.remotePort, 7000, 'accepted within the window');
    now.ms += 20_000;
    l1.socket.emit('message', rtp(4, 1), rinfo('10.0.0.4', 7000));
    t.equal(l1.rtp.remotePort, 7000, 'refused after the window');
  },
);

t.test(
  'relayStream: random packets from random sources never throw and the counters add up',
  async (t) => {
    const packet = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
    const source = fc.record({
      address: fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3'),
      port: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), packet, source, fc.integer({ min: 0, max: 20_000 })), {
          maxLength: 60,
        }),
        (events) => {
          const now = { ms: 0 };
          const { l0, l1, stats } = setup(now);
          for (const [toLeg1, data, src, dt] of events) {
            now.ms += dt;
            (toLeg1 ? l1 : l0).socket.emit('message', data, rinfo(src.address, src.port));
          }
          const accepted = l0.rtp.npktsIn + l1.rtp.npktsIn;
          const refused = l0.rtp.nignored + l1.rtp.nignored;
          return (
            stats.npktsRcvd === events.length &&
            accepted + refused === events.length &&
            stats.npktsRelayed + l0.rtp.ndropped + l1.rtp.ndropped === accepted &&
            stats.npktsRelayed === l0.socket.sent.length + l1.socket.sent.length
          );
        },
      ),
      { numRuns: 500 },
    );
    t.pass('500 random packet sequences');
  },
);

/** A fake socket that can be connected, as node:dgram's: connected, it sends only to its remote. */
class ConnectingSocket extends FakeSocket {
  remote: { port: number; address: string } | undefined;
  connects = 0;
  connect(port: number, address: string): void {
    if (this.remote !== undefined) throw new Error('already connected');
    this.remote = { port, address };
    this.connects += 1;
  }
  disconnect(): void {
    if (this.remote === undefined) throw new Error('not connected');
    this.remote = undefined;
  }
  override send(data: Buffer, port?: number, address?: string): void {
    const remote = this.remote;
    if (remote === undefined) {
      if (port === undefined || address === undefined) throw new Error('no address');
      super.send(data, port, address);
    } else {
      if (port !== undefined) throw new Error('ERR_SOCKET_DGRAM_IS_CONNECTED');
      super.send(data, remote.port, remote.address);
    }
  }
}

function connectingSetup(now: { ms: number }) {
  const connections = new Connections();
  const settings = { stats: new GlobalStats(), now: () => now.ms, sendTwice: false, connections };
  const sink = { touch: () => undefined };
  const make = (leg: 0 | 1, isRtp: boolean) => {
    const stream = new RelayStream(leg, isRtp, settings, sink);
    const socket = new ConnectingSocket();
    stream.attach(socket as unknown as dgram.Socket, '127.0.0.1', 30000 + leg * 2, 4);
    stream.complete = true;
    return { stream, socket };
  };
  const a = make(1, true);
  const b = make(0, true);
  a.stream.peer = b.stream;
  b.stream.peer = a.stream;
  return { connections, a, b };
}

t.test(
  'relayStream connects a latched symmetric RTP leg and goes back when a move is possible',
  async (t) => {
    const now = { ms: 100_000 };
    const { connections, a, b } = connectingSetup(now);
    b.stream.prefill('10.0.0.2', 4000);
    a.socket.emit('message', rtp(1, 1), rinfo('10.0.0.1', 5000));
    t.notOk(a.stream.connected, 'the packet that latches does not connect');
    a.socket.emit('message', rtp(1, 2), rinfo('10.0.0.1', 5000));
    t.ok(a.stream.connected, 'the next one from the latched source does');
    t.same(a.socket.remote, { port: 5000, address: '10.0.0.1' });
    t.equal(connections.size, 1);
    // B's packets leave through A's connected socket, without an address.
    b.socket.emit('message', rtp(2, 1), rinfo('10.0.0.2', 4000));
    t.same(a.socket.sent.at(-1)?.address, '10.0.0.1');
    t.ok(b.stream.connected, "B's first packet confirmed its signalled address: connected at once");

    // Silence: a check after packets keeps it, the next check without any disconnects.
    connections.check();
    t.ok(a.stream.connected, 'packets since the last check');
    connections.check();
    t.notOk(a.stream.connected, 'no packet since the last check: disconnected');
    t.equal(a.socket.remote, undefined);
    t.equal(connections.size, 0);
    a.socket.emit('message', rtp(1, 3), rinfo('10.0.0.1', 5000));
    t.ok(a.stream.connected, 'the party speaks again: connected again');

    // A pre-fill opens the re-latch window: no connection until it closes.
    a.stream.prefill('10.0.0.1', 5000);
    t.notOk(a.stream.connected, 'pre-fill disconnects');
    a.socket.emit('message', rtp(1, 4), rinfo('10.0.0.1', 5000));
    t.notOk(a.stream.connected, 'not within the 10 s window');
    now.ms += 10_000;
    a.socket.emit('message', rtp(1, 5), rinfo('10.0.0.1', 5000));
    t.ok(a.stream.connected, 'after the window');

    // A prompt to the party goes out of the connected socket; one elsewhere disconnects first.
    a.stream.socket?.send(rtp(9, 1), 5000, '10.0.0.1');
    t.ok(a.stream.connected, 'a prompt to the remote keeps the connection');
    t.same(a.socket.sent.at(-1)?.address, '10.0.0.1');
    a.stream.socket?.send(rtp(9, 2), 7000, '10.0.0.7');
    t.notOk(a.stream.connected, 'a send elsewhere disconnects');
    t.same(a.socket.sent.at(-1), { data: rtp(9, 2), port: 7000, address: '10.0.0.7' });

    // Asymmetric legs never connect.
    a.socket.emit('message', rtp(1, 6), rinfo('10.0.0.1', 5000));
    t.ok(a.stream.connected);
    a.stream.asymmetric = true;
    t.notOk(a.stream.connected, 'becoming asymmetric disconnects');
    a.socket.emit('message', rtp(1, 7), rinfo('10.0.0.1', 5000));
    t.notOk(a.stream.connected, 'and stays so');
    a.stream.detach();
    t.equal(connections.size, 0, 'nothing left registered');
  },
);

t.test('relayStream never connects RTCP or without a Connections registry', async (t) => {
  const now = { ms: 100_000 };
  const connections = new Connections();
  const settings = { stats: new GlobalStats(), now: () => now.ms, sendTwice: false, connections };
  const rtcp = new RelayStream(1, false, settings, { touch: () => undefined });
  const socket = new ConnectingSocket();
  rtcp.attach(socket as unknown as dgram.Socket, '127.0.0.1', 30001, 4);
  rtcp.complete = true;
  for (let i = 0; i < 3; i += 1) socket.emit('message', rtp(1, i), rinfo('10.0.0.1', 5001));
  t.equal(socket.connects, 0, 'RTCP stays unconnected');
  const unregistered = new RelayStream(
    1,
    true,
    { stats: new GlobalStats(), now: () => now.ms, sendTwice: false },
    { touch: () => undefined },
  );
  const s2 = new ConnectingSocket();
  unregistered.attach(s2 as unknown as dgram.Socket, '127.0.0.1', 30004, 4);
  unregistered.complete = true;
  for (let i = 0; i < 3; i += 1) s2.emit('message', rtp(1, i), rinfo('10.0.0.1', 5000));
  t.equal(s2.connects, 0, '--no_connect_media');
  t.equal(connections.size, 0);
});

t.test('strict sources: the signalled address at any port, never another', async (t) => {
  const now = { ms: 100_000 };
  const { l0, l1 } = setup(now, true);
  l0.rtp.prefill('10.0.0.2', 4000);
  l1.rtp.prefill('10.0.0.1', 5000);
  l1.socket.emit('message', rtp(1, 1), rinfo('10.0.0.66', 5000));
  t.equal(l1.rtp.nignored, 1, "a stranger's first packet is refused");
  t.equal(l1.rtp.remoteAddress, '10.0.0.1');
  l1.socket.emit('message', rtp(1, 1), rinfo('10.0.0.1', 5002));
  t.same([l1.rtp.remotePort, l1.rtp.latched], [5002, true], 'another port of the party (NAT)');
  now.ms += 2000;
  for (let seq = 2; seq < 2 + 2 * CONFIRM_PACKETS; seq += 1) {
    l1.socket.emit('message', rtp(1, seq), rinfo('10.0.0.66', 5002));
  }
  t.equal(l1.rtp.remoteAddress, '10.0.0.1', "the party's SSRC and next sequences: refused");
  l1.rtp.prefill('10.0.0.1', 5000);
  l1.socket.emit('message', rtp(9, 1), rinfo('10.0.0.66', 5002));
  t.equal(l1.rtp.remoteAddress, '10.0.0.1', 'in the re-latch window too');
  l1.rtp.prefill('10.0.0.3', 5000);
  l1.socket.emit('message', rtp(9, 2), rinfo('10.0.0.3', 7000));
  t.equal(l1.rtp.remoteAddress, '10.0.0.3', "a re-INVITE's new address is taken");
  t.equal(l0.socket.sent.length, 2, 'only the parties were relayed');
});

t.test('strict sources: without a signalled address, consecutive packets confirm', async (t) => {
  const now = { ms: 100_000 };
  const settings = {
    stats: new GlobalStats(),
    now: () => now.ms,
    sendTwice: false,
    strictSource: true,
  };
  const make = (leg: 0 | 1, isRtp: boolean) =>
    new RelayStream(leg, isRtp, settings, { touch: () => undefined });
  const streams = [
    { rtp: make(0, true), rtcp: make(0, false) },
    { rtp: make(1, true), rtcp: make(1, false) },
  ] as const;
  wireSession(streams);
  const sockets = streams.flatMap((leg, i) =>
    [leg.rtp, leg.rtcp].map((s, j) => {
      const socket = new FakeSocket();
      s.attach(socket as unknown as dgram.Socket, '127.0.0.1', 30000 + 2 * i + j, 4);
      s.complete = true;
      return socket;
    }),
  );
  const [, , rtp1, rtcp1] = sockets as [FakeSocket, FakeSocket, FakeSocket, FakeSocket];
  const a = streams[1];
  // A sweep: one packet per source, and a broken sequence, never confirm.
  rtp1.emit('message', rtp(5, 65534), rinfo('10.0.0.66', 1));
  rtp1.emit('message', rtp(5, 65535), rinfo('10.0.0.66', 2));
  rtp1.emit('message', rtp(5, 0), rinfo('10.0.0.66', 2));
  rtp1.emit('message', rtp(5, 2), rinfo('10.0.0.66', 2));
  t.equal(a.rtp.remoteAddress, undefined, 'not confirmed');
  rtcp1.emit('message', Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 5]), rinfo('10.0.0.66', 3));
  t.equal(a.rtcp.remoteAddress, undefined, 'RTCP waits for its RTP leg');
  // The party: four in a row, across the sequence wrap.
  for (let i = 0; i < CONFIRM_PACKETS; i += 1) {
    t.equal(a.rtp.remoteAddress, undefined);
    rtp1.emit('message', rtp(7, (65534 + i) & 0xffff), rinfo('10.0.0.1', 4000));
  }
  t.same([a.rtp.remoteAddress, a.rtp.remotePort], ['10.0.0.1', 4000], 'confirmed');
  t.equal(a.rtp.nignored, 4 + CONFIRM_PACKETS - 1);
  rtcp1.emit('message', Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 7]), rinfo('10.0.0.1', 4009));
  t.same([a.rtcp.remoteAddress, a.rtcp.remotePort], ['10.0.0.1', 4009], 'RTCP follows its address');
  for (let i = 0; i < CONFIRM_PACKETS - 1; i += 1) {
    rtp1.emit('message', rtp(7, i + 2), rinfo('10.0.0.66', 2));
  }
  t.equal(a.rtp.remoteAddress, '10.0.0.1', 'a stranger needs the whole confirmation too');
});

t.test('strict sources: no packet of a stranger moves a leg that knows its party', async (t) => {
  const stranger = fc.record({
    address: fc.constantFrom('10.0.0.66', '10.0.0.67', '::1'),
    port: fc.integer({ min: 1, max: 3 }),
    ssrc: fc.constantFrom(1, 2),
    seq: fc.integer({ min: 0, max: 8 }),
    wait: fc.integer({ min: 0, max: 12_000 }),
    reinvite: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(stranger, { maxLength: 40 }), (packets) => {
      const now = { ms: 100_000 };
      const { l0, l1 } = setup(now, true);
      l0.rtp.prefill('10.0.0.2', 4000);
      l1.rtp.prefill('10.0.0.1', 5000);
      l1.socket.emit('message', rtp(1, 0), rinfo('10.0.0.1', 5000));
      for (const p of packets) {
        now.ms += p.wait;
        if (p.reinvite) l1.rtp.prefill('10.0.0.1', 5000);
        l1.socket.emit('message', rtp(p.ssrc, p.seq), rinfo(p.address, p.port));
      }
      return l1.rtp.remoteAddress === '10.0.0.1' && l0.socket.sent.length === 1;
    }),
    { numRuns: 500 },
  );
  t.pass('500 random sequences of strangers, silences and re-INVITEs');
});
