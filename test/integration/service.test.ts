/**
 * Running as a service (issue 3): `-u` really drops privileges after binding and owns the unix
 * control sockets with the `-w` mode, `-L` sets the open-files limit and the start-up capacity
 * report warns when it is too small for the port range, `-t` with `--nft off` is reported once as
 * not applied (test/integration/tos.test.ts puts it on the wire), `--nice` sets the priority, `-i` gives each leg its own idle timer, `-2` sends small
 * packets twice.
 */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { unixCommand } from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIN = fileURLToPath(new URL('../../bin/rtpproxy.js', import.meta.url));
const DEADLINE_MS = 15_000;
const isRoot = process.getuid?.() === 0;

interface Child {
  readonly pid: number;
  stderr(): string;
  readonly exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Starts bin/rtpproxy.js through env(1) without NODE_OPTIONS: tap's process-info hook adds itself
 * there to every node child it sees spawned, and writes into the repository when the child exits,
 * which a child that switched to nobody may not do.
 */
function spawnDaemon(t: Test, args: readonly string[]): Child {
  // --nft off: no test creates an nftables table in the host's network namespace.
  const child = spawn(
    'env',
    ['-u', 'NODE_OPTIONS', process.execPath, BIN, '--nft', 'off', ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      resolve(code);
    });
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  if (child.pid === undefined) throw new Error('spawn failed');
  return { pid: child.pid, stderr: () => err, exited, kill: (s) => child.kill(s) };
}

/** Polls until `check` returns a value (not undefined), or fails with `what` and the daemon's log. */
async function poll<T>(
  child: Child,
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const end = performance.now() + DEADLINE_MS;
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch {
      // not yet
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the exit callback
    if (exited || performance.now() > end) {
      throw new Error(
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- as above
        `${exited ? 'the daemon exited' : 'timeout'} waiting for ${what}; stderr:\n${child.stderr()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The JSON log lines of the child's stderr. */
function logLines(child: Child): Record<string, unknown>[] {
  return child
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** `Uid:` or `Gid:` of /proc/PID/status: real, effective, saved, filesystem ids. */
function procIds(pid: number, field: 'Uid' | 'Gid' | 'Groups'): string {
  const line = readFileSync(`/proc/${String(pid)}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  return (line ?? '')
    .slice(field.length + 1)
    .trim()
    .replace(/\s+/g, ' ');
}

function idOf(database: 'passwd' | 'group', name: string): number | undefined {
  const file = readFileSync(database === 'passwd' ? '/etc/passwd' : '/etc/group', 'utf8');
  const entry = file
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === name);
  return entry === undefined ? undefined : Number(entry[2]);
}

const nobody = idOf('passwd', 'nobody');
const nogroup = idOf('group', 'nogroup') ?? idOf('group', 'nobody');
const nogroupName = idOf('group', 'nogroup') === undefined ? 'nobody' : 'nogroup';
const skipDrop = !isRoot
  ? 'needs root: -u can only switch users when started as root'
  : nobody === undefined || nogroup === undefined
    ? 'no nobody user or nogroup/nobody group on this system'
    : false;

t.test(
  '-u USER:GROUP drops privileges after binding and owns the unix sockets with the -w mode',
  { skip: skipDrop },
  async (t) => {
    const dir = tempDir(t, 'service');
    // The unprivileged process removes its socket files and pid file at exit: give it the directory.
    chownSync(dir, nobody ?? 0, nogroup ?? 0);
    const unixPath = join(dir, 'ctl.sock');
    const cunixPath = join(dir, 'ctl-c.sock');
    const pidFile = join(dir, 'rtpproxy.pid');
    const child = spawnDaemon(t, [
      '-f',
      '-u',
      `nobody:${nogroupName}`,
      '-w',
      '432', // 432 = octal 0660
      '-s',
      `unix:${unixPath}`,
      '-s',
      `cunix:${cunixPath}`,
      '-l',
      '127.0.0.1',
      ...portWindow(32),
      '-p',
      pidFile,
      '-d',
      'INFO',
    ]);
    t.equal(
      await poll(child, 'V on the unix socket', () => unixCommand(unixPath, 'V')),
      '20040107\n',
    );
    const ids = await poll(child, 'the uid switch', () => {
      const uid = procIds(child.pid, 'Uid');
      return uid.startsWith(String(nobody)) ? uid : undefined;
    });
    const n = String(nobody);
    const g = String(nogroup);
    t.equal(ids, `${n} ${n} ${n} ${n}`, 'real, effective, saved and filesystem uid are nobody');
    t.equal(procIds(child.pid, 'Gid'), `${g} ${g} ${g} ${g}`, 'every gid is the group');
    t.equal(procIds(child.pid, 'Groups'), g, "root's supplementary groups are gone");
    for (const path of [unixPath, cunixPath]) {
      const st = statSync(path);
      t.ok(st.isSocket(), `${path} is a socket`);
      t.equal(st.uid, nobody, 'owned by the user');
      t.equal(st.gid, nogroup, 'and the group');
      t.equal((st.mode & 0o7777).toString(8), '660', 'with the -w mode');
    }
    t.equal(readFileSync(pidFile, 'utf8'), `${String(child.pid)}\n`);
    // Media still binds after the switch (ports above 1024 need no privilege).
    const call = uniqueCall(t.name);
    t.match(
      await unixCommand(unixPath, `U ${call.id} 127.0.0.1 4000 ${call.from}`),
      /^[0-9]+ 127\.0\.0\.1\n$/,
    );
    child.kill('SIGTERM');
    t.equal(await child.exited, 0, 'a clean stop', { stderr: child.stderr() });
    t.notOk(existsSync(unixPath), 'the unix socket file is removed');
    t.notOk(existsSync(cunixPath));
    t.notOk(existsSync(pidFile), 'the pid file is removed');
  },
);

t.test(
  '-u USER alone switches to the user and its primary group, chowns, and -w sets the mode',
  { skip: skipDrop },
  async (t) => {
    const dir = tempDir(t, 'service');
    chownSync(dir, nobody ?? 0, nogroup ?? 0);
    const unixPath = join(dir, 'ctl.sock');
    const child = spawnDaemon(t, [
      '-f',
      '-u',
      'nobody',
      '-w',
      '384',
      '-s',
      `unix:${unixPath}`,
      '-l',
      '127.0.0.1',
      ...portWindow(32),
      '-p',
      '/dev/null',
      '-d',
      'INFO',
    ]);
    await poll(child, 'V on the unix socket', () => unixCommand(unixPath, 'V'));
    await poll(child, 'the uid switch', () =>
      procIds(child.pid, 'Uid').startsWith(String(nobody)) ? true : undefined,
    );
    const primary = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[0] === 'nobody')?.[3];
    t.equal(procIds(child.pid, 'Gid').split(' ')[0], primary, "the user's primary group");
    const st = statSync(unixPath);
    t.equal(st.uid, nobody);
    t.equal((st.mode & 0o777).toString(8), '600', '-w is applied with or without a group');
    child.kill('SIGTERM');
    t.equal(await child.exited, 0);
  },
);

t.test(
  '-L sets the open-files limit, and the capacity report warns when it is too small',
  async (t) => {
    // 100 ports = 50 pairs = 25 sessions, which need 25 * 4 + 100 descriptors; 150 is too few.
    const child = spawnDaemon(t, [
      '-f',
      '-F',
      '-s',
      'udp:127.0.0.1:0',
      '-l',
      '127.0.0.1',
      ...portWindow(33),
      '-L',
      '150',
      '-t',
      '46',
      '--nice',
      '7',
      '-p',
      '/dev/null',
      '-d',
      'INFO',
    ]);
    const capacity = await poll(child, 'the capacity line', () =>
      logLines(child).find((l) => l['msg'] === 'capacity'),
    );
    t.match(
      readFileSync(`/proc/${String(child.pid)}/limits`, 'utf8'),
      /Max open files\s+150\s+150\s/,
      'soft and hard limit set',
    );
    // /proc/PID/stat: the nice value is field 19, counted after the parenthesised command name.
    const stat = readFileSync(`/proc/${String(child.pid)}/stat`, 'utf8');
    t.equal(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16], '7', '--nice 7 is applied');
    t.match(capacity, {
      portPairs: 50,
      sessionsByPorts: 25,
      fileLimit: 150,
      filesPerSession: 4,
      sessionsByFiles: 12,
    });
    // The warning is a log line of its own, which may reach the pipe after the capacity line.
    const warning = await poll(child, 'the capacity warning', () =>
      logLines(child).find((l) => l['sessionsByFiles'] === 12 && l['level'] === 40),
    );
    t.ok(warning, 'a warning says the limit is the smaller one');
    t.match(String(warning['msg']), /raise it to 200/);
    const tosLines = (): Record<string, unknown>[] =>
      logLines(child).filter(
        (l) => typeof l['msg'] === 'string' && l['msg'].startsWith('TOS is not applied'),
      );
    await poll(child, 'the TOS line', () => (tosLines().length > 0 ? true : undefined));
    t.equal(tosLines().length, 1, 'with --nft off, one line says TOS is not applied');
    child.kill('SIGTERM');
    t.equal(await child.exited, 0);
  },
);

t.test('a limit large enough for the port range gives no warning', async (t) => {
  const child = spawnDaemon(t, [
    '-f',
    '-F',
    '-s',
    'udp:127.0.0.1:0',
    '-l',
    '127.0.0.1',
    ...portWindow(33),
    '-L',
    '1000',
    '-p',
    '/dev/null',
    '-d',
    'INFO',
  ]);
  const capacity = await poll(child, 'the capacity line', () =>
    logLines(child).find((l) => l['msg'] === 'capacity'),
  );
  t.match(capacity, { sessionsByPorts: 25, fileLimit: 1000, sessionsByFiles: 225 });
  t.notOk(
    logLines(child).some((l) => l['level'] === 40),
    'no warning',
  );
  child.kill('SIGTERM');
  t.equal(await child.exited, 0);
});

t.test(
  '-i: each leg has its own idle timer; by default one party sending keeps the session',
  async (t) => {
    const shared = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(31), '-b', '-T', '2']);
    const independent = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(34),
      '-b',
      '-T',
      '2',
      '-i',
    ]);
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const call = uniqueCall(t.name);
    const legs = [];
    for (const d of [shared, independent]) {
      await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
      legs.push(await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`));
    }
    const started = performance.now();
    const q = `Q ${call.id} ${call.from} ${call.to}`;
    // Only A talks; B stays silent. Poll until the -i session has expired.
    let seq = 1;
    while ((await independent.command(q)) !== 'E50\n') {
      if (performance.now() - started > 8000) throw new Error('the -i session did not expire');
      for (const port of legs) await a.send(rtpPacket({ seq, ssrc: 0xaaaa }), port);
      seq += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const lived = performance.now() - started;
    t.ok(
      lived > 1900,
      `the -i session lived about TTL + 1 s of B's silence (${lived.toFixed(0)} ms)`,
    );
    t.match(
      await shared.command(q),
      /^[0-9]+ [0-9]+ 0 [0-9]+ [0-9]+\n$/,
      'the shared-timer session is alive',
    );
    t.equal(await independent.command('G nsess_timeout'), '1\n');
    t.equal(await shared.command('G nsess_timeout'), '0\n');
  },
);

t.test('-2 sends relayed packets shorter than 128 bytes twice', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(31), '-b', '-2']);
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const call = uniqueCall(t.name);
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  const small = rtpPacket({ seq: 1, ssrc: 1 }).subarray(0, 100);
  await a.send(small, toA);
  await b.expect(small, toB);
  await b.expect(small, toB);
  const large = rtpPacket({ seq: 2, ssrc: 1 });
  await a.send(large, toA);
  await b.expect(large, toB);
  await b.expectNothing(150);
});
