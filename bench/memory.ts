/**
 * Memory benchmark: `npm run bench:memory -- [options]`.
 *
 * Starts the daemon as a child process and runs U/D cycles over its UDP control socket (a new
 * call-id each time: a session is created, bound and deleted), a few in flight at once. Every
 * `--every` cycles it prints the daemon's resident memory (VmRSS of its process tree, media
 * workers included); at the end it prints the growth from the first sample after the warm-up to
 * the last one. Bounded in cycles and in time; the daemon is killed on exit, error and signals.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ControlClient, parsePortReply } from './control-client.ts';
import { treeRssKiB } from './procfs.ts';
import { LocalDaemon, parseBenchArgs, runScript, sleep } from './local.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: npm run bench:memory -- [options] [-- daemon arguments]

Runs U/D cycles against a fresh daemon and prints its RSS every --every cycles.

options:
  --cycles N       U/D cycles (default 100000, at most 2000000)
  --every N        print RSS every N cycles (default 10000)
  --warmup N       cycles before the reference sample (default 10000)
  --concurrency N  cycles in flight (default 8, at most 256)
  --workers N      --workers given to the daemon (default: the daemon's default)
  --pause S        before each sample, stop sending for S seconds (default 0): with S above
                   the reply cache's 35 s, a sample shows what stays, not what is in flight
  --rate R         start at most R cycles per second (default 0: as fast as answered); the
                   reply cache and V8's heap follow the command rate, so compare samples at
                   one rate
  --time S         give up after S seconds (default 900)
  --port-min P     media port range -m (default 40000)
  --port-max P     media port range -M (default 40999)
  --node-arg A     an option for the daemon's node (repeatable), e.g. --node-arg --trace-gc
  --daemon-log F   write the daemon's stdout and stderr to file F (default: discarded)
  -h, --help       this text
`;

interface MemoryOptions {
  readonly cycles: number;
  readonly every: number;
  readonly warmup: number;
  readonly concurrency: number;
  readonly workers: number | null;
  readonly timeS: number;
  readonly pauseS: number;
  readonly rate: number;
  readonly portMin: number;
  readonly portMax: number;
  readonly daemonArgs: readonly string[];
  readonly nodeArgs: readonly string[];
  readonly daemonLog: string | undefined;
}

function parseArgs(argv: readonly string[]): MemoryOptions | 'help' {
  const parsed = parseBenchArgs(
    argv,
    {
      cycles: { default: 100_000, min: 1, max: 2_000_000 },
      every: { default: 10_000, min: 1, max: 2_000_000 },
      warmup: { default: 10_000, min: 0, max: 2_000_000 },
      concurrency: { default: 8, min: 1, max: 256 },
      workers: { default: null, min: 0, max: 64 },
      time: { default: 900, min: 1, max: 86_400 },
      rate: { default: 0, min: 0, max: 100_000 },
      pause: { default: 0, min: 0, max: 600 },
      'port-min': { default: 40_000, min: 1024, max: 65_534 },
      'port-max': { default: 40_999, min: 1025, max: 65_535 },
    },
    ['node-arg', 'daemon-log'],
  );
  if (parsed === 'help') return 'help';
  const { ints, strings } = parsed;
  const number = (value: number | null): number => value ?? 0;
  return {
    cycles: number(ints.cycles),
    every: number(ints.every),
    warmup: number(ints.warmup),
    concurrency: number(ints.concurrency),
    workers: ints.workers,
    timeS: number(ints.time),
    pauseS: number(ints.pause),
    rate: number(ints.rate),
    portMin: number(ints['port-min']),
    portMax: number(ints['port-max']),
    daemonArgs: parsed.daemonArgs,
    nodeArgs: strings['node-arg'] ?? [],
    daemonLog: strings['daemon-log']?.at(-1),
  };
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

let daemon: LocalDaemon | undefined;

function killDaemon(): void {
  daemon?.kill();
}

async function main(): Promise<void> {
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const opts = parsed;
  const logFd = opts.daemonLog === undefined ? undefined : fs.openSync(opts.daemonLog, 'w');
  daemon = await LocalDaemon.start(ROOT, { ...opts, ...(logFd === undefined ? {} : { logFd }) });
  process.stdout.write(`daemon: node ${daemon.args.join(' ')}\n`);
  const pid = daemon.pid;
  const deadline = performance.now() + opts.timeS * 1000;
  const client = await ControlClient.open(daemon.controlPort);
  try {
    await daemon.waitReady(client);
    const tag = `${String(process.pid)}m`;
    let started = 0;
    let done = 0;
    const samples: { cycles: number; kib: number }[] = [];
    const t0 = performance.now();
    // Time spent in --pause, which the --rate schedule does not count.
    let pausedMs = 0;
    const worker = async (until: number): Promise<void> => {
      while (started < until && performance.now() < deadline) {
        const n = started;
        started += 1;
        if (opts.rate > 0) {
          const due = t0 + (n * 1000) / opts.rate + pausedMs;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
        }
        const call = `${tag}${String(n)}`;
        const line = `U ${call} 127.0.0.1 ${String(opts.portMin - 2)} ft${String(n)}`;
        parsePortReply(line, await client.command(line));
        const reply = await client.command(`D ${call} ft${String(n)}`);
        if (reply !== '0') throw new Error(`D ${call}: ${reply}`);
        done += 1;
      }
    };
    let busyMs = 0;
    while (done < opts.cycles && performance.now() < deadline) {
      const until = Math.min(opts.cycles, done + opts.every);
      const t1 = performance.now();
      await Promise.all(Array.from({ length: opts.concurrency }, () => worker(until)));
      busyMs += performance.now() - t1;
      if (opts.pauseS > 0) {
        const t2 = performance.now();
        await sleep(Math.min(opts.pauseS * 1000, deadline - performance.now()));
        pausedMs += performance.now() - t2;
      }
      const kib = treeRssKiB(pid);
      samples.push({ cycles: done, kib });
      process.stdout.write(
        `cycles ${String(done).padStart(8)}  rss ${mib(kib).padStart(7)} MiB  ` +
          `(${(done / (busyMs / 1000)).toFixed(0)} cycles/s, ` +
          `${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
      );
    }
    if (done < opts.cycles) {
      process.stdout.write(`time limit reached after ${String(done)} cycles\n`);
    }
    const after = samples.filter((s) => s.cycles >= opts.warmup);
    const reference = after[0]?.kib ?? 0;
    const last = after.at(-1);
    if (reference > 0 && last !== undefined) {
      const max = Math.max(...after.map((s) => s.kib));
      const growth = ((last.kib - reference) / reference) * 100;
      const peak = ((max - reference) / reference) * 100;
      process.stdout.write(
        `after warm-up: ${mib(reference)} MiB at ${String(after[0]?.cycles)} cycles -> ` +
          `${mib(last.kib)} MiB at ${String(last.cycles)} cycles: ${growth.toFixed(1)} % ` +
          `(peak ${mib(max)} MiB, ${peak.toFixed(1)} %)\n`,
      );
    }
  } finally {
    client.close();
    killDaemon();
  }
}

runScript('bench:memory', main, killDaemon);
