/**
 * Idle expiry (docs/protocol.md 4.7): the setup timer (-W) before the answer, the session timer (-T)
 * after it, re-armed by packets on either leg. Waits poll with deadlines.
 */
import t, { type Test } from 'tap';
import { LAYOUTS, type RunningDaemon, startDaemon } from '../helpers/daemon.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

/** Polls `Q` until the session is gone; resolves with the ttl values seen on the way. */
async function waitGone(d: RunningDaemon, q: string, deadlineMs: number): Promise<string[]> {
  const seen: string[] = [];
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    const reply = await d.command(q);
    if (reply === 'E50\n') return seen;
    seen.push(reply.split(' ')[0] ?? '');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `session still there after ${String(deadlineMs)} ms (ttl seen: ${seen.join(',')})`,
  );
}

/** Every test of this file, with the daemon in `workers`' layout (see LAYOUTS). */
function suite(t: Test, workers: string): void {
  t.test('expiry: a session without its answer expires after -W', async (t) => {
    const d = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(2),
      '-T',
      '60',
      '-W',
      '1',
      '--workers',
      workers,
    ]);
    const call = uniqueCall(t.name);
    await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
    t.equal(await d.command(`Q ${call.id} ${call.from}`), '1 0 0 0 0\n', 'setup ttl reported');
    const seen = await waitGone(d, `Q ${call.id} ${call.from}`, 5000);
    t.ok(seen.includes('0'), 'counted down to 0 before expiring');
    t.equal(
      await d.command('G nsess_created nsess_destroyed nsess_timeout nsess_complete'),
      '1 1 1 0\n',
    );
  });

  t.test(
    'expiry: a complete session expires after -T without traffic, and packets keep it alive',
    async (t) => {
      const d = await startDaemon(t, [
        '-l',
        '127.0.0.1',
        ...portWindow(2),
        '-T',
        '1',
        '-W',
        '30',
        '--workers',
        workers,
      ]);
      const a = await Peer.open(t);
      const b = await Peer.open(t);
      const call = uniqueCall(t.name);
      await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
      const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
      t.equal(
        await d.command(`Q ${call.id} ${call.from} ${call.to}`),
        '1 0 0 0 0\n',
        '-T applies once complete',
      );
      // One party sending keeps the whole session alive (one shared timer): 30 packets over 3 s.
      for (let seq = 0; seq < 30; seq += 1) {
        await a.send(rtpPacket({ seq, ssrc: 7 }), toA);
        await b.receive();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      t.match(
        await d.command(`Q ${call.id} ${call.from} ${call.to}`),
        /^[01] 30 0 30 0\n$/,
        'still alive after 3 s of traffic',
      );
      await waitGone(d, `Q ${call.id} ${call.from} ${call.to}`, 5000);
      t.equal(await d.command('G nsess_timeout nsess_owrtp'), '1 1\n', 'one-way RTP counted');
    },
  );
}

for (const workers of LAYOUTS) {
  t.test(`--workers ${workers}`, async (t) => {
    suite(t, workers);
  });
}
