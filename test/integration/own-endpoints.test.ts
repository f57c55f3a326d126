/**
 * Media never reaches our own control sockets (docs/architecture.md, "Own endpoints"): a remote
 * that names one of our sockets counts as no address, latching never takes one, and the UDP
 * control socket drops what our own media sockets send it.
 */
import t from 'tap';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { NotifyListener } from '../helpers/notify-listener.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

const ARGS = ['-l', '127.0.0.1', ...portWindow(71), '-T', '30'];

/** A call that must survive: Q answers for it as long as nothing dropped every session. */
async function bystander(d: RunningDaemon): Promise<string> {
  const a = uniqueCall('bystander');
  await d.port(`U ${a.id} 127.0.0.1 9000 ${a.from}`);
  await d.port(`L ${a.id} 127.0.0.1 9002 ${a.from} ${a.to}`);
  return `Q ${a.id} ${a.from} ${a.to}`;
}

/** Control commands look like this when they arrive as media: cookie, then the command. */
const X_AS_MEDIA = Buffer.from('bleed1 X\n', 'latin1');

for (const workers of ['1', '0']) {
  t.test(
    `own endpoints (--workers ${workers}): a caller whose SDP names our control socket`,
    async (t) => {
      const d = await startDaemon(t, [...ARGS, '--workers', workers], { captureLogs: true });
      const q = await bystander(d);
      const a = await Peer.open(t);
      const b = await Peer.open(t);
      const call = uniqueCall(t.name);
      const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(d.controlPort)} ${call.from}`);
      const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
      const rcvd = await d.command('G ncmds_rcvd');
      // The callee's media, which would go to the caller's signalled address: the control socket.
      for (let i = 0; i < 3; i += 1) await b.send(X_AS_MEDIA, toB);
      await b.expectNothing(200);
      t.equal(
        await d.command('G ncmds_rcvd'),
        `${String(Number(rcvd) + 1)}\n`,
        'the control socket ran no command but the G',
      );
      t.match(await d.command(q), /^30 /, 'no call was dropped');
      t.ok(
        d.logs.some((l) => l.msg.includes('names one of our own sockets')),
        'the refused address is logged',
      );
      // The caller's real media latches the leg (confirmed: no address was signalled).
      for (let seq = 1; seq <= 5; seq += 1) await a.send(rtpPacket({ seq, ssrc: 0xaaaa }), toA);
      t.equal((await b.receive()).data.readUInt16BE(2), 4, 'B hears A once A is confirmed');
      await b.receive();
      const back = rtpPacket({ seq: 9, ssrc: 0xbbbb, fill: 0x55 });
      await b.send(back, toB);
      await a.expect(back, toA);
    },
  );
}

t.test('own endpoints: a re-INVITE naming our control socket keeps the old address', async (t) => {
  const d = await startDaemon(t, ARGS);
  const q = await bystander(d);
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const call = uniqueCall(t.name);
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  await a.send(rtpPacket({ seq: 1, ssrc: 0xaaaa }), toA);
  await b.receive();
  t.equal(
    await d.port(`U ${call.id} 127.0.0.1 ${String(d.controlPort)} ${call.from} ${call.to}`),
    toB,
  );
  await b.send(X_AS_MEDIA, toB);
  await a.expect(X_AS_MEDIA, toA);
  t.match(await d.command(q), /^30 /, 'no call was dropped');
});

t.test('own endpoints: a remote copy to our control socket is refused (E65)', async (t) => {
  const d = await startDaemon(t, ARGS);
  const call = uniqueCall(t.name);
  await d.port(`U ${call.id} 127.0.0.1 9000 ${call.from}`);
  await d.port(`L ${call.id} 127.0.0.1 9002 ${call.from} ${call.to}`);
  t.equal(
    await d.command(`C ${call.id} udp:127.0.0.1:${String(d.controlPort)} ${call.from} ${call.to}`),
    'E65\n',
  );
});

for (const workers of ['1', '0']) {
  t.test(
    `own endpoints (--workers ${workers}): the control socket drops what our media sockets send`,
    async (t) => {
      const d = await startDaemon(t, [...ARGS, '--workers', workers], { captureLogs: true });
      const q = await bystander(d);
      const a = await Peer.open(t);
      const call = uniqueCall(t.name);
      await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
      const session = [...d.daemon.manager.sessions()].find((s) => s.callId === call.id);
      const socket = session?.legs[0].rtp.socket;
      if (socket === undefined) throw new Error('no media socket');
      const rcvd = await d.command('G ncmds_rcvd');
      // One of our own media sockets sends to the control socket (as a misdirected relay would).
      socket.send(X_AS_MEDIA, d.controlPort, '127.0.0.1');
      await a.expectNothing(200);
      t.equal(
        await d.command('G ncmds_rcvd'),
        `${String(Number(rcvd) + 1)}\n`,
        'the datagram was not run as a command',
      );
      t.match(await d.command(q), /^30 /, 'no call was dropped');
      t.ok(
        d.logs.some((l) => l.msg.includes('from one of our own media sockets')),
        'the drop is logged',
      );
    },
  );
}

t.test('own endpoints: a remote naming a -n target on this host gets no media', async (t) => {
  const notify = await NotifyListener.tcp(t);
  const d = await startDaemon(t, [...ARGS, '-n', `tcp:127.0.0.1:${String(notify.port)}`], {
    captureLogs: true,
  });
  // A UDP socket on the notify target's port sees what the relay would send there.
  const atTarget = await Peer.open(t, '127.0.0.1', notify.port);
  const b = await Peer.open(t);
  const call = uniqueCall(t.name);
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(notify.port)} ${call.from}`);
  await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  await b.send(rtpPacket({ seq: 1, ssrc: 0xbbbb }), toB);
  await atTarget.expectNothing(200);
  t.ok(d.logs.some((l) => l.msg.includes('names one of our own sockets')));
});

t.test(
  'own endpoints: a client on another local address with a media port number is answered',
  async (t) => {
    const d = await startDaemon(t, ARGS);
    const call = uniqueCall(t.name);
    const port = await d.port(`U ${call.id} 127.0.0.1 9000 ${call.from}`);
    // Kamailio's ephemeral ports overlap the media range: same number, another address.
    const client = await Peer.open(t, '127.0.0.2', port);
    await client.send(Buffer.from('ck1 V\n', 'latin1'), d.controlPort, '127.0.0.1');
    t.equal((await client.receive()).data.toString('latin1'), 'ck1 20040107\n');
  },
);
