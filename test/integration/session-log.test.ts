/**
 * Every session end is logged once at info with its counters (issue 6): D, X, idle timeout,
 * shutdown, and D during a drain. The daemon runs in-process with a logger whose lines the test
 * reads back.
 */
import t from 'tap';
import { withTimeout } from '../helpers/control.ts';
import { type LogLine, startDaemon } from '../helpers/daemon.ts';
import { NotifyListener } from '../helpers/notify-listener.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

t.test(
  'session end: one info line per session and reason, with packets and bytes each way',
  async (t) => {
    const tcp = await NotifyListener.tcp(t);
    const sock = `tcp:127.0.0.1:${String(tcp.port)}`;
    const d = await startDaemon(
      t,
      ['-l', '127.0.0.1', ...portWindow(12), '-T', '30', '-W', '1', '-n', sock],
      { captureLogs: true },
    );
    const ended = (): LogLine[] => d.logs.filter((l) => l.msg === 'session ended');

    // D after media both ways: 3 packets from the caller, 2 from the callee.
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const call = uniqueCall('delete');
    const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
    const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
    for (let seq = 1; seq <= 3; seq += 1) {
      await a.send(rtpPacket({ seq, ssrc: 1 }), toA);
      await b.receive();
    }
    for (let seq = 1; seq <= 2; seq += 1) {
      await b.send(rtpPacket({ seq, ssrc: 2 }), toB);
      await a.receive();
    }
    t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0\n');
    t.match(ended(), [
      {
        level: 30,
        callId: call.id,
        tag: call.from,
        reason: 'delete',
        complete: true,
        callerPkts: 3,
        calleePkts: 2,
        callerBytes: 3 * 172,
        calleeBytes: 2 * 172,
        relayed: 5,
        dropped: 0,
      },
    ]);
    t.type(ended()[0]?.['duration'], 'number');

    // X.
    const x = uniqueCall('x');
    await d.port(`U ${x.id} 127.0.0.1 40000 ${x.from}`);
    t.equal(await d.command('X'), '0\n');
    t.match(ended()[1], { callId: x.id, reason: 'delete-all', complete: false, callerPkts: 0 });

    // Idle timeout (-W 1), with a notification.
    const idle = uniqueCall('idle');
    await d.port(`U ${idle.id} 127.0.0.1 40000 ${idle.from} ${sock} bye`);
    await tcp.waitFor('bye\n');
    t.match(ended()[2], { callId: idle.id, reason: 'timeout', notified: sock });

    // D while draining (SIGHUP): logged like any delete, then the drain completes.
    const last = uniqueCall('drain');
    await d.port(`U ${last.id} 127.0.0.1 40000 ${last.from}`);
    await d.port(`L ${last.id} 127.0.0.1 40002 ${last.from} ${last.to}`);
    d.daemon.drain();
    t.equal(await d.command(`D ${last.id} ${last.from}`), '0\n');
    await withTimeout(d.drained, 2000, 'drained');
    t.pass('drained');
    t.match(ended()[3], { callId: last.id, reason: 'delete' });

    await d.daemon.close();
    t.equal(ended().length, 4, 'one line per ended session, no more');
    t.ok(
      ended().every(
        (l) => typeof l['callerBytes'] === 'number' && typeof l['calleeBytes'] === 'number',
      ),
      'bytes are plain numbers',
    );
  },
);

t.test('session end: shutdown logs each remaining session with reason shutdown', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(12), '-T', '30'], {
    captureLogs: true,
  });
  const one = uniqueCall('s1');
  const two = uniqueCall('s2');
  await d.command(`U ${one.id} 127.0.0.1 40000 ${one.from}`);
  await d.command(`U ${two.id} 127.0.0.1 40000 ${two.from}`);
  await d.close();
  const ended = d.logs.filter((l) => l.msg === 'session ended');
  t.same(
    ended.map((l) => [l['callId'], l['reason']]).sort(),
    [
      [one.id, 'shutdown'],
      [two.id, 'shutdown'],
    ].sort(),
  );
});
