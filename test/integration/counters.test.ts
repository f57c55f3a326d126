/**
 * The G counters as the reference counts them (docs/protocol.md 10.3; sippy/rtpproxy
 * src/rtpp_command_reply.c, src/rtpp_command.c, src/rtpp_session.c, src/rtpp_proc_ttl.c,
 * src/rtpp_pipe.c): an L that finds no session answers `0` but counts as an error; the session
 * counters through the timeout and notification flows. Every reading is one G over the real UDP
 * control socket, so the command counters of each test are exact.
 */
import t, { type Test } from 'tap';
import { LAYOUTS, startDaemon } from '../helpers/daemon.ts';
import { NotifyListener } from '../helpers/notify-listener.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

const CMDS = 'G ncmds_rcvd ncmds_succd ncmds_errs ncmds_repld';
const SESS =
  'Gv nsess_created nsess_destroyed nsess_timeout nsess_complete nsess_nortp nsess_owrtp nsess_nortcp nsess_owrtcp';

/** Every test of this file, with the daemon in `workers`' layout (see LAYOUTS). */
function suite(t: Test, workers: string): void {
  t.test('an L for a session that does not exist answers 0 and counts as an error', async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(173), '--workers', workers]);
    const call = uniqueCall(t.name);
    t.equal(await d.command(`L ${call.id} 127.0.0.1 40000 ${call.from} ${call.to}`), '0\n');
    // The G counts itself as received, not yet as replied.
    t.equal(await d.command(CMDS), '2 0 1 1\n', 'rcvd 2, succd 0, errs 1, repld 1');
    // A session that is gone (D) answers the same, and counts the same.
    await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
    t.equal(await d.command(`D ${call.id} ${call.from}`), '0\n');
    t.equal(await d.command(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`), '0\n');
    t.equal(await d.command(CMDS), '6 3 2 5\n', 'U, D and the first G succeeded; both L failed');
    // A U whose sub-command fails still succeeded (its reply carries the -1).
    t.match(
      await d.command(`U ${call.id} 127.0.0.1 40000 ${call.from} ${call.to} && C nosuch a b`),
      /^[0-9]+ 127\.0\.0\.1 && -1\n$/,
    );
    t.equal(await d.command(CMDS), '8 5 2 7\n');
  });

  t.test('timeouts with notifications: the session counters of the reference', async (t) => {
    const listener = await NotifyListener.tcp(t);
    const target = `tcp:127.0.0.1:${String(listener.port)}`;
    const d = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(173),
      '-T',
      '1',
      '-W',
      '1',
      '-n',
      target,
      '--workers',
      workers,
    ]);
    // Never answered: expires on -W, notified; not complete, so no RTP/RTCP verdict.
    const setup = uniqueCall('setup');
    await d.port(`U ${setup.id} 127.0.0.1 40000 ${setup.from} ${target} never-answered`);
    // Answered, one-way RTP, no RTCP: expires on -T, notified.
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const oneWay = uniqueCall('oneway');
    await d.port(`U ${oneWay.id} 127.0.0.1 ${String(a.port)} ${oneWay.from} ${target} one-way`);
    const toA = await d.port(
      `L ${oneWay.id} 127.0.0.1 ${String(b.port)} ${oneWay.from} ${oneWay.to}`,
    );
    await a.send(rtpPacket({ seq: 1, ssrc: 5 }), toA);
    await b.receive();
    // Answered, deleted before it expires: destroyed, not timed out, not notified.
    const deleted = uniqueCall('deleted');
    await d.port(`U ${deleted.id} 127.0.0.1 40004 ${deleted.from} ${target} deleted`);
    await d.port(`L ${deleted.id} 127.0.0.1 40006 ${deleted.from} ${deleted.to}`);
    t.equal(await d.command(`D ${deleted.id} ${deleted.from} ${deleted.to}`), '0\n');
    // No command while waiting: the listener sees both notifications (bounded wait).
    await listener.waitFor('never-answered\n');
    await listener.waitFor('one-way\n');
    t.equal(
      await d.command(SESS),
      'nsess_created=3 nsess_destroyed=3 nsess_timeout=2 nsess_complete=2 nsess_nortp=1 ' +
        'nsess_owrtp=1 nsess_nortcp=2 nsess_owrtcp=0\n',
    );
    t.notOk(listener.text.includes('deleted'), 'D sends no notification');
    // 7 commands before this G, all answered without an error.
    t.equal(await d.command(CMDS), '8 7 0 7\n');
  });

  t.test('the session records when both parties were connected (20140617)', async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(173), '--workers', workers], {
      captureLogs: true,
    });
    t.equal(await d.command('VF 20140617'), '1\n');
    const call = uniqueCall(t.name);
    await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await d.port(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`);
    t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0\n');
    const ended = d.logs.find((l) => l.msg === 'session ended' && l['callId'] === call.id);
    const setup = Number(ended?.['setup']);
    t.ok(setup >= 0.29 && setup < 2, `connected ${String(setup)} s after the U`);
    t.ok(Number(ended?.['duration']) >= setup, 'within the session lifetime');
    const unanswered = uniqueCall('unanswered');
    await d.port(`U ${unanswered.id} 127.0.0.1 40000 ${unanswered.from}`);
    t.equal(await d.command(`D ${unanswered.id} ${unanswered.from}`), '0\n');
    const never = d.logs.find((l) => l.msg === 'session ended' && l['callId'] === unanswered.id);
    t.equal(never?.['setup'], undefined, 'never connected: no setup time');
  });
}

for (const workers of LAYOUTS) {
  t.test(`--workers ${workers}`, async (t) => {
    suite(t, workers);
  });
}
