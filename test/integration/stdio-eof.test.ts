/**
 * The end of stdin with a stdio control socket, as the reference handles it
 * (sippy/rtpproxy src/rtpp_command_async.c): `stdioc:` always, and `stdio:` when it is the only
 * control socket read without accepting connections, end the daemon once its sessions are gone,
 * exit status 0, in every media worker layout. A udp: socket beside `stdio:` keeps it running;
 * unix:/tcp: listeners beside it do not. bin/rtpproxy.js runs as a child process; every wait has
 * a deadline.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type ChildDaemon, spawnDaemon } from '../helpers/child-daemon.ts';
import { udpCommand, unixCommand, waitUntil, withTimeout } from '../helpers/control.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freeUdpPort } from '../helpers/udp.ts';

/** Media ports of this file (no test here binds more than one pair). */
const MEDIA = ['-l', '127.0.0.1', '-m', '47200', '-M', '47299'] as const;
const DEADLINE_MS = 20_000;

/** Runs the daemon in the foreground with its stdin and stdout on pipes. */
function spawnStdio(t: Test, args: readonly string[]): ChildDaemon {
  return spawnDaemon(t, ['-f', '-F', ...MEDIA, ...args], { stdin: 'pipe', stdout: 'latin1' });
}

const LAYOUTS: readonly { readonly name: string; readonly args: readonly string[] }[] = [
  { name: '--workers 0', args: ['--workers', '0'] },
  { name: '--workers 1', args: ['--workers', '1'] },
  { name: 'the default workers', args: [] },
];

for (const kind of ['stdio', 'stdioc'] as const) {
  for (const layout of LAYOUTS) {
    t.test(`${kind}: alone, V then EOF: answers and exits 0 (${layout.name})`, async (t) => {
      const dir = tempDir(t, 'stdio-eof');
      const pidFile = join(dir, 'rtpproxy.pid');
      const d = spawnStdio(t, ['-s', `${kind}:`, '-p', pidFile, '-d', 'ERR', ...layout.args]);
      // `echo V | rtpproxy -f -s stdio:`: the whole input, then EOF, at once.
      d.child.stdin?.end('V\n');
      const status = await withTimeout(d.exited, DEADLINE_MS, 'exit after EOF');
      t.equal(status, 0, `exit status 0 (stderr: ${d.stderr()})`);
      t.equal(d.stdout(), '20040107\n', 'the reply, and nothing else, on stdout');
      t.notOk(existsSync(pidFile), 'pid file removed');
    });
  }
}

t.test(
  'stdio: beside a unix: listener, EOF waits for the last session, refusing new ones',
  async (t) => {
    const dir = tempDir(t, 'stdio-eof');
    const sock = join(dir, 'ctl.sock');
    const d = spawnStdio(t, ['-s', 'stdio:', '-s', `unix:${sock}`, '-d', 'INFO']);
    d.child.stdin?.write('U eof-call 127.0.0.1 5000 ft1\n');
    await waitUntil(() => /^[0-9]+( |\n)/.test(d.stdout()), 'U answered on stdout', DEADLINE_MS);
    d.child.stdin?.end();
    // Logged in the same tick the drain starts: the sync point.
    await waitUntil(
      () => d.stderr().includes('end of input on the stdio control socket'),
      'drain started',
      DEADLINE_MS,
    );
    t.equal(d.child.exitCode, null, 'still running while a session is left');
    t.equal(
      await unixCommand(sock, 'U eof-new 127.0.0.1 5002 ft2'),
      '',
      'a new session is refused without a reply, as during a SIGHUP drain',
    );
    t.equal(await unixCommand(sock, 'V'), 'E99\n', 'V answers E99, as during a SIGHUP drain');
    t.equal(await unixCommand(sock, 'D eof-call ft1'), '0\n', 'the last session deleted');
    t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after the drain'), 0, 'exit status 0');
  },
);

t.test('stdio: EOF with a session left: exits 0 once it has expired', async (t) => {
  const d = spawnStdio(t, ['-s', 'stdio:', '-T', '2', '-d', 'INFO']);
  d.child.stdin?.end('U eof-expire 127.0.0.1 5000 ft1\n');
  await waitUntil(
    () => d.stderr().includes('end of input on the stdio control socket'),
    'drain started',
    DEADLINE_MS,
  );
  t.match(d.stdout(), /^[0-9]+( |\n)/, 'U answered');
  t.equal(d.child.exitCode, null, 'still running while the session lives');
  t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after expiry'), 0, 'exit status 0');
  const log = d.stderr();
  t.ok(
    log.indexOf('the last session is gone') > log.indexOf('end of input'),
    'it exited because the session was gone',
  );
});

t.test('stdio: beside a udp: socket, EOF does not end the daemon', async (t) => {
  const port = await freeUdpPort();
  const d = spawnStdio(t, ['-s', 'stdio:', '-s', `udp:127.0.0.1:${String(port)}`, '-d', 'INFO']);
  d.child.stdin?.end('V\n');
  await waitUntil(
    () => d.stderr().includes('control input ended'),
    'end of stdin seen',
    DEADLINE_MS,
  );
  t.equal(d.stdout(), '20040107\n', 'V answered on stdout');
  t.equal(await udpCommand(port, '127.0.0.1', 'V'), '20040107\n', 'udp still answers');
  t.match(
    await udpCommand(port, '127.0.0.1', 'U eof-udp 127.0.0.1 5000 ft1'),
    /^[0-9]+( |\n)/,
    'new sessions are accepted',
  );
  t.equal(d.child.exitCode, null, 'still running');
  d.child.kill('SIGTERM');
  t.equal(await withTimeout(d.exited, DEADLINE_MS, 'exit after SIGTERM'), 0, 'exit status 0');
});
