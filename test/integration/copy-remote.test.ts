/**
 * Remote copy, `C[p] CALLID udp:HOST:PORT T1 [T2]` (docs/protocol.md 6.6): a UDP listener receives the
 * caller's RTP from the allocated even port and RTCP from the odd port; `Cp` tells the port; N,
 * D and X stop the copy and free its sockets; bad targets answer E65.
 */
import t, { type Test } from 'tap';
import { startDaemon } from '../helpers/daemon.ts';
import {
  openRtpRtcpPeers,
  Peer,
  portWindow,
  rtcpPacket,
  rtpPacket,
  uniqueCall,
  waitPortsFree,
} from '../helpers/udp.ts';

type Daemon = Awaited<ReturnType<typeof startDaemon>>;

const WINDOW_MIN = 42000 + 40 * 100;

/** A complete call: the caller `a` sends to `toA`, the callee `b` hears it from `toB`. */
async function call(t: Test, d: Daemon) {
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const c = uniqueCall(t.name);
  const toB = await d.port(`U ${c.id} 127.0.0.1 ${String(a.port)} ${c.from}`);
  const toA = await d.port(`L ${c.id} 127.0.0.1 ${String(b.port)} ${c.from} ${c.to}`);
  return { a, b, c, toA, toB };
}

/** Parses a `Cp` reply `PORT ADDR`. */
function copyReply(reply: string): { port: number; address: string } {
  const m = /^([0-9]+) ([0-9.]+)\n$/.exec(reply);
  if (m?.[1] === undefined || m[2] === undefined) throw new Error(`Cp -> ${JSON.stringify(reply)}`);
  return { port: Number(m[1]), address: m[2] };
}

t.test('copy: RTP from the even port, RTCP from the odd port, stopped by N', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(40)]);
  t.equal(await d.command('VF 20071218'), '1\n');
  t.equal(await d.command('VF 20250523'), '1\n');
  const { a, b, c, toA, toB } = await call(t, d);
  const [rtpL, rtcpL] = await openRtpRtcpPeers(t);
  const reply = await d.command(`Cp ${c.id} udp:127.0.0.1:${String(rtpL.port)} ${c.from} ${c.to}`);
  const copy = copyReply(reply);
  t.equal(copy.address, '127.0.0.1');
  t.equal(copy.port % 2, 0, 'even port');
  t.ok(copy.port >= WINDOW_MIN && copy.port < WINDOW_MIN + 100, 'from the media range');
  t.not(copy.port, toA);
  t.not(copy.port, toB);

  for (let seq = 1; seq <= 3; seq += 1) {
    const p = rtpPacket({ seq, ssrc: 0x1234 });
    await a.send(p, toA);
    await b.expect(p, toB);
    await rtpL.expect(p, copy.port);
  }
  const rr = rtcpPacket(0x1234);
  await a.send(rr, toA + 1);
  await rtcpL.expect(rr, copy.port + 1);
  // Only the T1 party's packets are copied.
  await b.send(rtpPacket({ seq: 9, ssrc: 0x9999 }), toB);
  await a.receive();
  await rtpL.expectNothing(200);

  t.equal(
    await d.command(`Cp ${c.id} udp:127.0.0.1:${String(rtpL.port)} ${c.from} ${c.to}`),
    'E65\n',
    'one recorder slot per leg: a second Cp has no port to tell',
  );
  t.equal(
    await d.command(`C ${c.id} udp:127.0.0.1:${String(rtpL.port)} ${c.from} ${c.to}`),
    '0\n',
    'a second plain C is ignored with success',
  );

  t.equal(await d.command(`N ${c.id} ${c.from} ${c.to}`), '0\n');
  const p = rtpPacket({ seq: 4, ssrc: 0x1234 });
  await a.send(p, toA);
  await b.expect(p, toB);
  await rtpL.expectNothing(200);
  // The pair is free again once N closed it.
  const again = await Peer.open(t, '127.0.0.1', copy.port);
  t.equal(again.port, copy.port);
});

t.test('copy: plain C answers 0; X and D close the copy sockets', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(40)]);
  const first = await call(t, d);
  const listener = await Peer.open(t);
  const target = `udp:127.0.0.1:${String(listener.port)}`;
  t.equal(await d.command(`C ${first.c.id} ${target} ${first.c.from}`), '0\n');
  const p = rtpPacket({ seq: 1, ssrc: 7 });
  await first.a.send(p, first.toA);
  const got = await listener.receive();
  t.same(got.data, p, 'copied as a bare payload');
  t.equal(got.port % 2, 0);
  t.equal(await d.command('X'), '0\n');
  // X awaits nothing: wait until the copy's pair is let go, then bind it ourselves.
  await waitPortsFree([got.port, got.port + 1], 'the copy pair let go after X');
  const rtpAgain = await Peer.open(t, '127.0.0.1', got.port);
  const rtcpAgain = await Peer.open(t, '127.0.0.1', got.port + 1);
  t.equal(rtpAgain.port + 1, rtcpAgain.port, 'both copy ports are free after X');

  const second = await call(t, d);
  const reply = copyReply(await d.command(`Cp ${second.c.id} ${target} ${second.c.from}`));
  t.equal(await d.command(`D ${second.c.id} ${second.c.from}`), '0\n');
  await waitPortsFree([reply.port], 'the copy port let go after D');
  const freed = await Peer.open(t, '127.0.0.1', reply.port);
  t.equal(freed.port, reply.port, 'free after D');
});

t.test('copy: -R leaves RTCP out; a name is resolved unless --no_resolve', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(40), '-R']);
  const { a, c, toA } = await call(t, d);
  const [rtpL, rtcpL] = await openRtpRtcpPeers(t);
  const copy = copyReply(
    await d.command(`Cp ${c.id} udp:localhost:${String(rtpL.port)} ${c.from}`),
  );
  const p = rtpPacket({ seq: 1, ssrc: 5 });
  await a.send(p, toA);
  await rtpL.expect(p, copy.port);
  await a.send(rtcpPacket(5), toA + 1);
  await rtcpL.expectNothing(200);

  const nr = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(41), '--no_resolve']);
  const other = await call(t, nr);
  t.equal(
    await nr.command(`C ${other.c.id} udp:localhost:${String(rtpL.port)} ${other.c.from}`),
    'E65\n',
  );
  t.equal(
    await nr.command(`C ${other.c.id} udp:127.0.0.1:${String(rtpL.port)} ${other.c.from}`),
    '0\n',
  );
});

t.test('copy: unusable targets answer E65, a missing session E50', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(40)]);
  const { c } = await call(t, d);
  for (const target of [
    'udp:127.0.0.1',
    'udp:127.0.0.1:',
    'udp:127.0.0.1:0',
    'udp:127.0.0.1:65536',
    'udp:127.0.0.1:x',
    'udp::5000',
    'udp:0.0.0.0:5000',
    'udp:255.255.255.255:5000',
    'udp:224.0.0.1:5000',
    'udp:::1:5000',
    'udp:[::1]:5000',
    'udp:no-such-host.invalid:5000',
  ]) {
    t.equal(await d.command(`C ${c.id} ${target} ${c.from}`), 'E65\n', target);
  }
  t.equal(await d.command(`C nosuchcall udp:127.0.0.1:5000 ${c.from}`), 'E50\n');
  t.equal(await d.command(`Q ${c.id} ${c.from}`).then((r) => r.startsWith('E')), false);
});
