/**
 * Start-up benchmark (`npm run bench:startup`): how long the daemon takes from exec to its pid
 * file and to its first answered command, alone and with several daemons started at once, and how
 * much memory it holds once idle. Every daemon runs in the foreground on 127.0.0.1 with a UDP
 * control socket and a media port range of its own:
 *
 *   node bin/rtpproxy.js -f -F -s udp:127.0.0.1:PORT -l 127.0.0.1 -m A -M B -p PIDFILE -d ERR
 *
 * - exec -> pid file: from just before spawn() to the pid file's appearance (inotify on its
 *   directory, checked again on every probe);
 * - exec -> first reply: `V` is sent every PROBE_MS over UDP until `20040107` comes back;
 * - concurrent: K daemons spawned in the same tick; the figure is the slowest one's first reply;
 * - idle RSS: VmRSS of the daemon (its process tree) SETTLE seconds after its first reply.
 *
 * Each figure is the median of its runs. Run it on an idle machine: it measures the daemon's CPU
 * time as much as anything. As a yardstick of how busy the machine is, it also times a bare
 * `node -e 0` (exec to exit) and prints the load average.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, watch } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { treeRssKiB } from './procfs.ts';
import { freeUdpPort } from './local.ts';

/** Our daemon, the default `--bin`. */
const DEFAULT_BIN = fileURLToPath(new URL('../bin/rtpproxy.js', import.meta.url));

const USAGE = `usage: npm run bench:startup -- [options]
  --runs N         single-daemon starts measured (default 5)
  --concurrent K   daemons started at once (default 8; 0 skips)
  --rounds R       rounds of K concurrent starts (default 3)
  --rss-runs N     idle-RSS measurements (default 3; 0 skips)
  --settle S       seconds after the first reply before RSS is read (default 10)
  --workers N      --workers given to the daemon (default: the daemon's own default)
  --bin PATH       the daemon's program (default bin/rtpproxy.js)
  --json           one JSON object instead of text`;

/** Interval of the `V` probe, milliseconds. */
const PROBE_MS = 2;
/** How long one daemon may take to answer before the run fails. */
const READY_DEADLINE_MS = 60_000;
/** How long a daemon may take to exit after SIGTERM before it is killed. */
const STOP_DEADLINE_MS = 5_000;
/** First media port; each daemon gets MEDIA_SPAN ports of its own above it. */
const MEDIA_BASE = 40_000;
const MEDIA_SPAN = 200;

interface Options {
  readonly runs: number;
  readonly concurrent: number;
  readonly rounds: number;
  readonly rssRuns: number;
  readonly settleS: number;
  readonly workers: number | undefined;
  readonly bin: string;
  readonly json: boolean;
}

interface Started {
  readonly child: ChildProcess;
  /** exec -> pid file, milliseconds. */
  readonly pidMs: number;
  /** exec -> first reply of `V`, milliseconds. */
  readonly replyMs: number;
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      runs: { type: 'string', default: '5' },
      concurrent: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
      'rss-runs': { type: 'string', default: '3' },
      settle: { type: 'string', default: '10' },
      workers: { type: 'string' },
      bin: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const count = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > 1000) {
      process.stderr.write(`bench:startup: --${name}: expected an integer >= ${String(min)}\n`);
      process.exit(2);
    }
    return n;
  };
  return {
    runs: count('runs', values.runs, 1),
    concurrent: count('concurrent', values.concurrent, 0),
    rounds: count('rounds', values.rounds, 1),
    rssRuns: count('rss-runs', values['rss-runs'], 0),
    settleS: count('settle', values.settle, 0),
    workers: values.workers === undefined ? undefined : count('workers', values.workers, 0),
    bin: values.bin ?? DEFAULT_BIN,
    json: values.json,
  };
}

/** Starts one daemon (slot selects its media ports) and waits for its pid file and first reply. */
async function startDaemon(opts: Options, slot: number, dir: string): Promise<Started> {
  const port = await freeUdpPort();
  const pidFile = join(dir, `rtpproxy-${String(slot)}.pid`);
  const portMin = MEDIA_BASE + slot * MEDIA_SPAN;
  const args = [
    opts.bin,
    // Ours never touches the host's nftables here (a --bin of an older build has no --nft).
    ...(opts.bin === DEFAULT_BIN ? ['--nft', 'off'] : []),
    '-f',
    '-F',
    '-s',
    `udp:127.0.0.1:${String(port)}`,
    '-l',
    '127.0.0.1',
    '-m',
    String(portMin),
    '-M',
    String(portMin + MEDIA_SPAN - 1),
    '-p',
    pidFile,
    '-d',
    'ERR',
    ...(opts.workers === undefined ? [] : ['--workers', String(opts.workers)]),
  ];
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const cookie = `b${String(process.pid)}_${String(slot)}`;
  const probe = Buffer.from(`${cookie} V`);

  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });

  let pidMs: number | undefined;
  const sawPidFile = (): void => {
    if (pidMs === undefined && existsSync(pidFile)) pidMs = performance.now() - t0;
  };
  const watcher = watch(dir, (_event, name) => {
    if (name === `rtpproxy-${String(slot)}.pid`) sawPidFile();
  });

  try {
    const replyMs = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        sawPidFile();
        socket.send(probe, port, '127.0.0.1');
      }, PROBE_MS);
      const deadline = setTimeout(() => {
        finish();
        reject(new Error(`no reply within ${String(READY_DEADLINE_MS)} ms; stderr: ${stderr}`));
      }, READY_DEADLINE_MS);
      const onExit = (code: number | null): void => {
        finish();
        reject(new Error(`the daemon exited (${String(code)}) before it answered: ${stderr}`));
      };
      const finish = (): void => {
        clearInterval(timer);
        clearTimeout(deadline);
        child.off('exit', onExit);
        socket.removeAllListeners('message');
      };
      child.on('exit', onExit);
      socket.on('message', (msg) => {
        if (msg.toString('latin1') !== `${cookie} 20040107\n`) return;
        const at = performance.now() - t0;
        finish();
        resolve(at);
      });
      socket.send(probe, port, '127.0.0.1');
    });
    sawPidFile();
    if (pidMs === undefined) throw new Error('the daemon answered but wrote no pid file');
    return { child, pidMs, replyMs };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    watcher.close();
    socket.close();
  }
}

/** SIGTERM, then SIGKILL when it does not exit in time. */
async function stopDaemon(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const a = sorted[mid] ?? NaN;
  return sorted.length % 2 === 1 ? a : ((sorted[mid - 1] ?? NaN) + a) / 2;
}

/** exec -> exit of `node -e 0`, milliseconds. */
function bareNodeMs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(performance.now() - t0));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'rtpproxy-startup-'));
  const log = (line: string): void => {
    if (!opts.json) process.stdout.write(`${line}\n`);
  };
  try {
    const bare: number[] = [];
    for (let i = 0; i < opts.runs; i += 1) bare.push(await bareNodeMs());
    log(
      `load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}; bare node -e 0: median ${ms(median(bare))}`,
    );
    const single: Started[] = [];
    for (let i = 0; i < opts.runs; i += 1) {
      const s = await startDaemon(opts, 0, dir);
      await stopDaemon(s.child);
      rmSync(join(dir, 'rtpproxy-0.pid'), { force: true });
      log(`single ${String(i + 1)}: pid file ${ms(s.pidMs)}, first reply ${ms(s.replyMs)}`);
      single.push(s);
      await sleep(200);
    }

    const rounds: number[] = [];
    for (let r = 0; r < (opts.concurrent > 0 ? opts.rounds : 0); r += 1) {
      const slots = Array.from({ length: opts.concurrent }, (_, i) => i);
      const results = await Promise.allSettled(slots.map((i) => startDaemon(opts, i, dir)));
      const started = results.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
      await Promise.all(started.map((s) => stopDaemon(s.child)));
      for (const i of slots) rmSync(join(dir, `rtpproxy-${String(i)}.pid`), { force: true });
      const failed = results.find((x) => x.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      const slowest = Math.max(...started.map((s) => s.replyMs));
      const slowestPid = Math.max(...started.map((s) => s.pidMs));
      log(
        `concurrent ${String(r + 1)}: ${String(opts.concurrent)} daemons, all answered by ${ms(slowest)} (pid files by ${ms(slowestPid)})`,
      );
      rounds.push(slowest);
      await sleep(500);
    }

    const rss: number[] = [];
    for (let i = 0; i < opts.rssRuns; i += 1) {
      const s = await startDaemon(opts, 0, dir);
      await sleep(opts.settleS * 1000);
      const kib = s.child.pid === undefined ? NaN : treeRssKiB(s.child.pid);
      await stopDaemon(s.child);
      rmSync(join(dir, 'rtpproxy-0.pid'), { force: true });
      log(`idle RSS ${String(i + 1)}: ${(kib / 1024).toFixed(1)} MiB`);
      rss.push(kib / 1024);
    }

    const summary = {
      workers: opts.workers ?? 'default',
      loadAverage: loadavg()[0],
      bareNodeMs: median(bare),
      pidFileMs: median(single.map((s) => s.pidMs)),
      firstReplyMs: median(single.map((s) => s.replyMs)),
      concurrent: opts.concurrent,
      concurrentAllReadyMs: rounds.length > 0 ? median(rounds) : null,
      idleRssMiB: rss.length > 0 ? median(rss) : null,
    };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      log(
        `median of ${String(opts.runs)}: exec -> pid file ${ms(summary.pidFileMs)}, exec -> first reply ${ms(summary.firstReplyMs)}`,
      );
      if (summary.concurrentAllReadyMs !== null) {
        log(
          `median of ${String(rounds.length)} rounds: ${String(opts.concurrent)} at once, all answered by ${ms(summary.concurrentAllReadyMs)}`,
        );
      }
      if (summary.idleRssMiB !== null) {
        log(
          `median idle RSS (${String(opts.settleS)} s after start, workers ${String(summary.workers)}): ${summary.idleRssMiB.toFixed(1)} MiB`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ms(v: number): string {
  return `${v.toFixed(0)} ms`;
}

await main();
