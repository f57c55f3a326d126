import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { MAX_COOKIE_LENGTH, UdpControlListener } from '../../src/control/listener-udp.ts';
import {
  MAX_PENDING_PER_CONNECTION,
  STREAM_REPLY_BUFFER,
  StdioControlListener,
  StreamControlListener,
} from '../../src/control/listener-stream.ts';
import type {
  StreamControlListenerOptions,
  StreamControlSpec,
} from '../../src/control/listener-stream.ts';
import { REPLY_CACHE_ENTRY_OVERHEAD, ReplyCache } from '../../src/control/reply-cache.ts';
import { CommandRunner } from '../../src/control/runner.ts';
import { GlobalStats } from '../../src/util/stats.ts';
import {
  StreamControlClient,
  UdpControlClient,
  udpCommand,
  unixCommand,
  waitUntil,
  withTimeout,
} from '../helpers/control.ts';
import { tempDir } from '../helpers/tmp.ts';
import { canBindIPv6Loopback } from '../helpers/udp.ts';

const silent = pino({ level: 'silent' });

/** A logger that keeps its JSON lines (level info and up) in `lines`. */
function capturingLog(): { log: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = pino(
    { level: 'info' },
    {
      write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }),
    },
  );
  return { log, lines };
}

/** A raw connection and how it ended: 'end' (FIN from the daemon), an error code, or 'open'. */
function rawConnection(
  t: WithTeardown,
  port: number,
): { socket: net.Socket; outcome: () => string; connected: Promise<void> } {
  const socket = net.createConnection(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let outcome = 'open';
  socket.on('end', () => {
    if (outcome === 'open') outcome = 'end';
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (outcome === 'open') outcome = err.code ?? 'error';
  });
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, outcome: () => outcome, connected };
}

interface WithTeardown {
  teardown(fn: () => unknown): void;
}

interface Gate {
  readonly promise: Promise<string>;
  open(reply: string): void;
}

function gate(): Gate {
  let open: (reply: string) => void = () => undefined;
  const promise = new Promise<string>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A fake command handler: echoes the line as JSON, answers E5 to an empty one, waits on gates. */
function fixture(t: WithTeardown, clock?: { now: number }, cacheMaxBytes?: number) {
  const calls: string[] = [];
  const gates = new Map<string, Gate>();
  const stats = new GlobalStats();
  const runner = new CommandRunner(
    (line) => {
      calls.push(line);
      const g = gates.get(line);
      if (g !== undefined) return g.promise;
      if (line === '') return Promise.resolve('E5\n');
      return Promise.resolve(`got:${JSON.stringify(line)}\n`);
    },
    stats,
    silent,
  );
  const cache = new ReplyCache({
    ...(clock === undefined ? {} : { now: () => clock.now }),
    ...(cacheMaxBytes === undefined ? {} : { maxBytes: cacheMaxBytes }),
  });
  t.teardown(() => {
    cache.close();
  });
  return { calls, gates, stats, runner, cache };
}

type Fixture = ReturnType<typeof fixture>;

async function udpListener(
  t: WithTeardown,
  f: Fixture,
  kind: 'udp' | 'udp6' = 'udp',
): Promise<UdpControlListener> {
  const host = kind === 'udp' ? '127.0.0.1' : '::1';
  const listener = new UdpControlListener({
    spec: { kind, host, port: 0 },
    runner: f.runner,
    cache: f.cache,
    log: silent,
  });
  t.teardown(() => listener.close());
  await listener.listen();
  return listener;
}

async function udpClient(
  t: WithTeardown,
  port: number,
  host = '127.0.0.1',
): Promise<UdpControlClient> {
  const client = await UdpControlClient.open(port, host);
  t.teardown(() => client.close());
  return client;
}

async function streamListener(
  t: WithTeardown,
  f: Fixture,
  spec: StreamControlSpec,
  options: Partial<StreamControlListenerOptions> = {},
): Promise<StreamControlListener> {
  const listener = new StreamControlListener({ spec, runner: f.runner, log: silent, ...options });
  t.teardown(() => listener.close());
  await listener.listen();
  return listener;
}

async function streamClient(
  t: WithTeardown,
  target: Parameters<typeof StreamControlClient.connect>[0],
): Promise<StreamControlClient> {
  const client = await StreamControlClient.connect(target);
  t.teardown(() => client.close());
  return client;
}

function socketHandles(): string[] {
  return process.getActiveResourcesInfo().filter((name) => /UDP|TCP|Pipe/.test(name));
}

// The test runner's own pipes (stdout, stderr) are there before any test starts.
const baselineHandles = socketHandles();
const ipv6 = await canBindIPv6Loopback();
const noIPv6 = ipv6 ? false : '::1 cannot be bound on this host';
if (!ipv6) t.comment('skipping udp6/tcp6 cases: ::1 cannot be bound on this host');

t.test('udp', async (t) => {
  t.test('a command round-trips with its cookie, bytes intact', async (t) => {
    const f = fixture(t);
    const listener = await udpListener(t, f);
    t.equal(await udpCommand(listener.port, '127.0.0.1', 'V'), 'got:"V"\n');
    const client = await udpClient(t, listener.port);
    await client.sendRaw(Buffer.from([0x6b, 0x31, 0x20, 0x56, 0x00, 0xff, 0x0a])); // "k1 V\0\xff\n"
    t.equal(await client.receive(), `k1 got:${JSON.stringify('V\u0000\u00ff\n')}\n`);
    t.equal(f.calls[1], 'V\u0000\u00ff\n', 'NUL and high bytes reach the handler');
    t.equal(f.stats.ncmdsRcvd, 2);
    t.equal(f.stats.ncmdsRepld, 2);
    t.equal(f.stats.ncmdsSuccd, 2);
  });

  t.test('an empty datagram answers E5 without a cookie', async (t) => {
    const f = fixture(t);
    const listener = await udpListener(t, f);
    const client = await udpClient(t, listener.port);
    await client.sendRaw(Buffer.alloc(0));
    t.equal(await client.receive(), 'E5\n');
    await client.sendRaw(' \t\r\n');
    t.equal(await client.receive(), 'E5\n');
    t.strictSame(f.calls, ['', '']);
    t.equal(f.stats.ncmdsErrs, 2, 'counted as received error replies');
    t.equal(f.cache.size, 0, 'nothing cached without a cookie');
  });

  t.test('a cookie alone runs an empty command and answers K E5', async (t) => {
    const f = fixture(t);
    const listener = await udpListener(t, f);
    const client = await udpClient(t, listener.port);
    await client.sendRaw('K\n');
    t.equal(await client.receive(), 'K E5\n');
    t.strictSame(f.calls, ['']);
  });

  t.test('a retransmission is answered from the cache, to the new sender', async (t) => {
    const f = fixture(t);
    const listener = await udpListener(t, f);
    const a = await udpClient(t, listener.port);
    const b = await udpClient(t, listener.port);
    t.equal(await a.command('V', { cookie: 'r1' }), 'got:"V"\n');
    // Cache key is the cookie only: another command with the same cookie gets the old reply.
    await b.sendRaw('r1 VF 20050322');
    t.equal(await b.receive(), 'r1 got:"V"\n');
    t.strictSame(f.calls, ['V'], 'handler ran once');
    t.equal(f.stats.ncmdsRcvd, 1);
    t.equal(f.stats.ncmdsRcvdNdups, 1);
    t.equal(f.stats.ncmdsRepld, 1);
  });

  t.test(
    'a retransmission while the command runs waits for the reply and does not run it again',
    async (t) => {
      const f = fixture(t);
      const g = gate();
      f.gates.set('U slow', g);
      const listener = await udpListener(t, f);
      const a = await udpClient(t, listener.port);
      const b = await udpClient(t, listener.port);
      const first = a.command('U slow', { cookie: 'p1' });
      await waitUntil(() => f.calls.length === 1, 'handler started');
      const second = b.command('U slow', { cookie: 'p1' });
      const third = a.command('U slow', { cookie: 'p1' });
      await waitUntil(() => f.stats.ncmdsRcvdNdups === 2, 'retransmissions seen');
      g.open('35000 127.0.0.1\n');
      t.strictSame(await Promise.all([first, second, third]), [
        '35000 127.0.0.1\n',
        '35000 127.0.0.1\n',
        '35000 127.0.0.1\n',
      ]);
      t.strictSame(f.calls, ['U slow'], 'handler ran once');
      t.equal(f.stats.ncmdsRcvd, 1);
    },
  );

  t.test(
    'a cached reply expires 35 s after the command was received (injected clock)',
    async (t) => {
      const clock = { now: 0 };
      const f = fixture(t, clock);
      const listener = await udpListener(t, f);
      const client = await udpClient(t, listener.port);
      t.equal(await client.command('V', { cookie: 'x1' }), 'got:"V"\n');
      clock.now = 34_999;
      f.cache.sweep();
      t.equal(await client.command('V', { cookie: 'x1' }), 'got:"V"\n');
      t.equal(f.calls.length, 1, 'still cached');
      clock.now = 35_000;
      f.cache.sweep();
      t.equal(await client.command('V', { cookie: 'x1' }), 'got:"V"\n');
      t.equal(f.calls.length, 2, 'expired: executed again');
    },
  );

  t.test(
    'a cookie longer than the limit answers E5 without it, never runs or caches',
    async (t) => {
      const { log, lines } = capturingLog();
      const f = fixture(t);
      const listener = new UdpControlListener({
        spec: { kind: 'udp', host: '127.0.0.1', port: 0 },
        runner: f.runner,
        cache: f.cache,
        log,
      });
      t.teardown(() => listener.close());
      await listener.listen();
      const client = await udpClient(t, listener.port);
      const max = 'k'.repeat(MAX_COOKIE_LENGTH);
      t.equal(
        await client.command('V', { cookie: max }),
        'got:"V"\n',
        'a cookie at the limit works',
      );
      for (let i = 0; i < 3; i++) {
        await client.sendRaw(`${'c'.repeat(8000)}${String(i)} V`);
        t.equal(await client.receive(), 'E5\n');
      }
      t.strictSame(f.calls, ['V', '', '', ''], 'only the empty line ran, for its E5');
      t.equal(f.cache.size, 1, 'only the short cookie is cached');
      const warned = lines.filter((l) => l.msg.includes('cookie too long'));
      t.equal(warned.length, 1, 'one log line for the three, rate-limited');
    },
  );

  t.test('the reply cache stays within its byte bound; the oldest replies go first', async (t) => {
    const maxBytes = 20 * (REPLY_CACHE_ENTRY_OVERHEAD + 100);
    const f = fixture(t, undefined, maxBytes);
    const listener = await udpListener(t, f);
    const client = await udpClient(t, listener.port);
    const cookie = (i: number): string => `${'q'.repeat(100)}${String(i).padStart(3, '0')}`;
    for (let i = 0; i < 60; i++) {
      t.equal(
        await client.command(`V${String(i)}`, { cookie: cookie(i) }),
        `got:"V${String(i)}"\n`,
      );
      if (f.cache.bytes > maxBytes) t.fail(`cache holds ${String(f.cache.bytes)} bytes`);
    }
    t.ok(f.cache.size > 5 && f.cache.size < 20, `${String(f.cache.size)} entries kept`);
    t.equal(await client.command('again', { cookie: cookie(59) }), 'got:"V59"\n', 'newest cached');
    t.equal(await client.command('again', { cookie: cookie(0) }), 'got:"again"\n', 'oldest gone');
  });

  t.test('a datagram over 8191 bytes is truncated', async (t) => {
    const f = fixture(t);
    const listener = await udpListener(t, f);
    const client = await udpClient(t, listener.port);
    await client.sendRaw(`T ${'A'.repeat(9000)}`);
    const reply = await client.receive();
    t.ok(reply.startsWith('T got:'));
    t.equal(f.calls[0], 'A'.repeat(8191 - 2));
  });

  t.test('listen() rejects with the socket spec when the port is taken', async (t) => {
    const f = fixture(t);
    const first = await udpListener(t, f);
    const second = new UdpControlListener({
      spec: { kind: 'udp', host: '127.0.0.1', port: first.port },
      runner: f.runner,
      cache: f.cache,
      log: silent,
    });
    t.teardown(() => second.close());
    await t.rejects(second.listen(), {
      message: new RegExp(`udp:127\\.0\\.0\\.1:${String(first.port)}.*EADDRINUSE`),
    });
    await second.close();
    await second.close();
  });

  t.test('udp6 on ::1', { skip: noIPv6 }, async (t) => {
    const f = fixture(t);
    const listener = await udpListener(t, f, 'udp6');
    t.equal(await udpCommand(listener.port, '::1', 'V', { cookie: 'six' }), 'got:"V"\n');
  });

  t.test('close() is idempotent and late replies are dropped', async (t) => {
    const f = fixture(t);
    const g = gate();
    f.gates.set('slow', g);
    const listener = await udpListener(t, f);
    const client = await udpClient(t, listener.port);
    await client.sendRaw('c slow');
    await waitUntil(() => f.calls.length === 1, 'handler started');
    await Promise.all([listener.close(), listener.close()]);
    g.open('0\n');
    await f.runner.drain();
    t.equal(f.stats.ncmdsRepld, 1, 'command finished without a socket');
  });
});

/** Line-framed behaviour shared by cunix and tcp. */
function lineFramedTests(
  name: string,
  target: (
    t: WithTeardown,
    f: Fixture,
  ) => Promise<{
    spec: StreamControlSpec;
    connect: (l: StreamControlListener) => Parameters<typeof StreamControlClient.connect>[0];
  }>,
): void {
  t.test(name, async (t) => {
    t.test('several lines in one write and split across writes, replies in order', async (t) => {
      const f = fixture(t);
      const { spec, connect } = await target(t, f);
      const listener = await streamListener(t, f, spec);
      const client = await streamClient(t, connect(listener));
      const g = gate();
      f.gates.set('slow', g);
      client.sendRaw('slow\nb\n\nc');
      await waitUntil(() => f.calls.length === 1, 'first command started');
      client.sendRaw('d\nspl');
      client.sendRaw('it\n');
      g.open('first\n');
      const lines = [];
      for (let i = 0; i < 5; i++) lines.push(await client.readLine());
      t.strictSame(lines, ['first\n', 'got:"b"\n', 'E5\n', 'got:"cd"\n', 'got:"split"\n']);
      t.strictSame(f.calls, ['slow', 'b', '', 'cd', 'split']);
      t.equal(await client.command('V'), 'got:"V"\n', 'command() helper');
      t.equal(f.stats.ncmdsRcvd, 6);
      t.equal(f.stats.ncmdsErrs, 1);
    });

    t.test('a line of 8191 bytes fits; one of 8192 closes the connection', async (t) => {
      const f = fixture(t);
      const { spec, connect } = await target(t, f);
      const listener = await streamListener(t, f, spec);
      const client = await streamClient(t, connect(listener));
      const max = 'x'.repeat(8191);
      t.equal(await client.command(max), `got:"${max}"\n`);
      client.sendRaw(`V\n${'y'.repeat(4000)}`);
      client.sendRaw('y'.repeat(4192));
      t.equal(await client.readLine(), 'got:"V"\n', 'lines before the long one are answered');
      await client.waitClosed();
      t.equal(f.calls.length, 2, 'the long line never ran');
      const other = await streamClient(t, connect(listener));
      t.equal(await other.command('V'), 'got:"V"\n', 'the listener still serves');
    });

    t.test('one broken connection does not affect the others', async (t) => {
      const f = fixture(t);
      const { spec, connect } = await target(t, f);
      const listener = await streamListener(t, f, spec);
      const g = gate();
      f.gates.set('slow', g);
      const doomed = await streamClient(t, connect(listener));
      doomed.sendRaw('slow\n');
      await waitUntil(() => f.calls.length === 1, 'slow command started');
      await doomed.close(); // the reply will be written to a dead connection
      const healthy = await streamClient(t, connect(listener));
      const reply = healthy.command('V');
      g.open('0\n');
      t.equal(await reply, 'got:"V"\n');
      await waitUntil(() => listener.connectionCount === 1, 'dead connection released');
    });

    t.test('a client that half-closes still gets its replies', async (t) => {
      const f = fixture(t);
      const { spec, connect } = await target(t, f);
      const listener = await streamListener(t, f, spec);
      const where = connect(listener);
      const socket =
        'path' in where
          ? net.createConnection(where.path)
          : net.createConnection(where.port, where.host);
      t.teardown(() => socket.destroy());
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.end('a\nb\npartial');
      await withTimeout(once(socket, 'close'), 5000, 'daemon closes after the replies');
      t.equal(
        Buffer.concat(chunks).toString('latin1'),
        'got:"a"\ngot:"b"\n',
        'partial last line dropped',
      );
    });
  });
}

lineFramedTests('cunix lines', async (t) => {
  const dir = tempDir(t, 'ctl');
  const socketPath = path.join(dir, 'c.sock');
  return { spec: { kind: 'cunix', path: socketPath }, connect: () => ({ path: socketPath }) };
});

lineFramedTests('tcp lines', async () => ({
  spec: { kind: 'tcp', host: '127.0.0.1', port: 0 },
  connect: (l) => ({ host: '127.0.0.1', port: l.port }),
}));

t.test('tcp listener', async (t) => {
  t.test('the 101st connection is closed at once', async (t) => {
    const f = fixture(t);
    const listener = await streamListener(t, f, { kind: 'tcp', host: '127.0.0.1', port: 0 });
    const clients = await Promise.all(
      Array.from({ length: 100 }, () =>
        streamClient(t, { host: '127.0.0.1', port: listener.port }),
      ),
    );
    // A reply proves the daemon accepted the connection.
    await Promise.all(clients.map((c, i) => c.command(`V${String(i)}`)));
    t.equal(listener.connectionCount, 100);
    const extra = await streamClient(t, { host: '127.0.0.1', port: listener.port });
    await extra.waitClosed();
    t.equal(f.calls.length, 100);
    await clients[0]?.close();
    await waitUntil(() => listener.connectionCount === 99, 'a slot frees up');
    const again = await streamClient(t, { host: '127.0.0.1', port: listener.port });
    t.equal(await again.command('V'), 'got:"V"\n');
  });

  t.test('listen() rejects with the socket spec when the port is taken', async (t) => {
    const f = fixture(t);
    const first = await streamListener(t, f, { kind: 'tcp', host: '127.0.0.1', port: 0 });
    const second = new StreamControlListener({
      spec: { kind: 'tcp', host: '127.0.0.1', port: first.port },
      runner: f.runner,
      log: silent,
    });
    t.teardown(() => second.close());
    await t.rejects(second.listen(), {
      message: new RegExp(`tcp:127\\.0\\.0\\.1:${String(first.port)}.*EADDRINUSE`),
    });
  });

  t.test('tcp6 on ::1', { skip: noIPv6 }, async (t) => {
    const f = fixture(t);
    const listener = await streamListener(t, f, { kind: 'tcp6', host: '::1', port: 0 });
    const client = await streamClient(t, { host: '::1', port: listener.port });
    t.equal(await client.command('V'), 'got:"V"\n');
  });

  t.test('an I command reads five or six lines with the default rule', async (t) => {
    const f = fixture(t);
    f.gates.set('I', { promise: Promise.resolve('1\n2\n3\n4\n5\n'), open: () => undefined });
    f.gates.set('Il', { promise: Promise.resolve('1\n2\n3\n4\n5\n6\n'), open: () => undefined });
    f.gates.set('Ix', { promise: Promise.resolve('E18\n'), open: () => undefined });
    const listener = await streamListener(t, f, { kind: 'tcp', host: '127.0.0.1', port: 0 });
    const client = await streamClient(t, { host: '127.0.0.1', port: listener.port });
    const replies = await Promise.all([
      client.command('I'),
      client.command('Il'),
      client.command('Ix'),
      client.command('V'),
    ]);
    t.strictSame(replies, ['1\n2\n3\n4\n5\n', '1\n2\n3\n4\n5\n6\n', 'E18\n', 'got:"V"\n']);
  });
});

t.test('stream back-pressure and connection limits', async (t) => {
  t.test('a client that never reads its replies stops being read; others are served', async (t) => {
    const f = fixture(t);
    const big = `${'r'.repeat(3999)}\n`;
    f.gates.set('V', { promise: Promise.resolve(big), open: () => undefined });
    const listener = await streamListener(t, f, { kind: 'tcp', host: '127.0.0.1', port: 0 });
    const flood = rawConnection(t, listener.port);
    await flood.connected;
    flood.socket.pause(); // never reads
    const lines = 16 * 1024;
    flood.socket.write('V\n'.repeat(lines));
    // Replies fill the kernel's buffers, then ours up to the bound; then nothing more runs.
    let before = -1;
    const deadline = performance.now() + 10_000;
    while (f.calls.length !== before && performance.now() < deadline) {
      before = f.calls.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const executed = f.calls.length;
    t.ok(executed < lines / 2, `${String(executed)} of ${String(lines)} commands ran`);
    const other = await streamClient(t, { host: '127.0.0.1', port: listener.port });
    t.equal(await other.command('x'), 'got:"x"\n', 'another connection is served');
    t.equal(f.calls.length, executed + 1, 'the flood stays stopped');
    // Reading the replies lets the flood go on.
    flood.socket.on('data', () => undefined);
    flood.socket.resume();
    await waitUntil(() => f.calls.length > executed + 2000, 'the flood runs again once read');
  });

  t.test(
    'one connection queues at most a bounded number of commands ahead of others',
    async (t) => {
      const f = fixture(t);
      const g = gate();
      f.gates.set('slow', g);
      const listener = await streamListener(t, f, { kind: 'tcp', host: '127.0.0.1', port: 0 });
      const busy = await streamClient(t, { host: '127.0.0.1', port: listener.port });
      busy.sendRaw('slow\n' + 'b\n'.repeat(200));
      await waitUntil(() => f.calls.length === 1, 'the slow command runs');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const other = await streamClient(t, { host: '127.0.0.1', port: listener.port });
      const reply = other.command('other');
      await new Promise((resolve) => setTimeout(resolve, 100));
      g.open('0\n');
      t.equal(await reply, 'got:"other"\n');
      t.equal(
        f.calls.indexOf('other'),
        MAX_PENDING_PER_CONNECTION,
        'the other connection waited for the slow command and 15 more only',
      );
      for (let i = 0; i < 201; i++) await busy.readLine();
      t.equal(f.calls.length, 202, 'every command of the busy connection ran in the end');
      t.ok(STREAM_REPLY_BUFFER >= 1024, 'a whole reply always fits the bound');
    },
  );

  t.test(
    'connections that send no command are closed after the first-command timeout',
    async (t) => {
      const f = fixture(t);
      const listener = await streamListener(
        t,
        f,
        { kind: 'tcp', host: '127.0.0.1', port: 0 },
        { firstCommandTimeoutMs: 300, idleEvictMs: 60_000 },
      );
      const idle = Array.from({ length: 100 }, () => rawConnection(t, listener.port));
      await Promise.all(idle.map((c) => c.connected));
      await waitUntil(() => listener.connectionCount === 100, 'all accepted');
      await waitUntil(
        () => idle.every((c) => c.outcome() === 'end'),
        'idle connections closed by the daemon with FIN',
      );
      const client = await streamClient(t, { host: '127.0.0.1', port: listener.port });
      t.equal(await client.command('V'), 'got:"V"\n', 'a new client gets in');
      await new Promise((resolve) => setTimeout(resolve, 500));
      t.equal(await client.command('V'), 'got:"V"\n', 'a connection that sent a command stays');
    },
  );

  t.test(
    'with every slot taken, a new client takes the slot of the one idle longest',
    async (t) => {
      const f = fixture(t);
      const { log, lines } = capturingLog();
      const listener = await streamListener(
        t,
        f,
        { kind: 'tcp', host: '127.0.0.1', port: 0 },
        { idleEvictMs: 300, log },
      );
      const clients = [];
      for (let i = 0; i < 100; i++) {
        const c = await streamClient(t, { host: '127.0.0.1', port: listener.port });
        t.equal(await c.command(`V${String(i)}`), `got:"V${String(i)}"\n`);
        clients.push(c);
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
      // Keep all but the first two busy recently: they are not idle long enough to be closed.
      for (const c of clients.slice(2)) await c.command('again');
      const late = await streamClient(t, { host: '127.0.0.1', port: listener.port });
      t.equal(await late.command('V'), 'got:"V"\n', 'the new client is served');
      await clients[0]?.waitClosed();
      t.notOk(clients[1]?.closed, 'only one connection was closed');
      t.equal(listener.connectionCount, 100);
      t.ok(lines.some((l) => l.msg.includes('idle longest')));
      // Every slot busy now: the next one is refused with an orderly close and a log line.
      await clients[1]?.command('busy');
      const refused = [rawConnection(t, listener.port), rawConnection(t, listener.port)];
      await Promise.all(refused.map((c) => c.connected));
      await waitUntil(() => refused.every((c) => c.outcome() !== 'open'), 'refused');
      t.strictSame(
        refused.map((c) => c.outcome()),
        ['end', 'end'],
        'closed with FIN, not reset',
      );
      const warned = lines.filter((l) => l.msg.includes('control connection refused'));
      t.equal(warned.length, 1, 'one log line for both, rate-limited');
    },
  );
});

t.test('unix', async (t) => {
  t.test('one command per connection, then the daemon closes', async (t) => {
    const f = fixture(t);
    const socketPath = path.join(tempDir(t, 'ctl'), 'u.sock');
    await streamListener(t, f, { kind: 'unix', path: socketPath });
    t.equal(await unixCommand(socketPath, 'V'), 'got:"V"\n', 'no trailing LF needed');
    t.equal(await unixCommand(socketPath, 'V\n'), 'got:"V\\n"\n');
    // Several lines are ONE command to the reference (its parser then answers E1).
    t.equal(await unixCommand(socketPath, 'V\nVF 20050322\n'), 'got:"V\\nVF 20050322\\n"\n');
    t.strictSame(f.calls, ['V', 'V\n', 'V\nVF 20050322\n']);
    t.equal(f.stats.ncmdsRcvd, 3);
  });

  t.test('data after the first read is ignored', async (t) => {
    const f = fixture(t);
    const g = gate();
    f.gates.set('slow', g);
    const socketPath = path.join(tempDir(t, 'ctl'), 'u.sock');
    await streamListener(t, f, { kind: 'unix', path: socketPath });
    const socket = net.createConnection(socketPath);
    t.teardown(() => socket.destroy());
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.write('slow');
    await waitUntil(() => f.calls.length === 1, 'command started');
    socket.write('more');
    g.open('0\n');
    await withTimeout(once(socket, 'close'), 5000, 'daemon closes');
    t.equal(Buffer.concat(chunks).toString('latin1'), '0\n');
    t.strictSame(f.calls, ['slow']);
  });

  t.test('a stale socket file left by a killed process is replaced', async (t) => {
    const f = fixture(t);
    const socketPath = path.join(tempDir(t, 'ctl'), 'stale.sock');
    const child = spawn(
      process.execPath,
      [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    t.teardown(() => child.kill('SIGKILL'));
    await withTimeout(once(child.stdout, 'data'), 5000, 'child listening');
    child.kill('SIGKILL'); // no chance to unlink its socket file
    await withTimeout(once(child, 'exit'), 5000, 'child killed');
    t.ok(fs.statSync(socketPath).isSocket(), 'stale socket file left behind');
    await streamListener(t, f, { kind: 'cunix', path: socketPath });
    const client = await streamClient(t, { path: socketPath });
    t.equal(await client.command('V'), 'got:"V"\n');
  });

  t.test(
    'the socket file is removed on close, and a non-socket file is never replaced',
    async (t) => {
      const f = fixture(t);
      const dir = tempDir(t, 'ctl');
      const socketPath = path.join(dir, 'u.sock');
      const listener = await streamListener(t, f, { kind: 'unix', path: socketPath });
      t.equal(listener.address(), socketPath);
      t.ok(fs.statSync(socketPath).isSocket());
      await listener.close();
      t.notOk(fs.existsSync(socketPath), 'unlinked on close');

      const filePath = path.join(dir, 'regular');
      fs.writeFileSync(filePath, 'keep me');
      const other = new StreamControlListener({
        spec: { kind: 'cunix', path: filePath },
        runner: f.runner,
        log: silent,
      });
      t.teardown(() => other.close());
      await t.rejects(other.listen(), { message: new RegExp(`cunix:${filePath}`) });
      await other.close();
      t.equal(fs.readFileSync(filePath, 'utf8'), 'keep me');
    },
  );
});

t.test('stdio', async (t) => {
  function stdio(t: WithTeardown, kind: 'stdio' | 'stdioc') {
    const f = fixture(t);
    const input = new PassThrough();
    const output = new PassThrough();
    let eofCalls = 0;
    let out = '';
    output.on('data', (c: Buffer) => {
      out += c.toString('latin1');
    });
    const listener = new StdioControlListener({
      kind,
      input,
      output,
      runner: f.runner,
      log: silent,
      onEof: () => {
        eofCalls++;
      },
    });
    t.teardown(() => listener.close());
    return { f, input, listener, out: () => out, eofCalls: () => eofCalls };
  }

  t.test('stdio: lines on the input, replies on the output; EOF calls onEof', async (t) => {
    const s = stdio(t, 'stdio');
    await s.listener.listen();
    s.input.write('V\n\nW');
    s.input.write('\n');
    await waitUntil(() => s.out() === 'got:"V"\nE5\ngot:"W"\n', 'three replies');
    s.input.end('dropped');
    await once(s.input, 'end');
    await s.f.runner.drain();
    await waitUntil(() => s.eofCalls() === 1, 'onEof called');
    t.equal(s.out(), 'got:"V"\nE5\ngot:"W"\n', 'a last line without LF is dropped');
  });

  t.test('stdioc: EOF calls onEof after the last reply is written', async (t) => {
    const s = stdio(t, 'stdioc');
    const g = gate();
    s.f.gates.set('slow', g);
    await s.listener.listen();
    s.input.end('slow\n');
    await waitUntil(() => s.f.calls.length === 1, 'command started');
    t.equal(s.eofCalls(), 0, 'not before the reply');
    g.open('0\n');
    await waitUntil(() => s.eofCalls() === 1, 'onEof called');
    t.equal(s.out(), '0\n');
  });

  t.test('stdioc: an overlong line ends the input like EOF', async (t) => {
    const s = stdio(t, 'stdioc');
    await s.listener.listen();
    s.input.write(`V\n${'z'.repeat(9000)}\n`);
    await waitUntil(() => s.eofCalls() === 1, 'onEof called');
    t.equal(s.out(), 'got:"V"\n');
  });

  t.test('close() stops reading and is idempotent', async (t) => {
    const s = stdio(t, 'stdio');
    await s.listener.listen();
    await s.listener.close();
    await s.listener.close();
    s.input.write('V\n');
    await new Promise((resolve) => setImmediate(resolve));
    await t.rejects(s.listener.listen(), /closed/);
    t.equal(s.f.calls.length, 0);
  });
});

t.test('no socket handle is left open after the teardowns', async (t) => {
  // Handles go away just after close() calls back, so poll for a moment.
  await waitUntil(
    () => socketHandles().length <= baselineHandles.length,
    'socket handles released',
    2000,
  ).catch(() => undefined);
  t.strictSame(socketHandles(), baselineHandles, 'only the handles the process started with');
});
