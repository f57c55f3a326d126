/**
 * The reference's command-parser corpus (sippy/rtpproxy tests/command_parser, in
 * test/fixtures/commands with its licence) run against the real daemon over every control socket kind and each of
 * the reference's option sets, diffing the replies byte for byte.
 */
import { nftArgs } from '../helpers/kernel-mode.ts';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { tempDir } from '../helpers/tmp.ts';
import {
  StreamControlClient,
  UdpControlClient,
  unixCommand,
  withTimeout,
} from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';

const FIXTURES = path.join(import.meta.dirname, '../fixtures/commands');
const BIN = path.join(import.meta.dirname, '../../bin/rtpproxy.js');
const INPUT = readFileSync(path.join(FIXTURES, 'command_parser.input'), 'latin1')
  .split('\n')
  .slice(0, -1);
const OUTPUT = readFileSync(path.join(FIXTURES, 'command_parser.output'), 'latin1')
  .split('\n')
  .slice(0, -1);
/** The reference test's daemon arguments: two port pairs, handed out in order. */
const BASE_ARGS = ['-b', '-m', '23820', '-M', '23823'];

interface OptionSet {
  readonly name: string;
  readonly args: (dir: string) => string[];
  /** Replies that differ from the plain run (the reference's own runs with these options). */
  readonly overrides: Readonly<Record<number, string>>;
  /** Commands answered without an error among the first 109 / 112 lines. */
  readonly succeeded: readonly [number, number];
}

const OPTION_SETS: readonly OptionSet[] = [
  { name: 'no options', args: () => [], overrides: {}, succeeded: [11, 12] },
  { name: '-P', args: () => ['-P'], overrides: {}, succeeded: [11, 12] },
  {
    name: '-r DIR',
    args: (dir) => ['-r', dir],
    overrides: { 57: '0', 58: '0' },
    succeeded: [13, 14],
  },
  {
    name: '-P -r DIR',
    args: (dir) => ['-P', '-r', dir],
    overrides: { 57: '0' },
    succeeded: [12, 13],
  },
];

/** Expected reply of 1-based line n, with the counters of lines 110 and 113 filled in. */
function expected(n: number, set: OptionSet): string {
  const text = set.overrides[n] ?? OUTPUT[n - 1] ?? '';
  const [s110, s113] = set.succeeded;
  return `${text
    .replace('%%SUCCD110%%', String(s110))
    .replace('%%ERRS110%%', String(109 - s110))
    .replace('%%SUCCD113%%', String(s113))
    .replace('%%ERRS113%%', String(112 - s113))
    .split(' / ')
    .join('\n')}\n`;
}

type Sender = (line: string) => Promise<string>;

const ipv6 = await new Promise<boolean>((resolve) => {
  const s = dgram.createSocket('udp6');
  s.once('error', () => {
    resolve(false);
  });
  s.bind(0, '::1', () => {
    s.close();
    resolve(true);
  });
});

/** The stdio kinds need the daemon as a child process: its stdin and stdout are the socket. */
async function stdioSender(t: Test, kind: string, args: string[]): Promise<Sender> {
  const child = spawn(
    process.execPath,
    // --nft off: no test creates an nftables table in the host's network namespace; --kernel on
    // in the kernel pass (test/helpers/kernel-mode.ts).
    [BIN, '-f', '-F', '-s', `${kind}:`, '-d', 'CRIT', ...nftArgs(), ...args],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  let buffered = '';
  const waiters: { lines: number; resolve: (s: string) => void }[] = [];
  const pump = (): void => {
    for (;;) {
      const w = waiters[0];
      if (w === undefined) return;
      const parts = buffered.split('\n');
      if (parts.length - 1 < w.lines) return;
      const reply = `${parts.slice(0, w.lines).join('\n')}\n`;
      buffered = parts.slice(w.lines).join('\n');
      waiters.shift();
      w.resolve(reply);
    }
  };
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    pump();
  });
  return (line) => {
    const lines = /^I$/i.test(line) ? 5 : 1;
    const reply = new Promise<string>((resolve) => {
      waiters.push({ lines, resolve });
      pump();
    });
    child.stdin.write(`${line}\n`, 'latin1');
    return withTimeout(reply, 10_000, `${kind} reply to ${JSON.stringify(line.slice(0, 40))}`);
  };
}

async function senderFor(t: Test, kind: string, args: string[], dir: string): Promise<Sender> {
  if (kind === 'stdio' || kind === 'stdioc') return stdioSender(t, kind, args);
  const spec: Record<string, string> = {
    udp: 'udp:127.0.0.1:0',
    udp6: 'udp6:::1:0',
    tcp: 'tcp:127.0.0.1:0',
    tcp6: 'tcp6:::1:0',
    unix: `unix:${path.join(dir, 'ctl.sock')}`,
    cunix: `cunix:${path.join(dir, 'cctl.sock')}`,
  };
  const d = await startDaemon(t, ['-s', spec[kind] ?? '', ...args]);
  const port = d.daemon.controlPort(1) ?? 0;
  switch (kind) {
    case 'udp':
    case 'udp6': {
      const client = await UdpControlClient.open(port, kind === 'udp' ? '127.0.0.1' : '::1');
      t.teardown(() => client.close());
      return (line) => client.command(line);
    }
    case 'unix':
      // One command per connection, as Kamailio and OpenSIPS send them.
      return (line) => unixCommand(path.join(dir, 'ctl.sock'), `${line}\n`);
    default: {
      const target =
        kind === 'cunix'
          ? { path: path.join(dir, 'cctl.sock') }
          : { host: kind === 'tcp' ? '127.0.0.1' : '::1', port };
      const client = await StreamControlClient.connect(target);
      t.teardown(() => client.close());
      return (line) => client.command(line, { lines: /^I$/i.test(line) ? 5 : 1 });
    }
  }
}

/**
 * A Q reply that differs from the golden one only by a `ttl` a few seconds lower: the idle sweep
 * runs once a second, and a slow host can let it tick between the U and the Q of the corpus.
 */
function ttlTickedDown(line: string, got: string, want: string): boolean {
  if (!/^Q/i.test(line)) return false;
  const ttl = /^(?:ttl=)?(\d+)/;
  const g = ttl.exec(got);
  const w = ttl.exec(want);
  if (g?.[1] === undefined || w?.[1] === undefined) return false;
  const behind = Number(w[1]) - Number(g[1]);
  return behind >= 1 && behind <= 3 && got.slice(g[0].length) === want.slice(w[0].length);
}

for (const kind of ['udp', 'udp6', 'unix', 'cunix', 'tcp', 'tcp6', 'stdio', 'stdioc']) {
  for (const set of OPTION_SETS) {
    t.test(
      `command_parser corpus over ${kind} with ${set.name}`,
      { skip: kind.endsWith('6') && !ipv6 ? 'no IPv6 loopback on this host' : false },
      async (t) => {
        const dir = tempDir(t, 'parser');
        const send = await senderFor(t, kind, [...BASE_ARGS, ...set.args(dir)], dir);
        const mismatches: string[] = [];
        for (const [i, line] of INPUT.entries()) {
          const want = expected(i + 1, set);
          const got = await send(line);
          if (got !== want && !ttlTickedDown(line, got, want)) {
            mismatches.push(
              `line ${String(i + 1)} ${JSON.stringify(line.slice(0, 60))}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`,
            );
          }
        }
        t.same(mismatches, [], `all ${String(INPUT.length)} replies byte-identical`);
      },
    );
  }
}
