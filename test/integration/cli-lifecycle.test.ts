/**
 * The daemon's life as an operator sees it: bin/rtpproxy.js spawned as a child process, in the
 * foreground and in the background, with a UDP control socket on 127.0.0.1, readiness polled with
 * `V`, the pid file, SIGTERM, SIGHUP (graceful drain) and stdioc: EOF. Every wait has a deadline.
 * Runs as root in CI, hence -F.
 */
import dgram from 'node:dgram';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type ChildDaemon, spawnDaemon, waitReady } from '../helpers/child-daemon.ts';
import { UdpControlClient, udpCommand, waitUntil, withTimeout } from '../helpers/control.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freeUdpPort } from '../helpers/udp.ts';

/** Media ports of this file (no session here binds more than one pair). */
const MEDIA = ['-l', '127.0.0.1', '-m', '47000', '-M', '47099'] as const;
const DEADLINE_MS = 15_000;

/** A UDP control socket on 127.0.0.1:port, and this file's media ports. */
const udpControl = (port: number): string[] => ['-s', `udp:127.0.0.1:${String(port)}`, ...MEDIA];

/** The daemon with stdout collected (it must stay clean), and stdin on a pipe when asked. */
function spawnCli(
  t: Test,
  args: readonly string[],
  stdin: 'ignore' | 'pipe' = 'ignore',
): ChildDaemon {
  return spawnDaemon(t, args, { stdin, stdout: 'utf8' });
}

/** Whether a process exists and is not a zombie (a re-parented daemon may never be reaped here). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).charAt(0);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

t.test(
  'foreground: ready, pid file, SIGTERM stops with status 0 and removes the pid file',
  async (t) => {
    const dir = tempDir(t, 'cli');
    const pidFile = join(dir, 'rtpproxy.pid');
    const port = await freeUdpPort();
    const d = spawnCli(t, ['-f', '-F', ...udpControl(port), '-p', pidFile, '-d', 'INFO']);
    await waitReady(d, port);
    await waitUntil(() => existsSync(pidFile), 'pid file written', DEADLINE_MS);
    t.equal(
      readFileSync(pidFile, 'utf8'),
      `${String(d.child.pid)}\n`,
      'pid file holds the pid and a LF',
    );
    await waitUntil(() => d.stderr().includes('"msg":"ready"'), 'ready logged', DEADLINE_MS);
    const ready =
      d
        .stderr()
        .split('\n')
        .find((l) => l.includes('"msg":"ready"')) ?? '';
    t.match(
      JSON.parse(ready),
      { level: 30, pid: d.child.pid, portMin: 47000, portMax: 47098 },
      'ready line',
    );
    t.equal(d.stdout(), '', 'logs go to stderr, stdout stays clean');

    d.child.kill('SIGTERM');
    t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after SIGTERM'), 0, 'exit status 0');
    t.notOk(existsSync(pidFile), 'pid file removed');
  },
);

t.test('foreground: SIGINT also stops with status 0', async (t) => {
  const port = await freeUdpPort();
  const d = spawnCli(t, ['-f', '-F', ...udpControl(port), '-p', '/dev/null', '-d', 'ERR']);
  await waitReady(d, port);
  d.child.kill('SIGINT');
  t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after SIGINT'), 0);
});

t.test(
  'foreground: a control socket that cannot be bound fails the start with status 1',
  async (t) => {
    const busy = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => busy.bind(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => busy.close(resolve)));
    const port = busy.address().port;
    const dir = tempDir(t, 'cli');
    const pidFile = join(dir, 'rtpproxy.pid');
    const d = spawnCli(t, ['-f', '-F', ...udpControl(port), '-p', pidFile]);
    t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after a failed start'), 1);
    t.match(d.stderr(), /"level":60/, 'logged at fatal');
    t.match(d.stderr(), /EADDRINUSE/);
    t.notOk(existsSync(pidFile), 'no pid file');
  },
);

t.test(
  'SIGHUP drains: the daemon keeps serving until the last session is gone, then exits 0',
  async (t) => {
    const port = await freeUdpPort();
    const d = spawnCli(t, ['-f', '-F', ...udpControl(port), '-p', '/dev/null', '-d', 'INFO']);
    await waitReady(d, port);
    const offer = await udpCommand(port, '127.0.0.1', 'U drain-call 127.0.0.1 5000 ft1');
    t.match(offer, /^[0-9]+( |\n)/, 'a session exists');

    d.child.kill('SIGHUP');
    // The handler logs before it starts the drain, in the same tick: that line is the sync point.
    await waitUntil(() => d.stderr().includes('"reason":"SIGHUP"'), 'SIGHUP handled', DEADLINE_MS);
    // Refused without an answer (an empty datagram), so that the SIP proxy asks another daemon.
    const client = await UdpControlClient.open(port, '127.0.0.1');
    t.teardown(() => client.close());
    await client.sendRaw('c1 U drain-new 127.0.0.1 5002 ft2');
    t.equal(await client.receive(), '', 'new session refused while draining');
    t.equal(await client.command('V'), 'E99\n', 'V answers E99 while draining');
    t.equal(d.child.exitCode, null, 'still running while a session is left');

    t.equal(await udpCommand(port, '127.0.0.1', 'D drain-call ft1'), '0\n', 'last session deleted');
    t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after the drain'), 0, 'exit status 0');
  },
);

t.test('stdioc: EOF on stdin drains and exits 0', async (t) => {
  const d = spawnCli(
    t,
    ['-f', '-F', '-s', 'stdioc:', ...MEDIA, '-p', '/dev/null', '-d', 'ERR'],
    'pipe',
  );
  d.child.stdin?.write('V\n');
  await waitUntil(() => d.stdout() === '20040107\n', 'V answered on stdout', DEADLINE_MS);
  d.child.stdin?.end();
  t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after EOF'), 0);
});

t.test(
  'background: the parent exits 0 once the daemon serves; SIGTERM stops the daemon',
  async (t) => {
    const dir = tempDir(t, 'cli');
    const pidFile = join(dir, 'rtpproxy.pid');
    const port = await freeUdpPort();
    const parent = spawnCli(t, ['-F', ...udpControl(port), '-p', pidFile]);
    let daemonPid: number | undefined;
    t.teardown(() => {
      if (daemonPid !== undefined && isAlive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
    });
    const status = await withTimeout(parent.exited, DEADLINE_MS, 'parent exit');
    t.equal(status, 0, `parent exit status 0 (stderr: ${parent.stderr()})`);
    t.ok(existsSync(pidFile), 'pid file written before the parent returned');
    daemonPid = Number(readFileSync(pidFile, 'utf8'));
    t.not(daemonPid, parent.child.pid, 'the daemon is another process');
    t.ok(isAlive(daemonPid), 'the daemon runs');
    t.equal(
      readlinkSync(`/proc/${String(daemonPid)}/cwd`),
      '/',
      'the daemon changed directory to /',
    );
    t.equal(await udpCommand(port, '127.0.0.1', 'V'), '20040107\n', 'the daemon serves');

    process.kill(daemonPid, 'SIGTERM');
    const pid = daemonPid;
    await waitUntil(() => !isAlive(pid), 'daemon gone after SIGTERM', DEADLINE_MS);
    await waitUntil(() => !existsSync(pidFile), 'pid file removed', DEADLINE_MS);
  },
);

t.test('background: -D keeps the working directory', async (t) => {
  const dir = tempDir(t, 'cli');
  const pidFile = join(dir, 'rtpproxy.pid');
  const port = await freeUdpPort();
  const parent = spawnCli(t, ['-F', '-D', ...udpControl(port), '-p', pidFile]);
  let daemonPid: number | undefined;
  t.teardown(() => {
    if (daemonPid !== undefined && isAlive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
  });
  t.equal(await withTimeout(parent.exited, DEADLINE_MS, 'parent exit'), 0);
  daemonPid = Number(readFileSync(pidFile, 'utf8'));
  t.equal(readlinkSync(`/proc/${String(daemonPid)}/cwd`), process.cwd());
  process.kill(daemonPid, 'SIGTERM');
  const pid = daemonPid;
  await waitUntil(() => !isAlive(pid), 'daemon gone after SIGTERM', DEADLINE_MS);
});

t.test('background: a start failure is reported by the parent with status 1', async (t) => {
  const busy = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => busy.bind(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => busy.close(resolve)));
  const port = busy.address().port;
  const dir = tempDir(t, 'cli');
  const pidFile = join(dir, 'rtpproxy.pid');
  const parent = spawnCli(t, ['-F', ...udpControl(port), '-p', pidFile]);
  t.equal(await withTimeout(parent.exited, DEADLINE_MS, 'parent exit'), 1);
  t.match(parent.stderr(), /^rtpproxy: cannot start: .*EADDRINUSE/m);
  t.notOk(existsSync(pidFile), 'no pid file');
});
