/**
 * Every start-up error (docs/protocol.md 13, 4.6, 2.1; issue 3), seen the way an operator sees it:
 * bin/rtpproxy.js is spawned, and it must exit 1 with `rtpproxy: ` and the reason on stderr,
 * nothing on stdout, and no daemon left behind. The rows of cli.test.ts (usage errors and a first
 * set of config errors) are not repeated here. The runs are started a few at a time up front and
 * each row then awaits its own result.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { tempDir } from '../helpers/tmp.ts';
import { portWindow } from '../helpers/udp.ts';

const BIN = fileURLToPath(new URL('../../bin/rtpproxy.js', import.meta.url));
const RUN_DEADLINE_MS = 30_000;
const PARALLEL = 6;

interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ReturnType<typeof spawn>>();
t.teardown(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

// Without tap's process-info hook (NODE_OPTIONS), which writes into the repository when a child
// exits: a child that switched to -u nobody may not.
const env = { ...process.env };
delete env['NODE_OPTIONS'];

function runCli(args: readonly string[]): Promise<RunResult> {
  // --nft off: no test creates an nftables table in the host's network namespace.
  const child = spawn(process.execPath, [BIN, '--nft', 'off', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, RUN_DEADLINE_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

const dir = tempDir(t, 'startup');
const regularFile = join(dir, 'not-a-socket');
writeFileSync(regularFile, 'keep me\n');
// A directory the daemon cannot write in: read-only for its owner, and owned by root when the
// test runs as root (the daemon then runs as nobody).
const readOnlyDir = join(dir, 'read-only');
mkdirSync(readOnlyDir, { mode: 0o555 });
const asOther = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
// Documentation addresses that are not this host's (test hosts may use one of them).
const local = new Set(
  Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)),
);
const notLocal = (candidates: readonly string[]): string =>
  candidates.find((a) => !local.has(a)) ?? 'no-candidate';
const foreign4 = notLocal(['198.51.100.77', '203.0.113.77', '192.0.2.77']);
const foreign4b = notLocal(['203.0.113.78', '198.51.100.78', '192.0.2.78']);
const foreign6 = notLocal(['2001:db8::77', '2001:db8:1::77']);
// A unix socket path of 120 bytes, longer than sun_path holds.
const longSocket = join(dir, 's'.repeat(120 - dir.length - 1));

// A UDP port that is taken for the whole file.
const busy = dgram.createSocket('udp4');
await new Promise<void>((resolve, reject) => {
  busy.once('error', reject);
  busy.bind(0, '127.0.0.1', () => {
    resolve();
  });
});
t.teardown(() => {
  busy.close();
});
const busyPort = busy.address().port;
// A TCP port that is taken for the whole file (the admin listener's).
const busyTcp = net.createServer();
await new Promise<void>((resolve, reject) => {
  busyTcp.once('error', reject);
  busyTcp.listen(0, '127.0.0.1', () => {
    resolve();
  });
});
t.teardown(() => {
  busyTcp.close();
});
const busyTcpPort = (busyTcp.address() as net.AddressInfo).port;

/** Runs that would start a daemon if the error were missed: foreground, no pid file, no root check. */
const SAFE = ['-f', '-F', '-p', '/dev/null', ...portWindow(33)] as const;
const UDP = ['-s', 'udp:127.0.0.1:0'] as const;
/** For errors found after the daemon is built: no media worker to start first. */
const NO_WORKERS = ['--workers', '0'] as const;
const seventeen = Array.from({ length: 17 }, (_, i) => [
  '-l',
  i === 0 ? '10.0.0.1' : `a${String(i)}@10.0.0.${String(i + 1)}`,
]).flat();

/** Rows: what the operator got wrong, the arguments, what stderr must say. */
const rows: readonly (readonly [what: string, args: readonly string[], stderr: RegExp])[] = [
  // Values out of range (docs/protocol.md 13).
  ['-T below 1', [...SAFE, ...UDP, '-T', '0'], /-T: the session timeout must be at least 1 second/],
  ['-W below 1', [...SAFE, ...UDP, '-W', '0'], /-W: the setup timeout must be at least 1 second/],
  [
    '-m outside 1..65535',
    ['-f', '-F', '-p', '/dev/null', ...UDP, '-m', '0'],
    /-m: the lowest media port must be between 1 and 65535/,
  ],
  [
    '-M outside 1..65535',
    ['-f', '-F', '-p', '/dev/null', ...UDP, '-M', '65536'],
    /-M: the highest media port must be between 1 and 65535/,
  ],
  [
    '-m above -M once made even',
    ['-f', '-F', '-p', '/dev/null', ...UDP, '-m', '40001', '-M', '40002'],
    /-m\/-M: the media port range is empty/,
  ],
  ['-t above 255', [...SAFE, ...UDP, '-t', '256'], /-t: the TOS value must be between 0 and 255/],
  [
    '-w above 4095',
    [...SAFE, ...UDP, '-w', '4096'],
    /-w: the socket mode must be a decimal number from 0 to 4095/,
  ],
  [
    '-L below 1',
    [...SAFE, ...UDP, '-L', '0'],
    /-L: the open-files limit must be a positive number/,
  ],
  [
    '--nice outside -20..20',
    [...SAFE, ...UDP, '--nice', '21'],
    /--nice: the nice level must be between -20 and 20/,
  ],
  [
    '-c neither fifo nor rr',
    [...SAFE, ...UDP, '-c', 'batch'],
    /-c: unknown scheduling policy "batch"/,
  ],
  [
    '-d with an unknown facility',
    [...SAFE, ...UDP, '-d', 'INFO:LOG_BOGUS'],
    /-d: "LOG_BOGUS" is not a syslog facility/,
  ],
  ['-n empty', [...SAFE, ...UDP, '-n', ''], /-n: the timeout notification socket name is empty/],
  ['-p empty', ['-f', '-F', ...UDP, '-p', ''], /-p: the pid file name is empty/],
  ['-r empty', [...SAFE, ...UDP, '-r', ''], /-r: the recording directory is empty/],
  // Recording directories (issue 13): checked at start, as the user that writes the files.
  [
    '-r that does not exist',
    [...SAFE, ...UDP, ...NO_WORKERS, '-r', join(dir, 'no-such-dir')],
    /rtpproxy: -r: the recording directory ".*no-such-dir" does not exist/,
  ],
  [
    '-r that is a file',
    [...SAFE, ...UDP, ...NO_WORKERS, '-r', regularFile],
    /rtpproxy: -r: the recording directory ".*not-a-socket" is not a directory/,
  ],
  [
    '-r that is not writable',
    [...SAFE, ...UDP, ...NO_WORKERS, ...asOther, '-r', readOnlyDir],
    /rtpproxy: -r: the recording directory ".*read-only" is not writable by this process \(EACCES\)/,
  ],
  [
    '-S that does not exist',
    [...SAFE, ...UDP, ...NO_WORKERS, '-r', dir, '-S', join(dir, 'no-spool')],
    /rtpproxy: -S: the spool directory ".*no-spool" does not exist/,
  ],
  // -L below what start-up needs: one line, no stack trace.
  [
    '-L too small to start',
    [...SAFE, ...UDP, '-L', '10'],
    /^rtpproxy: -L: an open-files limit of 10 is too small to start: [0-9]+ files are open already, [^\n]* give at least [0-9]+, plus 4 to 5 per call\n$/,
  ],
  // Control sockets (docs/protocol.md 2.1).
  [
    'stdioc: without -f',
    ['-F', '-p', '/dev/null', '-s', 'stdioc:'],
    /-s: the stdioc: control socket needs -f/,
  ],
  [
    'a bad control port',
    [...SAFE, '-s', 'udp:127.0.0.1:99999'],
    /-s: cannot use control socket "udp:127.0.0.1:99999": bad port/,
  ],
  ['an IPv6 host on udp:', [...SAFE, '-s', 'udp:[::1]:22222'], /-s: .*use udp6:/],
  [
    'a host name with --no_resolve',
    [...SAFE, '--no_resolve', '-s', 'udp:localhost:22222'],
    /-s: "localhost" .* --no_resolve forbids name lookups/,
  ],
  [
    'a control port that is taken',
    [...SAFE, '-s', `udp:127.0.0.1:${String(busyPort)}`],
    /rtpproxy: cannot start: cannot bind control socket udp:127\.0\.0\.1:[0-9]+: .*EADDRINUSE/,
  ],
  [
    '--http with a host name',
    [...SAFE, ...UDP, '--http', 'localhost:9090'],
    /--http: expected ADDR:PORT with a numeric address \(IPv6 in brackets\)/,
  ],
  [
    '--http with an IPv6 address without brackets',
    [...SAFE, ...UDP, '--http', '::1:9090'],
    /--http: expected ADDR:PORT/,
  ],
  [
    '--http with a port above 65535',
    [...SAFE, ...UDP, '--http', '127.0.0.1:70000'],
    /--http: expected ADDR:PORT/,
  ],
  [
    'an admin port that is taken',
    [...SAFE, ...UDP, ...NO_WORKERS, '--http', `127.0.0.1:${String(busyTcpPort)}`],
    /rtpproxy: cannot start: cannot listen on 127\.0\.0\.1:[0-9]+ \(--http\): .*EADDRINUSE/,
  ],
  [
    'a regular file where the unix socket goes',
    [...SAFE, '-s', `unix:${regularFile}`],
    /rtpproxy: cannot start: cannot listen on control socket unix:.*not-a-socket: .*EADDRINUSE/,
  ],
  [
    'a unix socket path longer than the system allows',
    [...SAFE, '-s', `unix:${longSocket}`],
    /-s: cannot use control socket "unix:.*": the socket path is 120 bytes long; the system allows at most 107/,
  ],
  [
    'a unix socket in a missing directory',
    [...SAFE, '-s', `unix:${join(dir, 'no', 'such', 'dir.sock')}`],
    /rtpproxy: cannot start: cannot listen on control socket unix:.*(ENOENT|EACCES)/,
  ],
  // -u (looked up before anything is bound).
  ['-u with an empty user', [...SAFE, ...UDP, '-u', ''], /-u: the user name is empty/],
  [
    '-u with an empty group',
    [...SAFE, ...UDP, '-u', 'nobody:'],
    /-u: "nobody:": the group name after ':' is empty/,
  ],
  [
    '-u with an unknown user',
    [...SAFE, ...UDP, '-u', 'no-such-user-rtpp'],
    /-u: cannot find the user "no-such-user-rtpp"/,
  ],
  [
    '-u with an unknown group',
    [...SAFE, ...UDP, '-u', ':no-such-group-rtpp'],
    /-u: cannot find the group "no-such-group-rtpp"/,
  ],
  // Local addresses (docs/protocol.md 4.6, 13).
  [
    'an IPv6 address with -l',
    [...SAFE, ...UDP, '-l', '::1'],
    /-l: "::1" is not an IPv4 address; give it with -6/,
  ],
  [
    'an IPv4 address with -6',
    [...SAFE, ...UDP, '-6', '127.0.0.1'],
    /-6: "127\.0\.0\.1" is not an IPv6 address; give it with -l/,
  ],
  [
    'a bracketed IPv6 address',
    [...SAFE, ...UDP, '-6', '[::1]'],
    /-6: "\[::1\]": write IPv6 addresses without brackets/,
  ],
  ['an empty address', [...SAFE, ...UDP, '-l', ''], /-l: "": the address is empty/],
  [
    'an address that is no host name',
    [...SAFE, ...UDP, '-l', 'bad host!'],
    /-l: "bad host!" is neither a numeric IPv4 address nor a host name/,
  ],
  [
    'a host name with --no_resolve',
    [...SAFE, ...UDP, '--no_resolve', '-6', 'localhost'],
    /-6: "localhost" is not a numeric IPv6 address, and --no_resolve forbids/,
  ],
  [
    'a host name that does not resolve (-6)',
    [...SAFE, ...UDP, '-6', 'no-such-host.invalid'],
    /-6: cannot resolve "no-such-host\.invalid" to an IPv6 address/,
  ],
  [
    'an unlabelled second address of the other family',
    [...SAFE, ...UDP, '-l', '10.0.0.1', '-6', '2001:db8::1'],
    /-6: "2001:db8::1": address label is missing/,
  ],
  [
    'a label used twice',
    [...SAFE, ...UDP, '-l', '10.0.0.1', '-l', 'a@10.0.0.2', '-6', 'a@2001:db8::1'],
    /-6: "a@2001:db8::1": the label "a" is used twice/,
  ],
  [
    'an empty label',
    [...SAFE, ...UDP, '-l', '@10.0.0.1'],
    /-l: "@10\.0\.0\.1": the label before '@' is empty/,
  ],
  [
    'an empty advertised address',
    [...SAFE, ...UDP, '-l', '10.0.0.1', '-l', 'x@10.0.0.2='],
    /-l: "x@10\.0\.0\.2=": the advertised address after '=' is empty/,
  ],
  [
    'A/B on a later -l',
    [...SAFE, ...UDP, '-l', '10.0.0.1', '-l', 'x@10.0.0.2/10.0.0.3'],
    /-l: "x@10\.0\.0\.2\/10\.0\.0\.3": only the first -l address can have the bridge form/,
  ],
  [
    'more than 16 addresses',
    [...SAFE, ...UDP, ...seventeen],
    /-l\/-6: at most 16 local addresses can be given, got 17/,
  ],
  // Addresses that are not this host's (issue 13): every U would answer E72.
  [
    'an -l address that is not local',
    [...SAFE, ...UDP, '-l', foreign4],
    new RegExp(
      `rtpproxy: -l: "${foreign4}": it is not an address of this host \\(EADDRNOTAVAIL\\)`,
    ),
  ],
  [
    'a -6 address that is not local',
    [...SAFE, ...UDP, '-6', foreign6],
    new RegExp(`rtpproxy: -6: "${foreign6}": .*\\((EADDRNOTAVAIL|EAFNOSUPPORT)\\)`),
  ],
  [
    'a bridge address that is not local',
    [...SAFE, ...UDP, '-l', `127.0.0.1/${foreign4b}`],
    new RegExp(`rtpproxy: -l: "${foreign4b}": it is not an address of this host`),
  ],
  // Bridge mode (docs/protocol.md 4.6).
  [
    'bridge mode without the external address',
    [...SAFE, ...UDP, '-l', '10.0.0.1/'],
    /-l: "10\.0\.0\.1\/": the address is empty/,
  ],
  [
    'bridge mode without the internal address',
    [...SAFE, ...UDP, '-l', '/10.0.0.2'],
    /bridge mode needs exactly two addresses/,
  ],
  [
    'bridge mode with two external addresses',
    [...SAFE, ...UDP, '-l', '10.0.0.1/10.0.0.2', '-6', '2001:db8::1/2001:db8::2'],
    /the external \(second\) address is given by both/,
  ],
  [
    'bridge mode with three addresses',
    [...SAFE, ...UDP, '-l', '10.0.0.1/10.0.0.2', '-6', '2001:db8::1'],
    /bridge mode needs exactly two addresses, but the first -l and the first -6 both give an internal/,
  ],
  [
    'a label on a bridge address',
    [...SAFE, ...UDP, '-l', 'in@10.0.0.1/10.0.0.2'],
    /-l: "in@10\.0\.0\.1\/10\.0\.0\.2": bridge mode addresses cannot have a label/,
  ],
  [
    '=ADV on a bridge address',
    [...SAFE, ...UDP, '-l', '10.0.0.1/10.0.0.2=192.0.2.1'],
    /bridge mode addresses cannot have an advertised address \(=ADV\); use -A ADV1\/ADV2/,
  ],
  [
    'an unlabelled address besides the bridge pair',
    [...SAFE, ...UDP, '-l', '10.0.0.1/10.0.0.2', '-l', '10.0.0.3'],
    /-l: "10\.0\.0\.3": address label is missing; .*after the bridge pair/,
  ],
  [
    '-A with an empty first address',
    [...SAFE, ...UDP, '-A', ''],
    /-A: "": the first advertised address is empty/,
  ],
  [
    '-A with an empty second address',
    [...SAFE, ...UDP, '-A', '192.0.2.1/'],
    /-A: "192\.0\.2\.1\/": the second advertised address is empty/,
  ],
];

// Start every run now, a few at a time; each row awaits its own.
const results: Promise<RunResult>[] = [];
let running: Promise<unknown>[] = [];
for (const [, args] of rows) {
  if (running.length >= PARALLEL) {
    await Promise.race(running);
  }
  const run = runCli(args);
  results.push(run);
  const tracked: Promise<unknown> = run.finally(() => {
    running = running.filter((p) => p !== tracked);
  });
  running.push(tracked);
}

rows.forEach(([what, args, stderr], i) => {
  t.test(`start-up error: ${what} (rtpproxy ${args.join(' ')})`, async (t) => {
    const r = await (results[i] ?? Promise.reject(new Error('no run')));
    t.equal(r.code, 1, 'exit status 1', { stderr: r.stderr });
    // Errors found once the daemon runs also leave a JSON log line (on stderr) before it.
    t.match(r.stderr, /^rtpproxy: /m, 'a plain line starts with the program name');
    t.match(r.stderr, stderr);
    t.equal(r.stdout, '', 'nothing on stdout');
  });
});

t.test('a unix socket path that is too long leaves no file behind', async (t) => {
  const i = rows.findIndex(([what]) => what === 'a unix socket path longer than the system allows');
  await results[i];
  t.same(
    readdirSync(dir).filter((name) => name.startsWith('sss')),
    [],
    'no socket file, not even at the truncated path',
  );
});
