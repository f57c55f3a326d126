/**
 * The `S ttl=N` sub-command and the idle counters as the reference keeps them (docs/protocol.md 4.7,
 * 2.14; sippy/rtpproxy src/rtpp_ttl.c, src/rtpp_proc_ttl.c, src/commands/rpcpv1_ul_subc_set.c):
 * the TTL set by S survives the L that completes the session, one counter per session unless
 * `-i`, and a counter of N expires between N and N + 1 seconds after its last restart (a 1 s
 * sweep tick: the tick that finds it at 0 ends the session). Waits poll with deadlines.
 */
import t from 'tap';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { portWindow, uniqueCall } from '../helpers/udp.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `q` every 50 ms until the session is gone; resolves with the ms it took. */
async function msUntilGone(d: RunningDaemon, q: string, deadlineMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < deadlineMs) {
    if ((await d.command(q)) === 'E50\n') return Date.now() - start;
    await sleep(50);
  }
  throw new Error(`session still there after ${String(deadlineMs)} ms`);
}

t.test(
  'S ttl=2 on the U survives the completing L, and the session ends 2 to 3 s later',
  async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(171), '-T', '60']);
    const call = uniqueCall(t.name);
    const reply = await d.command(`U ${call.id} 127.0.0.1 40000 ${call.from} && S ttl=2`);
    t.match(reply, /^[0-9]+ 127\.0\.0\.1\n$/, 'S answers nothing of its own');
    const q = `Q ${call.id} ${call.from} ${call.to}`;
    await d.port(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`);
    // A sweep tick may fall between the L and the Q: 2, or 1 just after a tick.
    t.match(await d.command(q), /^[21] 0 0 0 0\n$/, 'the L completed the session with the S value');
    const ms = await msUntilGone(d, q, 6000);
    // The reference: between N and N + 1 s (sweep phase); a little slack for a busy host.
    t.ok(ms >= 1900 && ms <= 3600, `gone ${String(ms)} ms after the L (want 2000..3000)`);
    t.equal(await d.command('G nsess_timeout nsess_complete'), '1 1\n');
  },
);

t.test('one counter per session: S ttl on one leg sets it for both, above -T too', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(171), '-T', '5']);
  const call = uniqueCall(t.name);
  await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from} ${call.to} && Sr ttl=40`);
  await d.port(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`);
  // Each reading may come just after a sweep tick: the value, or one less.
  t.match(await d.command(`Q ${call.id} ${call.from} ${call.to}`), /^(40|39) 0 0 0 0\n$/);
  t.match(
    await d.command(`Q ${call.id} ${call.from} ${call.to} && S ttl=7`),
    /^(40|39) 0 0 0 0\n$/,
    'Q reads before its sub-command runs',
  );
  t.match(await d.command(`Q ${call.id} ${call.to} ${call.from}`), /^[76] 0 0 0 0\n$/);
  await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from} ${call.to}`);
  t.match(
    await d.command(`Q ${call.id} ${call.from} ${call.to}`),
    /^[76] 0 0 0 0\n$/,
    'U restarts the counter at 7',
  );
});

t.test('-i: one counter per leg, S sets only its leg; the smallest is reported', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(171), '-T', '5', '-i']);
  const call = uniqueCall(t.name);
  await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from} && S ttl=40`);
  await d.port(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`);
  const q = `Q ${call.id} ${call.from} ${call.to}`;
  t.match(await d.command(q), /^[54] 0 0 0 0\n$/, 'the other leg kept -T');
  await d.command(`${q} && Sr ttl=30`);
  t.match(await d.command(q), /^(30|29) 0 0 0 0\n$/, 'both legs raised: 40 and 30');
});

t.test('S ttl=0 and S garbage are refused before anything runs (E3)', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(171)]);
  const call = uniqueCall(t.name);
  t.equal(await d.command(`U ${call.id} 127.0.0.1 40000 ${call.from} && S ttl=0`), 'E3\n');
  t.equal(await d.command(`U ${call.id} 127.0.0.1 40000 ${call.from} && S ttl`), 'E3\n');
  t.equal(await d.command(`Q ${call.id} ${call.from}`), 'E50\n', 'no session was created');
});
