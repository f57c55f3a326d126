/**
 * --overload_prot through the real daemon: the event loop is really blocked (the daemon runs in
 * this process), so its measured lateness crosses the limit and new sessions get E98; existing
 * ones keep working, and new ones are accepted again once the loop is back on time. Without the
 * option the same load refuses nothing.
 */
import t from 'tap';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { portWindow, uniqueCall } from '../helpers/udp.ts';

const ARGS = ['-l', '127.0.0.1', ...portWindow(11), '-T', '30'];

/** Keeps the event loop busy 150 ms out of every ~170 ms until the returned function is called. */
function blockEventLoop(): () => void {
  const timer = setInterval(() => {
    const end = Date.now() + 150;
    while (Date.now() < end) {
      // spin: this is the overload
    }
  }, 20);
  return () => clearInterval(timer);
}

/** Sends a U for a new call every 200 ms until the reply matches; returns the reply. */
async function newSessionUntil(
  d: RunningDaemon,
  want: RegExp,
  deadlineMs: number,
): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const reply = await d.command(`U ${uniqueCall('probe').id} 127.0.0.1 40000 ft`);
    if (want.test(reply)) return reply;
    if (Date.now() > deadline) {
      throw new Error(`last reply ${JSON.stringify(reply)}, wanted ${String(want)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

t.test(
  'overload: new sessions get E98 while the event loop runs late, existing ones carry on',
  async (t) => {
    const d = await startDaemon(t, [...ARGS, '--overload_prot']);
    const call = uniqueCall(t.name);
    const port = await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
    await d.port(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`);
    const unblock = blockEventLoop();
    t.teardown(unblock);
    t.equal(await newSessionUntil(d, /^E98\n$/, 6000), 'E98\n', 'refused under load');
    t.equal(
      await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from} ${call.to}`),
      port,
      're-INVITE of an existing call works',
    );
    t.match(await d.command(`Q ${call.id} ${call.from} ${call.to}`), /^[0-9]+ /, 'Q works');
    unblock();
    t.match(
      await newSessionUntil(d, /^[0-9]+ 127\.0\.0\.1\n$/, 6000),
      /^[0-9]+ /,
      'accepted again once the loop is on time',
    );
  },
);

t.test('overload: without --overload_prot the same load refuses nothing', async (t) => {
  const d = await startDaemon(t, ARGS);
  const unblock = blockEventLoop();
  t.teardown(unblock);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.match(
    await d.command(`U ${uniqueCall(t.name).id} 127.0.0.1 40000 ft`),
    /^[0-9]+ 127\.0\.0\.1\n$/,
  );
  unblock();
});
