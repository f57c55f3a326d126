/**
 * The notification client against real unix and TCP listeners (docs/protocol.md 8.4): lazy
 * connection, one line per notification on one connection, reconnection, drops when the target
 * is down, the bounded queue, the wildcard target, close().
 */
import net from 'node:net';
import pino from 'pino';
import t from 'tap';
import { TimeoutNotifier } from '../../../src/notify/notifier.ts';
import { parseNotifyTargets } from '../../../src/notify/targets.ts';
import { waitUntil } from '../../helpers/control.ts';
import { NotifyListener } from '../../helpers/notify-listener.ts';

function notifier(
  t: { teardown(fn: () => unknown): void },
  targets: string[],
  extra: { maxQueued?: number; connectTimeoutMs?: number } = {},
): TimeoutNotifier {
  const { specs, errors } = parseNotifyTargets(targets);
  if (errors.length > 0) throw new Error(errors.join('; '));
  const n = new TimeoutNotifier({
    targets: specs,
    logger: pino({ level: 'silent' }),
    now: () => performance.now(),
    ...extra,
  });
  t.teardown(() => n.close());
  return n;
}

t.test('notifier: lazy connect, then every tag + LF on the same unix connection', async (t) => {
  const l = await NotifyListener.unix(t);
  const n = notifier(t, [`unix:${l.path}`]);
  const target = n.resolve(`unix:${l.path}`, undefined);
  if (target === undefined) throw new Error('no target');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(l.connections.length, 0, 'nothing connects before the first notification');
  n.notify(target, 'my tag+x');
  n.notify(target, 'tag7');
  await l.waitFor('my tag+x\ntag7\n');
  t.equal(l.connections.length, 1, 'one connection');
  n.notify(target, 'later');
  await l.waitFor('later\n');
  t.equal(l.text, 'my tag+x\ntag7\nlater\n', 'exact bytes, nothing else');
  t.equal(l.connections.length, 1, 'still the same connection');
  t.same(n.counters, { sent: 3, dropped: 0, connects: 1, connectFailures: 0 });
});

t.test('notifier: bytes of the decoded tag go out as they are (latin1)', async (t) => {
  const l = await NotifyListener.tcp(t);
  const n = notifier(t, [`tcp:127.0.0.1:${String(l.port)}`]);
  const target = n.resolve(`tcp:127.0.0.1:${String(l.port)}`, undefined);
  if (target === undefined) throw new Error('no target');
  n.notify(target, 'T\u00e9\u0001 x');
  await l.waitFor('x\n');
  t.same([...Buffer.concat(l.connections.flat())], [0x54, 0xe9, 0x01, 0x20, 0x78, 0x0a]);
});

t.test(
  'notifier: a target that is down drops its notification; later ones arrive once it is up',
  async (t) => {
    const l = await NotifyListener.tcp(t);
    const port = l.port;
    await l.close();
    const n = notifier(t, [`tcp:127.0.0.1:${String(port)}`]);
    const target = n.resolve(`tcp:127.0.0.1:${String(port)}`, undefined);
    if (target === undefined) throw new Error('no target');
    n.notify(target, 'lost');
    await waitUntil(() => n.counters.connectFailures === 1, 'the failed connect');
    t.equal(n.counters.dropped, 1, 'dropped, as the reference does');
    t.equal(n.backlog, 0, 'nothing kept');
    await l.open();
    n.notify(target, 'found');
    await l.waitFor('found\n');
    t.equal(l.text, 'found\n');
  },
);

t.test(
  'notifier: a listener that closes the connection gets the next line on a new one',
  async (t) => {
    const l = await NotifyListener.unix(t);
    l.closeAfterFirstLine = true;
    const n = notifier(t, [l.path]);
    const target = n.resolve(l.path, undefined);
    if (target === undefined) throw new Error('no target');
    n.notify(target, 'one');
    await l.waitFor('one\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    n.notify(target, 'two');
    await l.waitFor('two\n');
    t.equal(l.connections.length, 2, 'reconnected');
    t.equal(l.text, 'one\ntwo\n');
  },
);

t.test(
  'notifier: a listener that does not read holds nothing up; lines arrive when it reads',
  async (t) => {
    const l = await NotifyListener.tcp(t);
    l.paused = true;
    const n = notifier(t, [`tcp:127.0.0.1:${String(l.port)}`]);
    const target = n.resolve(`tcp:127.0.0.1:${String(l.port)}`, undefined);
    if (target === undefined) throw new Error('no target');
    const started = performance.now();
    for (let i = 0; i < 200; i += 1) n.notify(target, `tag-${String(i)}`);
    t.ok(performance.now() - started < 50, 'notify() returns at once');
    await new Promise((resolve) => setTimeout(resolve, 200));
    t.equal(l.text, '', 'nothing read yet');
    l.resume();
    await l.waitFor('tag-199\n');
    t.equal(l.text.split('\n').length - 1, 200, 'all 200 lines, once each');
  },
);

t.test('notifier: the queue is bounded while the connection cannot take more', async (t) => {
  // A listener that accepts but never reads, and a queue of 5: the kernel buffers fill first.
  const server = net.createServer((s) => s.pause());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => sockets.add(s));
  const port = (server.address() as net.AddressInfo).port;
  const n = notifier(t, [`tcp:127.0.0.1:${String(port)}`], { maxQueued: 5 });
  const target = n.resolve(`tcp:127.0.0.1:${String(port)}`, undefined);
  if (target === undefined) throw new Error('no target');
  n.notify(target, 'first');
  await waitUntil(() => n.counters.connects === 1 && n.backlog === 0, 'the connection');
  // 12 MB at a listener that never reads: the kernel's buffers take a few MB, the queue 5 lines,
  // the rest is dropped.
  const big = 'x'.repeat(60_000);
  for (let i = 0; i < 200; i += 1) n.notify(target, big);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.ok(
    n.backlog <= 5 + 1,
    `backlog ${String(n.backlog)}: the queue of 5 plus the line being written`,
  );
  t.ok(n.counters.dropped > 0, `dropped ${String(n.counters.dropped)} of 200`);
  t.equal(n.counters.sent + n.counters.dropped + n.backlog, 201, 'every line is accounted for');
  t.equal(n.counters.connectFailures, 0, 'the connection itself is fine');
});

t.test(
  'notifier: the wildcard connects back to the command source at the port given',
  async (t) => {
    const l = await NotifyListener.tcp(t, '127.0.0.1');
    const n = notifier(t, [`tcp:%%CC_SELF%%:${String(l.port)}`]);
    const wildcard = `tcp:%%CC_SELF%%:${String(l.port)}`;
    const a = n.resolve(wildcard, { remote: '127.0.0.1', local: '127.0.0.1' });
    const b = n.resolve(wildcard, { remote: '127.0.0.1', local: '0.0.0.0' });
    const c = n.resolve(wildcard, undefined);
    const d = n.resolve(wildcard, { remote: '::1', local: '::1' });
    t.equal(a?.name, `tcp:127.0.0.1:${String(l.port)}`);
    t.equal(b, a, 'one target per address and port, reused');
    t.equal(c, a, 'unix/stdio commands count as 127.0.0.1');
    t.equal(d, a, 'IPv6 commands count as 127.0.0.1');
    if (a === undefined) throw new Error('no target');
    n.notify(a, 'cc-self');
    await l.waitFor('cc-self\n');
    t.equal(n.resolve('tcp:%%CC_SELF%%:1', undefined), undefined, 'another port is not configured');
  },
);

t.test('notifier: close() ends connections and later notifications are ignored', async (t) => {
  const l = await NotifyListener.unix(t);
  const n = notifier(t, [`unix:${l.path}`]);
  const target = n.resolve(`unix:${l.path}`, undefined);
  if (target === undefined) throw new Error('no target');
  n.notify(target, 'before');
  await l.waitFor('before\n');
  await n.close();
  await n.close();
  n.notify(target, 'after');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(l.text, 'before\n');
});
