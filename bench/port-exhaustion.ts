/**
 * Port exhaustion benchmark: `npm run bench:ports -- [options]`.
 *
 * Starts the daemon as a child process, fills its media port range with sessions (U until `E72`),
 * then sends refused U commands, each immediately followed by a `V` from a second control client,
 * and prints how long the refused U took and how long the V waited behind it (and, for scale, how
 * long a V takes alone). Bounded in count
 * and time; the daemon is killed on exit, error and signals.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ControlClient } from './control-client.ts';
import { LocalDaemon, parseBenchArgs, runScript } from './local.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: npm run bench:ports -- [options] [-- daemon arguments]

Fills the daemon's port range, then times refused U commands and a V sent right after each.

options:
  --port-min P     media port range -m (default 40000)
  --port-max P     media port range -M (default 40999: 500 pairs)
  --probes N       refused U commands timed (default 20, at most 1000)
  --workers N      --workers given to the daemon (default: the daemon's default)
  --time S         give up after S seconds (default 600)
  -h, --help       this text
`;

interface PortOptions {
  readonly portMin: number;
  readonly portMax: number;
  readonly probes: number;
  readonly workers: number | null;
  readonly timeS: number;
  readonly daemonArgs: readonly string[];
}

function parseArgs(argv: readonly string[]): PortOptions | 'help' {
  const parsed = parseBenchArgs(argv, {
    'port-min': { default: 40_000, min: 1024, max: 65_534 },
    'port-max': { default: 40_999, min: 1025, max: 65_535 },
    probes: { default: 20, min: 1, max: 1000 },
    workers: { default: null, min: 0, max: 64 },
    time: { default: 600, min: 1, max: 86_400 },
  });
  if (parsed === 'help') return 'help';
  const { ints } = parsed;
  const number = (value: number | null): number => value ?? 0;
  return {
    portMin: number(ints['port-min']),
    portMax: number(ints['port-max']),
    probes: number(ints.probes),
    workers: ints.workers,
    timeS: number(ints.time),
    daemonArgs: parsed.daemonArgs,
  };
}

function summary(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return `median ${at(0.5).toFixed(2)} ms, p90 ${at(0.9).toFixed(2)} ms, max ${at(1).toFixed(2)} ms`;
}

let daemon: LocalDaemon | undefined;

function killDaemon(): void {
  daemon?.kill();
}

/** Sends `line` and resolves with the reply and the milliseconds it took. */
async function timed(client: ControlClient, line: string): Promise<{ reply: string; ms: number }> {
  const t0 = performance.now();
  const reply = await client.command(line, 0, 60_000);
  return { reply, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const opts = parsed;
  const pairs = Math.floor((opts.portMax - 1 - opts.portMin) / 2) + 1;
  daemon = await LocalDaemon.start(ROOT, { ...opts, quiet: true });
  process.stdout.write(`daemon: node ${daemon.args.join(' ')}\n`);
  const deadline = performance.now() + opts.timeS * 1000;
  const client = await ControlClient.open(daemon.controlPort);
  const other = await ControlClient.open(daemon.controlPort);
  try {
    await daemon.waitReady(client);
    const tag = `${String(process.pid)}p`;
    let sessions = 0;
    let next = 0;
    // A holder object, so the compiler does not narrow what the fillers set.
    const state = { full: false };
    const fill = async (): Promise<void> => {
      while (!state.full && next < pairs + 100 && performance.now() < deadline) {
        const n = next;
        next += 1;
        const reply = await client.command(`U ${tag}${String(n)} 127.0.0.1 9 ft`, 3, 10_000);
        if (reply === 'E72') state.full = true;
        else if (/^[0-9]+ /.test(reply)) sessions += 1;
        else throw new Error(`U: ${reply}`);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 8 }, fill));
    if (!state.full) throw new Error(`the range did not fill (${String(sessions)} sessions)`);
    process.stdout.write(
      `range full: ${String(sessions)} sessions of ${String(pairs)} pairs ` +
        `in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    const alone: number[] = [];
    for (let i = 0; i < opts.probes && performance.now() < deadline; i += 1) {
      alone.push((await timed(other, 'V')).ms);
    }
    const refused: number[] = [];
    const waited: number[] = [];
    for (let i = 0; i < opts.probes && performance.now() < deadline; i += 1) {
      const u = timed(client, `U ${tag}x${String(i)} 127.0.0.1 9 ft`);
      const v = timed(other, 'V');
      const [ur, vr] = await Promise.all([u, v]);
      // Another process on the host may have freed a port of the range meanwhile.
      if (/^[0-9]+ /.test(ur.reply)) {
        sessions += 1;
        continue;
      }
      if (ur.reply !== 'E72') throw new Error(`refused U answered ${ur.reply}`);
      refused.push(ur.ms);
      waited.push(vr.ms);
    }
    process.stdout.write(`V alone:           ${summary(alone)}\n`);
    process.stdout.write(`refused U (${String(refused.length)}): ${summary(refused)}\n`);
    process.stdout.write(`V sent meanwhile:  ${summary(waited)}\n`);
  } finally {
    client.close();
    other.close();
    killDaemon();
  }
}

runScript('bench:ports', main, killDaemon);
