/**
 * The start does only what serving needs: the daemon answers commands before its media workers
 * run, boots them a second later or with the first session, whichever comes first, and a session
 * set up while they start is answered and relayed (docs/architecture.md, "Media workers").
 */
import t from 'tap';
import { waitUntil } from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

const RUNNING = 'media workers running';
/** Bounded waits: the warm-up comes 1 s after the start, a worker's start takes well under 20 s. */
const DEADLINE_MS = 20_000;

t.test('warm-up: the daemon answers before its media workers run, then boots them', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(1)], {
    captureLogs: true,
    deferMedia: true,
  });
  t.equal(await d.command('V'), '20040107\n', 'V answered at once');
  t.notOk(
    d.logs.some((l) => l.msg === RUNNING),
    'no media worker ran when the first command was answered',
  );
  await waitUntil(() => d.logs.some((l) => l.msg === RUNNING), RUNNING, DEADLINE_MS);
  t.pass('the workers started with no session asking for them');
});

t.test('warm-up: a session set up right after the start is answered and relayed', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(1), '-T', '30'], {
    captureLogs: true,
    deferMedia: true,
  });
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const call = uniqueCall(t.name);
  t.notOk(
    d.logs.some((l) => l.msg === RUNNING),
    'no media worker runs before the U',
  );
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  const ab = rtpPacket({ seq: 1, ssrc: 0xa1 });
  await a.send(ab, toA);
  await b.expect(ab, toB);
  const ba = rtpPacket({ seq: 1, ssrc: 0xb1 });
  await b.send(ba, toB);
  await a.expect(ba, toA);
  t.pass('relayed both ways by a worker booted by the session');
  await waitUntil(() => d.logs.some((l) => l.msg === RUNNING), RUNNING, DEADLINE_MS);
  t.pass('and the start is logged');
});
