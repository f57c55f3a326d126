/**
 * RTP relay benchmark: `npm run bench -- [options]` (options in bench/options.ts).
 *
 * This driver starts the daemon (ours, or any rtpproxy-compatible command given with --binary or
 * --target) as a child process pinned to CPU 0, and the load generator (bench/generator.ts) as a
 * second child process pinned to CPU 1. The generator sets up the sessions, sends the RTP and
 * measures latency and loss; this process only watches: it samples the daemon's CPU time and RSS
 * from /proc and its global counters (`G`) over the control socket at the start and end of the
 * measured window, and prints the report. Everything it starts is killed on exit, on error and on
 * SIGINT/SIGTERM/SIGHUP; every wait has a deadline.
 *
 * With `--topology netns` this process creates the two namespaces of bench/netns.ts, runs itself
 * again inside the endpoints namespace (where the control socket, on the relay's address, is
 * routed: that run does all of the above, the daemon in the relay namespace), and deletes the
 * namespaces, with whatever still runs in them, when that run ends, on error and on signals.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ControlClient, streamQuery } from './control-client.ts';
import { ControlProbe, type ProbeResult } from './control-probe.ts';
import type { FromGenerator, GeneratorConfig, GeneratorResult, ToGenerator } from './messages.ts';
import type { BenchAddresses } from './messages.ts';
import { buildNativeGenerator, NATIVE_GENERATOR_NAME } from './native-generator.ts';
import {
  cpuMask,
  createTopology,
  deleteTopology,
  inheritedTopology,
  inNamespace,
  procNetAddress,
  removeStaleTopologies,
  steerReceive,
  TOPOLOGY_ENV,
  topologyProblem,
  type Topology,
} from './netns.ts';
import {
  expectedKernelStreams,
  parseArgs,
  USAGE,
  UsageError,
  type BenchOptions,
} from './options.ts';
import {
  backlogDrops,
  cpusAllowed,
  processTree,
  systemCpuTimes,
  threadCpuNs,
  treeCpuNs,
  treeCpuSeconds,
  treeRssKiB,
  udpDrops,
  udpSnmp,
  yieldCpu,
  type CpuTimes,
} from './procfs.ts';
import {
  formatCompare,
  formatCompareRamp,
  formatRamp,
  formatRampStep,
  formatRepeat,
  formatRepeatRun,
  formatReport,
  rampStep,
  repeatRun,
  type BenchReport,
  type CounterSet,
  type KernelFigures,
  type KernelPath,
  type RampStep,
  type RepeatRun,
} from './report.ts';
import { writeTrace, type CpuSample } from './trace.ts';
import { freeUdpPort, localDaemonArgs, sleep } from './local.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');

/** The daemon must answer `V` within this long after it was started. */
const START_TIMEOUT_MS = 10_000;
/** Seconds of the generator's idle direct-loopback baseline. */
const BASELINE_IDLE_S = 2;
/** --split-media: how long the threads' CPU use is watched to find the media worker. */
const SPLIT_WATCH_MS = 800;

/**
 * --split-media: the thread that used the most CPU over a short watch (the media worker, once
 * media flows) goes to CPU 0, every other thread of the daemon to CPU 1. Returns what was done.
 */
async function splitMediaThread(pid: number): Promise<string> {
  const before = threadCpuNs(pid);
  await sleep(SPLIT_WATCH_MS);
  const after = threadCpuNs(pid);
  let busiest = -1;
  let most = -1;
  for (const [tid, ns] of after) {
    const used = ns - (before.get(tid) ?? ns);
    if (used > most) {
      most = used;
      busiest = tid;
    }
  }
  if (busiest < 0) return 'no thread found';
  for (const tid of after.keys()) {
    spawnSync('taskset', ['-p', '-c', tid === busiest ? '0' : '1', String(tid)], { timeout: 2000 });
  }
  const share = (100 * most) / (SPLIT_WATCH_MS * 1e6);
  return `thread ${String(busiest)} (${share.toFixed(0)} % of a core) on CPU 0, ${String(after.size - 1)} others on CPU 1`;
}

/** Ramp mode stops after this many runs whatever the range. */
const MAX_RAMP_STEPS = 40;
/** U/L commands in flight at once during setup. */
const SETUP_CONCURRENCY = 16;
/**
 * --control in the netns topology: how long each probe session lives, latched, before its D. The
 * daemon hands latched streams to the kernel on a once-a-second sweep: this is one sweep and a
 * half, so that most probe sessions are offloaded, then removed, while they are counted.
 */
const PROBE_HOLD_MS = 1500;
/** The most probe sessions alive at once (4 descriptors each in the daemon). */
const PROBE_MAX_LIVE = 3000;
/** How often `Iv` is asked while waiting for the offload. */
const OFFLOAD_POLL_MS = 500;
/** The generator holds this much longer than the driver waits, so the driver always ends it. */
const HOLD_MARGIN_S = 5;
/** The CPU the generator (and this driver) is pinned to. */
const GENERATOR_CPU = '1';
/** How often the run inside the namespaces checks that the run outside is still there. */
const PARENT_CHECK_MS = 1000;

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------- children and cleanup

const children = new Set<ChildProcess>();
let daemonPid: number | undefined;

/** Signals the daemon's process group (it is started as a group leader) and its process tree. */
function signalDaemon(signal: NodeJS.Signals): void {
  if (daemonPid === undefined) return;
  const tree = processTree(daemonPid);
  try {
    process.kill(-daemonPid, signal);
  } catch {
    // no such group any more
  }
  for (const pid of tree.reverse()) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Kills everything we started, synchronously (usable from an 'exit' handler). */
function killAll(): void {
  signalDaemon('SIGKILL');
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping the daemon and the generator`);
    killAll();
    process.exit(130);
  });
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Last bytes written by a child, for error messages. */
function tail(child: ChildProcess, max = 8192): () => string {
  let buf = '';
  const add = (d: Buffer): void => {
    buf = (buf + d.toString('utf8')).slice(-max);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => buf.trim();
}

// ---------------------------------------------------------------- helpers

function parseCpuList(list: string | null): Set<number> {
  const out = new Set<number>();
  for (const part of (list ?? '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m?.[1] === undefined) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let c = a; c <= b && c - a < 4096; c++) out.add(c);
  }
  return out;
}

/** Whether pinning to CPUs 0 and 1 can be done, and why not. */
function pinningPlan(requested: boolean): { pin: boolean; reason: string } {
  if (!requested) return { pin: false, reason: 'disabled by --no-pin' };
  const probe = spawnSync('taskset', ['-V'], { encoding: 'utf8', timeout: 2000 });
  if (probe.error !== undefined || probe.status !== 0) {
    return { pin: false, reason: 'taskset not found' };
  }
  const cpus = parseCpuList(cpusAllowed(process.pid));
  if (!cpus.has(0) || !cpus.has(1)) {
    return {
      pin: false,
      reason: `CPUs 0 and 1 are not both available (allowed: ${[...cpus].join(',')})`,
    };
  }
  return { pin: true, reason: 'taskset' };
}

function gitDescription(): string {
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 5000,
  });
  if (rev.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 5000,
  });
  return `${rev.stdout.trim()}${dirty.stdout.trim() === '' ? '' : ' + uncommitted changes'}`;
}

async function waitForVersion(
  client: ControlClient,
  daemon: ChildProcess,
  output: () => string,
): Promise<void> {
  const end = performance.now() + START_TIMEOUT_MS;
  let last = 'no reply';
  for (let attempt = 0; attempt < 200 && performance.now() < end; attempt++) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) break;
    try {
      const reply = await client.command('V', 0, 250);
      if (reply === '20040107') return;
      last = `unexpected reply ${JSON.stringify(reply)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
  }
  const state =
    daemon.exitCode !== null || daemon.signalCode !== null
      ? `it exited (code ${String(daemon.exitCode)}, signal ${String(daemon.signalCode)})`
      : `it is still running; last attempt: ${last}`;
  throw new Error(
    `the daemon did not answer V within ${String(START_TIMEOUT_MS / 1000)} s of start: ${state}` +
      (output() === '' ? '' : `\n--- daemon output ---\n${output()}`),
  );
}

async function globalCounters(client: ControlClient): Promise<CounterSet | null> {
  try {
    const reply = await client.command('G npkts_rcvd npkts_relayed npkts_discard');
    const f = reply.split(' ').map(Number);
    if (f.length !== 3 || f.some((n) => !Number.isFinite(n))) return null;
    return { npkts_rcvd: f[0] ?? 0, npkts_relayed: f[1] ?? 0, npkts_discard: f[2] ?? 0 };
  } catch {
    return null;
  }
}

/** Where `Iv` is asked: the daemon's `tcp:` control socket (the reply lists every session). */
interface KernelQuery {
  readonly host: string;
  readonly port: number;
}

/**
 * The kernel path's lines of `Iv`; null when the daemon does not print them, undefined when it
 * did not answer in time.
 */
async function kernelFigures(q: KernelQuery): Promise<KernelFigures | null | undefined> {
  let text: string;
  try {
    text = await streamQuery(q.host, q.port, 'Iv');
  } catch {
    return undefined;
  }
  const field = (name: string): string | undefined =>
    new RegExp(`^kernel ${name}: (.*)$`, 'm').exec(text)?.[1];
  const state = field('path');
  const streams = Number(field('streams'));
  if (state === undefined || !Number.isInteger(streams)) return null;
  const transactions = /^([0-9]+) committed, ([0-9]+) failed$/.exec(field('transactions') ?? '');
  return {
    state,
    streams,
    offloads: Number(field('offloads') ?? 0),
    withdrawals: Number(field('withdrawals') ?? 0),
    committed: Number(transactions?.[1] ?? 0),
    failed: Number(transactions?.[2] ?? 0),
  };
}

/**
 * Polls `Iv` until the daemon reports at least `expected` kernel streams, for at most `maxS`
 * seconds; gives up at once when the daemon answers without kernel figures.
 */
async function waitForOffload(
  q: KernelQuery,
  expected: number,
  maxS: number,
): Promise<{ streams: number | null; waitedMs: number; reached: boolean }> {
  const t0 = performance.now();
  const end = t0 + maxS * 1000;
  let streams: number | null = null;
  for (let i = 0; i < (maxS * 1000) / OFFLOAD_POLL_MS + 1; i++) {
    const figures = await kernelFigures(q);
    if (figures === null) break;
    if (figures !== undefined) streams = figures.streams;
    if ((streams ?? 0) >= expected || performance.now() >= end) break;
    await sleep(OFFLOAD_POLL_MS);
  }
  const reached = streams !== null && streams >= expected;
  return { streams, waitedMs: performance.now() - t0, reached };
}

interface WindowSample {
  readonly t: number;
  readonly cpu: { user: number; system: number };
  readonly counters: CounterSet | null;
  /** When the daemon answered `G` (performance.now()). */
  readonly countersT: number;
  readonly drops: { inRange: number; outside: number };
  readonly snmp: Record<string, number>;
  /** Busy CPU seconds of the whole machine, per CPU, and this driver's own CPU seconds. */
  readonly system: Map<number, CpuTimes>;
  readonly driverCpuS: number;
  /** The kernel path's figures of `Iv`; null when not asked or not reported. */
  readonly kernel: KernelFigures | null;
  /** Packets dropped on a full CPU input backlog (/proc/net/softnet_stat), all CPUs. */
  readonly backlogDrops: number;
}

/**
 * UDP receive drops of the daemon's media sockets and of the generator's, and the UDP counters
 * of /proc/net/snmp: on loopback all in this namespace; with the netns topology the daemon's are
 * in its namespace (/proc/PID/net) and the generator's in this one, and the counters are summed.
 */
function udpFigures(
  pid: number,
  opts: BenchOptions,
  topology: Topology | null,
): { drops: { inRange: number; outside: number }; snmp: Record<string, number> } {
  if (topology === null) {
    return { drops: udpDrops(opts.portMin, opts.portMax), snmp: udpSnmp() };
  }
  const relay = udpDrops(opts.portMin, opts.portMax, procNetAddress(topology.relayAddr), pid);
  const endpoints = udpDrops(1, 0, null);
  const snmp = udpSnmp();
  for (const [name, value] of Object.entries(udpSnmp(pid))) snmp[name] = (snmp[name] ?? 0) + value;
  return { drops: { inRange: relay.inRange, outside: endpoints.outside }, snmp };
}

/**
 * Samples the daemon and the machine at one end of the measured window. The daemon's answers to
 * `G` and `Iv` cost it CPU (with the kernel path, each reads the kernel's counters: an `nft` run),
 * so they fall outside the window: asked before the CPU times are read at its start, after them
 * at its end. Their own instant (`countersT`) times the packet counters.
 */
async function sampleWindow(
  edge: 'start' | 'end',
  pid: number,
  client: ControlClient,
  opts: BenchOptions,
  setup: RunSetup,
  kernelQuery: KernelQuery | null,
): Promise<WindowSample> {
  const ask = async (): Promise<{
    counters: CounterSet | null;
    countersT: number;
    kernel: KernelFigures | null;
  }> => {
    const q0 = performance.now();
    const counters = await globalCounters(client);
    const countersT = (q0 + performance.now()) / 2;
    const kernel = kernelQuery === null ? null : ((await kernelFigures(kernelQuery)) ?? null);
    return { counters, countersT, kernel };
  };
  const before = edge === 'start' ? await ask() : null;
  const t = performance.now();
  const cpu = treeCpuSeconds(pid);
  const system = systemCpuTimes();
  const self = process.cpuUsage();
  const driverCpuS = (self.user + self.system) / 1e6;
  const { drops, snmp } = udpFigures(pid, opts, setup.topology);
  const dropped = backlogDrops();
  const answers = before ?? (await ask());
  return {
    t,
    cpu,
    ...answers,
    drops,
    snmp,
    system,
    driverCpuS,
    backlogDrops: dropped,
  };
}

async function stopDaemon(daemon: ChildProcess, client: ControlClient | null): Promise<void> {
  if (client !== null) {
    try {
      await client.command('X');
    } catch {
      // it is being killed anyway
    }
  }
  if (daemon.exitCode !== null || daemon.signalCode !== null) {
    killAll(); // the root is gone; anything it left in its group is not
    return;
  }
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  signalDaemon('SIGTERM');
  await Promise.race([exited, sleep(3000)]);
  killAll();
}

// ---------------------------------------------------------------- main

/** What every run of one bench invocation shares, decided once before the first run pins anything. */
interface RunSetup {
  /** Path of the native generator, or null for the Node one. */
  readonly native: string | null;
  readonly plan: { pin: boolean; reason: string };
  /** The namespaces of --topology netns (this process runs in the endpoints one), or null. */
  readonly topology: Topology | null;
  /** netns: where the links' receive processing goes (RPS), as the report says it. */
  readonly steering: string | null;
}

/**
 * netns: steers the relay links' receive processing to the daemon's CPUs and the endpoint links'
 * to the generator's (CPU 1), when both are pinned; says what was done.
 */
function steering(topology: Topology, opts: BenchOptions, pinned: boolean): string {
  if (!opts.rps) return 'none (--no-rps): in softirq on the sending CPU';
  if (!pinned) return 'none (no CPU pinning): in softirq on the sending CPU';
  const relay = cpuMask(opts.daemonCpus);
  const endpoints = cpuMask(GENERATOR_CPU);
  if (relay === null || endpoints === null) return 'none (bad CPU list)';
  steerReceive(topology, relay, endpoints);
  return `RPS: relay links on CPU ${opts.daemonCpus} (the daemon's), endpoint links on CPU ${GENERATOR_CPU} (the generator's)`;
}

/** Where the daemon and the peers are. */
function benchAddresses(topology: Topology | null): BenchAddresses {
  if (topology === null) return { relay: '127.0.0.1', caller: '127.0.0.1', callee: '127.0.0.1' };
  return { relay: topology.relayAddr, caller: topology.callerAddr, callee: topology.calleeAddr };
}

let runs = 0;

/**
 * The control port in the relay namespace, where nothing else runs: next to the media range, a
 * new one for every run (the previous daemon's socket may not be closed yet).
 */
function relayControlPort(opts: BenchOptions): number {
  const n = runs % 100;
  return opts.portMax + 2 + n <= 65535 ? opts.portMax + 2 + n : opts.portMin - 2 - n;
}

/** One run: start the daemon, set up, relay, measure, stop. */
async function runOnce(opts: BenchOptions, setup: RunSetup): Promise<BenchReport> {
  const { native, plan, topology } = setup;
  runs++;
  const addresses = benchAddresses(topology);
  const controlPort = topology === null ? await freeUdpPort() : relayControlPort(opts);
  const kernelQuery: KernelQuery | null =
    opts.kernel === null || opts.target !== null || topology === null
      ? null
      : { host: addresses.relay, port: controlPort };
  const daemonArgs = [
    ...localDaemonArgs(controlPort, opts.portMin, opts.portMax, addresses.relay),
    '-d',
    'ERR',
    ...(opts.workers === null || opts.target !== null ? [] : ['--workers', String(opts.workers)]),
    // Ours only: the bench never creates an nftables table in the host's network namespace (in
    // the relay namespace the table is the daemon's to make).
    ...(opts.target === null && topology === null ? ['--nft', 'off'] : []),
    ...(opts.kernel === null ? [] : ['--kernel', opts.kernel]),
    // Ours with the kernel path: `Iv` over TCP (it lists every session: too long for a datagram).
    ...(kernelQuery === null ? [] : ['-s', `tcp:${kernelQuery.host}:${String(kernelQuery.port)}`]),
    ...opts.daemonArgs,
  ];
  const targetCmd = opts.target ?? [process.execPath, path.join(ROOT, 'bin', 'rtpproxy.js')];
  const localCmd = [
    ...(plan.pin ? ['taskset', '-c', opts.daemonCpus] : []),
    ...targetCmd,
    ...daemonArgs,
  ];
  // `ip netns exec` execs the command: the pid is the daemon's.
  const daemonCmd = topology === null ? localCmd : inNamespace(topology.relayNs, localCmd);
  log(`starting daemon: ${daemonCmd.join(' ')}`);
  const logFd = opts.daemonLog === null ? undefined : fs.openSync(opts.daemonLog, 'a');
  const daemon = track(
    // detached: its own process group, so that the group can be killed with whatever it started.
    spawn(daemonCmd[0] ?? '', daemonCmd.slice(1), {
      cwd: ROOT,
      stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
      detached: true,
    }),
  );
  if (logFd !== undefined) fs.closeSync(logFd); // the child has its own copy
  const daemonOutput = tail(daemon);
  const spawnError = new Promise<never>((_resolve, reject) => {
    daemon.once('error', (err) =>
      reject(new Error(`cannot start ${String(daemonCmd[0])}: ${err.message}`)),
    );
  });
  spawnError.catch(() => undefined);
  await Promise.race([sleep(50), spawnError]);
  const pid = daemon.pid ?? (await spawnError);
  daemonPid = pid;

  // This driver mostly sleeps; keep it off the daemon's CPU as well.
  if (plan.pin) {
    spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { timeout: 2000 });
  }

  const client = await ControlClient.open(controlPort, addresses.relay, addresses.caller);
  try {
    await Promise.race([waitForVersion(client, daemon, daemonOutput), spawnError]);
    log(`daemon pid ${String(pid)} answers on udp:${addresses.relay}:${String(controlPort)}`);
    const daemonExit = new Promise<never>((_resolve, reject) => {
      daemon.once('exit', (code, signal) =>
        reject(
          new Error(
            `the daemon exited during the run (code ${String(code)}, signal ${String(signal)})` +
              (daemonOutput() === '' ? '' : `\n--- daemon output ---\n${daemonOutput()}`),
          ),
        ),
      );
    });
    daemonExit.catch(() => undefined);
    await sleep(300);
    const rssBefore = treeRssKiB(pid);

    // The generator: a separate process on CPU 1, talking to us over an IPC channel.
    const genCmd = [
      ...(plan.pin ? ['taskset', '-c', '1'] : []),
      process.execPath,
      // Idle once the native generator runs: no heap compaction on the generator's CPU then.
      ...(native === null ? [] : ['--no-memory-reducer']),
      '--import=tsx',
      path.join(BENCH_DIR, 'generator.ts'),
    ];
    const gen = track(
      spawn(genCmd[0] ?? '', genCmd.slice(1), { cwd: ROOT, stdio: ['ignore', 2, 2, 'ipc'] }),
    );
    const pairs = Math.floor((opts.portMax - opts.portMin + 1) / 2);
    const probe =
      opts.control > 0
        ? await ControlProbe.open({
            controlPort,
            concurrency: opts.control,
            tagSuffix: opts.tagSuffix,
            addresses,
            holdMs: topology === null ? 0 : PROBE_HOLD_MS,
            maxLive: Math.min(PROBE_MAX_LIVE, Math.floor((pairs - 2 * opts.sessions - 16) / 2)),
          })
        : null;
    // Set by the message handler below (a holder object, so the compiler does not narrow).
    const probed: { result?: Promise<ProbeResult> } = {};
    const setupBudgetMs = 30_000 + opts.sessions * 40;
    // With the kernel path, the generator holds before the warm-up until the streams are offloaded.
    const offload = opts.kernel === 'on' || opts.kernel === 'auto';
    const holdMaxS = offload && native !== null ? opts.offloadWaitS + HOLD_MARGIN_S : 0;
    const runMs = (opts.warmupS + holdMaxS + opts.durationS) * 1000;
    const expectedStreams = expectedKernelStreams(opts.sessions);
    const config: GeneratorConfig = {
      controlPort,
      addresses,
      sessions: opts.sessions,
      rate: opts.rate,
      slots: opts.slots,
      warmupS: opts.warmupS,
      durationS: opts.durationS,
      baselineIdleS: BASELINE_IDLE_S,
      setupConcurrency: SETUP_CONCURRENCY,
      tagSuffix: opts.tagSuffix,
      recvBufferBytes: opts.recvBufferBytes,
      deadlineMs: BASELINE_IDLE_S * 1000 + setupBudgetMs + runMs + 15_000,
      native,
      poll: opts.genPoll,
      holdMaxS,
      endpoints: opts.endpoints,
    };
    const kernel: {
      wait?: Promise<{ streams: number | null; waitedMs: number; reached: boolean }>;
    } = {};
    const deadlineMs = config.deadlineMs + 10_000;

    let rssAfterSetup = 0;
    let generatorCpus: string | null = null;
    let rssEnd = 0;
    let setupMs = 0;
    // Time series of both processes' CPU for --trace, sampled from setup to the end of the run.
    const cpuSamples: CpuSample[] = [];
    let sampler: NodeJS.Timeout | undefined;
    const sampleCpu = (): void => {
      if (gen.pid === undefined || cpuSamples.length > 100_000) return;
      cpuSamples.push({
        epochMs: performance.timeOrigin + performance.now(),
        daemonNs: treeCpuNs(pid),
        generatorNs: treeCpuNs(gen.pid),
      });
    };
    // Filled by the message handler below (a holder object, so the compiler does not narrow).
    const window: { start?: Promise<WindowSample>; end?: Promise<WindowSample> } = {};
    const toGenerator = (msg: ToGenerator): void => {
      if (gen.connected) gen.send(msg);
    };
    const result = await new Promise<GeneratorResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the run did not finish within ${String(deadlineMs / 1000)} s`));
      }, deadlineMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      daemonExit.catch(fail);
      gen.once('error', (err) => fail(new Error(`cannot start the generator: ${err.message}`)));
      gen.once('exit', (code, signal) =>
        fail(
          new Error(
            `the generator exited before reporting (code ${String(code)}, signal ${String(signal)})`,
          ),
        ),
      );
      gen.on('message', (raw: unknown) => {
        const msg = raw as FromGenerator;
        switch (msg.type) {
          case 'setup-done':
            setupMs = msg.ms;
            rssAfterSetup = treeRssKiB(pid);
            // Read while it runs: it exits as soon as it has sent its result.
            if (gen.pid !== undefined) generatorCpus = cpusAllowed(gen.pid);
            if (native !== null && gen.pid !== undefined) {
              // The native generator shares its CPU with the Node process that started it, which
              // steps aside (SCHED_IDLE) so that it sends on time. Not this driver: what it starts
              // later (the next run's daemon and generator) would inherit the policy.
              const moved = yieldCpu(processTree(gen.pid), NATIVE_GENERATOR_NAME);
              if (moved.niced > 0) {
                log(`chrt --idle unavailable for ${String(moved.niced)} threads: reniced to 19`);
              }
            }
            if (opts.trace !== null) {
              sampleCpu();
              sampler = setInterval(sampleCpu, 50);
            }
            log(
              `${String(opts.sessions)} sessions set up in ${(msg.ms / 1000).toFixed(2)} s; warm-up ${String(opts.warmupS)} s`,
            );
            if (opts.splitMedia && plan.pin) {
              void splitMediaThread(pid).then((what) => {
                log(`--split-media: ${what}`);
              });
            }
            break;
          case 'holding':
            log(
              `latching at one packet per stream a second: waiting for ${String(expectedStreams)} ` +
                `kernel streams (at most ${String(opts.offloadWaitS)} s) before the warm-up`,
            );
            kernel.wait =
              kernelQuery === null
                ? Promise.resolve({ streams: null, waitedMs: 0, reached: false })
                : waitForOffload(kernelQuery, expectedStreams, opts.offloadWaitS);
            void kernel.wait.then((w) => {
              log(
                `kernel streams: ${w.streams === null ? 'not reported' : String(w.streams)} after ` +
                  `${(w.waitedMs / 1000).toFixed(1)} s${w.reached ? '' : ' (NOT all offloaded: measuring anyway)'}`,
              );
              toGenerator({ type: 'measure' });
            });
            break;
          case 'measure-start':
            window.start = sampleWindow('start', pid, client, opts, setup, kernelQuery);
            probe?.start();
            log(
              `measuring for ${String(opts.durationS)} s` +
                (probe === null ? '' : ` with ${String(opts.control)} control callers`),
            );
            break;
          case 'measure-end':
            window.end = sampleWindow('end', pid, client, opts, setup, kernelQuery);
            if (probe !== null) probed.result = probe.stop();
            rssEnd = treeRssKiB(pid);
            break;
          case 'result':
            clearTimeout(timer);
            resolve(msg.result);
            break;
          case 'error':
            fail(new Error(`generator: ${msg.message}`));
            break;
        }
      });
      toGenerator({ type: 'start', config });
    }).finally(() => {
      clearInterval(sampler);
    });
    if (window.start === undefined || window.end === undefined) {
      throw new Error('the generator skipped the measured window');
    }
    if (opts.trace !== null) {
      writeTrace(opts.trace, result, cpuSamples);
      log(`time series written to ${opts.trace}`);
    }
    const s0 = await window.start;
    const s1 = await window.end;
    const control = probed.result === undefined ? null : await probed.result;
    const waited = kernel.wait === undefined ? null : await kernel.wait;
    const kernelPath: KernelPath | null =
      opts.kernel === null
        ? null
        : {
            mode: opts.kernel,
            expected: expectedStreams,
            waitedMs: waited?.waitedMs ?? null,
            heldMs: result.heldMs,
            holdTimedOut: result.holdTimedOut,
            atWindowStart: s0.kernel,
            atWindowEnd: s1.kernel,
          };

    const pinned = {
      requested: opts.pin,
      applied: plan.pin,
      reason: plan.reason,
      daemonCpus: cpusAllowed(pid),
      generatorCpus,
    };
    await stopDaemon(daemon, client);

    const report: BenchReport = {
      date: new Date().toISOString(),
      host: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        kernel: os.release(),
        node: process.version,
      },
      target: {
        kind: opts.target === null ? 'ours' : 'other',
        command: [...targetCmd, ...daemonArgs].join(' '),
        version: opts.target === null ? gitDescription() : null,
      },
      pinning: pinned,
      options: opts,
      topology,
      steering: setup.steering,
      kernel: kernelPath,
      setupMs,
      result,
      rssKiB: { before: rssBefore, afterSetup: rssAfterSetup, end: rssEnd },
      windowStart: s0,
      windowEnd: s1,
      control,
    };
    return report;
  } finally {
    client.close();
    await stopDaemon(daemon, null);
    killAll();
  }
}

/** Ramp mode: ever more sessions until the relay no longer keeps up (bounded by --ramp-max). */
async function rampSteps(opts: BenchOptions, setup: RunSetup): Promise<RampStep[]> {
  const steps: RampStep[] = [];
  for (let sessions = opts.sessions; sessions <= opts.rampMax && steps.length < MAX_RAMP_STEPS;) {
    log(
      `ramp step ${String(steps.length + 1)}: ${String(sessions)} sessions` +
        (opts.kernel === null ? '' : `, --kernel ${opts.kernel}`),
    );
    const step = rampStep(await runOnce({ ...opts, sessions }, setup));
    steps.push(step);
    log(formatRampStep(step));
    if (!step.sustained || step.generatorLimited) break;
    sessions += opts.rampStep;
  }
  return steps;
}

async function ramp(opts: BenchOptions, setup: RunSetup): Promise<number> {
  process.stdout.write(formatRamp(await rampSteps(opts, setup), opts.json));
  return 0;
}

/** Repeat mode: the same run --repeat times, then the spread of the figures. */
async function repeat(opts: BenchOptions, setup: RunSetup): Promise<number> {
  const runs: RepeatRun[] = [];
  for (let i = 0; i < opts.repeat; i++) {
    log(`run ${String(i + 1)} of ${String(opts.repeat)}`);
    const run = repeatRun(await runOnce(opts, setup));
    runs.push(run);
    log(formatRepeatRun(i, run));
  }
  process.stdout.write(formatRepeat(runs, opts.json));
  return 0;
}

/**
 * --compare: the same load (or ramp) with the daemon's userspace relay (`--kernel off`), then with
 * the kernel path (`--kernel on`), in the same topology, each run on a fresh daemon.
 */
async function compare(opts: BenchOptions, setup: RunSetup): Promise<number> {
  const userspace: BenchOptions = { ...opts, kernel: 'off' };
  const kernelPath: BenchOptions = { ...opts, kernel: 'on' };
  if (opts.rampStep > 0) {
    log('--compare: userspace ramp (--kernel off)');
    const u = await rampSteps(userspace, setup);
    log('--compare: kernel path ramp (--kernel on)');
    const k = await rampSteps(kernelPath, setup);
    process.stdout.write(formatCompareRamp(u, k, opts.json));
    return 0;
  }
  log('--compare: userspace run (--kernel off)');
  const u = await runOnce(userspace, setup);
  log('--compare: kernel path run (--kernel on)');
  const k = await runOnce(kernelPath, setup);
  process.stdout.write(formatCompare(u, k, opts.json));
  return 0;
}

/**
 * --topology netns, first half: creates the namespaces, runs this same command inside the
 * endpoints one (it finds the topology in TOPOLOGY_ENV) and deletes them when it ends. Returns its
 * exit status.
 */
async function runInNamespaces(): Promise<number> {
  const problem = topologyProblem();
  if (problem !== undefined) throw new Error(`--topology netns: ${problem}`);
  const stale = removeStaleTopologies();
  if (stale.length > 0) log(`removed namespaces of bench runs that are gone: ${stale.join(', ')}`);
  const topology = createTopology(process.pid);
  // Registered first: runs after killAll() on exit and on signals, and kills what is left inside.
  process.on('exit', () => {
    deleteTopology(topology);
  });
  log(
    `namespaces ${topology.relayNs} (daemon on ${topology.relayAddr}, forwarding) and ` +
      `${topology.endpointsNs} (callers ${topology.callerAddr}, callees ${topology.calleeAddr})`,
  );
  const script = process.argv[1] ?? '';
  const inner = track(
    spawn(
      'ip',
      inNamespace(topology.endpointsNs, [
        process.execPath,
        ...process.execArgv,
        script,
        ...process.argv.slice(2),
      ]).slice(1),
      {
        cwd: ROOT,
        stdio: 'inherit',
        env: { ...process.env, [TOPOLOGY_ENV]: JSON.stringify(topology) },
      },
    ),
  );
  const code = await new Promise<number>((resolve) => {
    inner.once('error', (err) => {
      log(`cannot run the bench in ${topology.endpointsNs}: ${err.message}`);
      resolve(1);
    });
    inner.once('exit', (status, signal) => resolve(status ?? (signal === null ? 1 : 128)));
  });
  deleteTopology(topology);
  log(`namespaces deleted`);
  return code;
}

/**
 * The run inside the namespaces stops (and kills what it started) when the run that created them
 * is gone: nothing else would delete the namespaces at its end.
 */
function watchParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid === parent) return;
    log('the bench process that created the namespaces is gone: stopping');
    killAll();
    process.exit(1);
  }, PARENT_CHECK_MS).unref();
}

async function main(): Promise<number> {
  let opts: BenchOptions | null;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (opts === null) {
    process.stdout.write(USAGE);
    return 0;
  }
  let topology: Topology | null = null;
  if (opts.topology === 'netns') {
    topology = inheritedTopology() ?? null;
    if (topology === null) return runInNamespaces();
    watchParent();
  }
  let native: string | null = null;
  if (opts.generator !== 'node') {
    const built = buildNativeGenerator();
    if ('path' in built) native = built.path;
    else if (opts.generator === 'native') throw new Error(`native generator: ${built.error}`);
    else log(`native generator unavailable (${built.error}); using the Node generator`);
  }
  // The driver pins itself to CPU 1 during a run: the plan is made before, once for all runs.
  const plan = pinningPlan(opts.pin);
  const setup: RunSetup = {
    native,
    plan,
    topology,
    steering: topology === null ? null : steering(topology, opts, plan.pin),
  };
  if (opts.compare) return compare(opts, setup);
  if (opts.rampStep > 0) return ramp(opts, setup);
  if (opts.repeat > 1) return repeat(opts, setup);
  process.stdout.write(formatReport(await runOnce(opts, setup), opts.json));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`[bench] error: ${err instanceof Error ? err.message : String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
