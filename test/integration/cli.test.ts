/**
 * The command line as a black box: bin/rtpproxy.js is spawned as a child process, and its exit
 * status and output are checked (usage errors, config errors, -v/-V/-C). Nothing here starts the
 * daemon: every run ends before a control socket would be bound.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { CAPABILITIES } from '../../src/control/capabilities.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIN = fileURLToPath(new URL('../../bin/rtpproxy.js', import.meta.url));
const RUN_DEADLINE_MS = 20_000;

interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to completion (with a deadline); the child is killed at teardown if still alive. */
function runCli(t: Test, args: readonly string[]): Promise<RunResult> {
  // --nft off: no test creates an nftables table in the host's network namespace.
  const child = spawn(process.execPath, [BIN, '--nft', 'off', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`rtpproxy ${args.join(' ')} did not exit within ${String(RUN_DEADLINE_MS)} ms`),
      );
    }, RUN_DEADLINE_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

t.test('rtpproxy -v prints the base version and the supported extensions, exit 0', async (t) => {
  const r = await runCli(t, ['-v']);
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  t.equal(lines[0], 'Basic version: 20040107');
  const expected = CAPABILITIES.filter((c) => c.supported === true || c.listed === true).map(
    (c) => `Extension ${c.date}: ${c.description}`,
  );
  t.same(lines.slice(1), expected);
  t.ok(lines.includes('Extension 20191015: Support for the && sub-command specifier'));
  t.ok(lines.includes('Extension 20071116: Support for RTP re-packetization'));
  // Listed without -n, as the reference's -v lists it (VF still answers 0 without -n).
  t.ok(lines.includes('Extension 20081224: Support for session timeout notifications'));
  // The reference's descriptions, verbatim (sippy/rtpproxy src/commands/rpcpv1_ver.c).
  for (const line of [
    'Extension 20140617: Support for anchoring session connect time',
    "Extension 20251015: Support for changing session's ttl / IP tos via S subcommand",
    'Extension 20260309: Support for forking both streams via "C" sub-command',
  ]) {
    t.ok(lines.includes(line), line);
  }
  for (const c of CAPABILITIES.filter((c) => c.supported === false)) {
    t.notOk(r.stdout.includes(c.date), `${c.date} is not supported and not listed`);
  }
});

t.test('rtpproxy -V prints the package version, exit 0', async (t) => {
  const r = await runCli(t, ['-V']);
  t.equal(r.code, 0);
  t.equal(r.stdout, `rtpproxy ${packageVersion}\n`);
  t.equal(r.stderr, '');
});

t.test('rtpproxy -C prints the clock name, exit 0', async (t) => {
  const r = await runCli(t, ['-C']);
  t.equal(r.code, 0);
  t.equal(r.stdout, 'CLOCK_MONOTONIC\n');
});

t.test('rtpproxy -v stops parsing like getopt: later errors are not seen', async (t) => {
  const r = await runCli(t, ['-f', '-v', '--bogus', 'extra']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Basic version: 20040107\n/);
});

/** Rows: args, then a pattern the stderr must match. All exit 1 with nothing on stdout. */
const failures: readonly (readonly [args: readonly string[], stderr: RegExp])[] = [
  [['-x'], /unknown option '-x'/],
  [['--bogus'], /unknown option '--bogus'/],
  [['-T', 'abc'], /'abc' is invalid\. It must be a decimal integer/],
  [['-m', '0x10'], /'0x10' is invalid/],
  [['-T'], /argument missing/],
  [['extra'], /1 extra unhandled argument at the end of the command line/],
  [['-f', 'a', 'b'], /2 extra unhandled arguments/],
  [['-x', '-v'], /unknown option '-x'/],
  // Config errors (buildConfig), reported with the flag.
  [['-S', '/tmp'], /-S: a spool directory needs a recording directory/],
  [['-s', 'stdio:'], /-s: the stdio: control socket needs -f/],
  [['-m', '40000', '-M', '40000'], /-m\/-M: the media port range is empty/],
  [['-t', '-1'], /-t: the TOS value must be between 0 and 255/],
  [['-d', 'LOUD'], /-d: "LOUD" is not a log level/],
  [['-l', '192.0.2.1', '-l', '192.0.2.2'], /-l: "192.0.2.2": address label is missing/],
  [['-l', '10.0.0.1/10.0.0.2', '-A', '1.1.1.1'], /-A: bridge mode needs two advertised addresses/],
  [['--no_resolve', '-l', 'media.example.com'], /--no_resolve/],
];

for (const [args, stderr] of failures) {
  t.test(`rtpproxy ${args.join(' ')} exits 1 with a message`, async (t) => {
    const r = await runCli(t, args);
    t.equal(r.code, 1, 'exit status 1');
    t.match(r.stderr, /^rtpproxy: /, 'message prefixed with the program name');
    t.match(r.stderr, stderr);
    t.equal(r.stdout, '', 'nothing on stdout');
  });
}

t.test('a usage error is followed by a usage hint', async (t) => {
  const r = await runCli(t, ['-x']);
  t.match(r.stderr, /\nusage:\trtpproxy /);
});

t.test('a config error reports every problem, without the usage hint', async (t) => {
  const r = await runCli(t, ['-S', '/s', '-T', '0']);
  t.equal(r.code, 1);
  t.match(r.stderr, /-S: /);
  t.match(r.stderr, /-T: /);
  t.notMatch(r.stderr, /usage:/);
});

t.test(
  'as root without -u or -F a udp: control socket is refused',
  { skip: process.getuid?.() !== 0 && 'needs root' },
  async (t) => {
    const r = await runCli(t, [
      '-f',
      '-s',
      'udp:127.0.0.1:0',
      '-l',
      '127.0.0.1',
      '-p',
      '/dev/null',
    ]);
    t.equal(r.code, 1);
    t.match(
      r.stderr,
      /refusing to run as root with a network control socket \(udp:127\.0\.0\.1:0\)/,
    );
    t.match(r.stderr, /-F/);
  },
);

t.test(
  'as root without -u or -F a tcp: control socket is refused like udp:',
  { skip: process.getuid?.() !== 0 && 'needs root' },
  async (t) => {
    for (const spec of ['tcp:127.0.0.1:0', 'tcp6:[::1]:0']) {
      const r = await runCli(t, ['-f', '-s', spec, '-l', '127.0.0.1', '-p', '/dev/null']);
      t.equal(r.code, 1, spec);
      t.match(r.stderr, /refusing to run as root with a network control socket \(tcp6?:/);
      t.match(r.stderr, /-u USER/);
    }
  },
);

t.test(
  'as root without -u or -F the admin API is refused like a network control socket',
  { skip: process.getuid?.() !== 0 && 'needs root' },
  async (t) => {
    const dir = tempDir(t, 'cli-root-http');
    const r = await runCli(t, [
      '-f',
      '-s',
      `unix:${dir}/ctl.sock`,
      '--http',
      '127.0.0.1:0',
      '-l',
      '127.0.0.1',
      '-p',
      '/dev/null',
    ]);
    t.equal(r.code, 1);
    t.match(r.stderr, /refusing to run as root with the admin API \(--http 127\.0\.0\.1:0\)/);
  },
);

t.test('a host name that does not resolve is a start-up error', async (t) => {
  const r = await runCli(t, [
    '-f',
    '-F',
    '-s',
    'udp:127.0.0.1:0',
    '-l',
    'no-such-host.invalid',
    '-p',
    '/dev/null',
  ]);
  t.equal(r.code, 1);
  t.match(r.stderr, /-l: cannot resolve "no-such-host\.invalid" to an IPv4 address/);
});
