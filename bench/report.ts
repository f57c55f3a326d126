/** Derived figures of a benchmark run, as text for people or as one JSON object. */
import type { LatencySummary } from './histogram.ts';
import type { GeneratorResult } from './messages.ts';
import type { ProbeResult } from './control-probe.ts';
import type { Topology } from './netns.ts';
import type { BenchOptions } from './options.ts';

export interface CounterSet {
  readonly npkts_rcvd: number;
  readonly npkts_relayed: number;
  readonly npkts_discard: number;
}

interface Sample {
  readonly t: number;
  readonly cpu: { readonly user: number; readonly system: number };
  readonly counters: CounterSet | null;
  readonly countersT: number;
  readonly drops: { readonly inRange: number; readonly outside: number };
  readonly snmp: Record<string, number>;
  readonly system: Map<
    number,
    { readonly busy: number; readonly irq: number; readonly steal: number; readonly total: number }
  >;
  readonly driverCpuS: number;
  readonly kernel: KernelFigures | null;
  readonly backlogDrops: number;
}

/** The kernel path's lines of `Iv`. */
export interface KernelFigures {
  /** `on`, or `off (REASON)`. */
  readonly state: string;
  /** Stream components (RTP or RTCP, both directions) in the kernel now. */
  readonly streams: number;
  /** Components moved to the kernel, and back (or out with their session), since start. */
  readonly offloads: number;
  readonly withdrawals: number;
  /** nftables transactions since start. */
  readonly committed: number;
  readonly failed: number;
}

/** The kernel path of a run (`--kernel` given). */
export interface KernelPath {
  readonly mode: 'on' | 'off' | 'auto';
  /** Kernel streams once every session is offloaded. */
  readonly expected: number;
  /** How long the driver waited for them before the warm-up (null: it did not wait). */
  readonly waitedMs: number | null;
  /** How long the generator held before the warm-up, and whether it stopped on its own bound. */
  readonly heldMs: number;
  readonly holdTimedOut: boolean;
  /** The kernel path's figures at the start and end of the window (null: not reported). */
  readonly atWindowStart: KernelFigures | null;
  readonly atWindowEnd: KernelFigures | null;
}

export interface BenchReport {
  readonly date: string;
  readonly host: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly kernel: string;
    readonly node: string;
  };
  readonly target: {
    readonly kind: 'ours' | 'other';
    readonly command: string;
    readonly version: string | null;
  };
  readonly pinning: {
    readonly requested: boolean;
    readonly applied: boolean;
    readonly reason: string;
    readonly daemonCpus: string | null;
    readonly generatorCpus: string | null;
  };
  readonly options: BenchOptions;
  /** The namespaces of --topology netns; null on loopback. */
  readonly topology: Topology | null;
  /** netns: where the links' receive processing runs (RPS); null on loopback. */
  readonly steering: string | null;
  readonly kernel: KernelPath | null;
  readonly setupMs: number;
  readonly result: GeneratorResult;
  readonly rssKiB: { readonly before: number; readonly afterSetup: number; readonly end: number };
  readonly windowStart: Sample;
  readonly windowEnd: Sample;
  /** The control probe's figures (--control), null without it. */
  readonly control: ProbeResult | null;
}

const round = (v: number, digits = 3): number => Number(v.toFixed(digits));

function ms(v: number | null): string {
  return v === null ? 'n/a' : `${v.toFixed(3)} ms`;
}

function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

function latencyJson(s: LatencySummary): Record<string, number | null> {
  const r = (v: number | null): number | null => (v === null ? null : round(v, 4));
  return {
    count: s.count,
    min: r(s.minMs),
    mean: r(s.meanMs),
    p50: r(s.p50Ms),
    p90: r(s.p90Ms),
    p99: r(s.p99Ms),
    p999: r(s.p999Ms),
    max: r(s.maxMs),
  };
}

/** Everything worth printing, computed once. */
function derive(rep: BenchReport) {
  const r = rep.result;
  const o = rep.options;
  const windowS = r.windowMs / 1000;
  const daemonWindowS = (rep.windowEnd.t - rep.windowStart.t) / 1000;
  const c0 = rep.windowStart.counters;
  const c1 = rep.windowEnd.counters;
  const counters =
    c0 === null || c1 === null
      ? null
      : {
          npkts_rcvd: c1.npkts_rcvd - c0.npkts_rcvd,
          npkts_relayed: c1.npkts_relayed - c0.npkts_relayed,
          npkts_discard: c1.npkts_discard - c0.npkts_discard,
        };
  const daemonUser = rep.windowEnd.cpu.user - rep.windowStart.cpu.user;
  const daemonSys = rep.windowEnd.cpu.system - rep.windowStart.cpu.system;
  const daemonCpuS = daemonUser + daemonSys;
  const relayedBasis =
    counters !== null && counters.npkts_relayed > 0 ? 'npkts_relayed' : 'received by peers';
  // The counters are read a moment before the window's start and after its end (see
  // sampleWindow in relay.ts): rates over their own interval.
  const countersS = (rep.windowEnd.countersT - rep.windowStart.countersT) / 1000;
  const relayedPpsCounter =
    counters === null || countersS <= 0 ? null : counters.npkts_relayed / countersS;
  const relayedPpsForCpu =
    relayedPpsCounter !== null && relayedPpsCounter > 0 ? relayedPpsCounter : r.received / windowS;
  const genCpuS = r.cpu.userS + r.cpu.systemS;
  const lost = r.sent - r.received;
  const lossPct = r.sent === 0 ? 0 : (100 * lost) / r.sent;
  const baseLoadP50 = r.baselineLoad.p50Ms;
  const baseIdleP50 = r.baselineIdle.p50Ms;
  const relayP50 = r.latency.p50Ms;
  const addedP50 = relayP50 === null || baseLoadP50 === null ? null : relayP50 - baseLoadP50;
  const relayP99 = r.latency.p99Ms;
  const baseLoadP99 = r.baselineLoad.p99Ms;
  const addedP99 = relayP99 === null || baseLoadP99 === null ? null : relayP99 - baseLoadP99;
  const addedP50Idle = relayP50 === null || baseIdleP50 === null ? null : relayP50 - baseIdleP50;
  const delta = (name: string): number =>
    (rep.windowEnd.snmp[name] ?? 0) - (rep.windowStart.snmp[name] ?? 0);
  const dropsDaemon = rep.windowEnd.drops.inRange - rep.windowStart.drops.inRange;
  const dropsGenerator = rep.windowEnd.drops.outside - rep.windowStart.drops.outside;
  const dropsBacklog = rep.windowEnd.backlogDrops - rep.windowStart.backlogDrops;
  const genPct = (100 * genCpuS) / windowS;
  // Whole-machine accounting: what the CPUs did in the window beyond the daemon, the generator
  // and this driver is someone else's load, which makes the figures unreliable.
  const perCpu: { cpu: number; busyPct: number; irqPct: number; stealPct: number }[] = [];
  let machineBusyS = 0;
  for (const [cpu, t1] of rep.windowEnd.system) {
    const t0 = rep.windowStart.system.get(cpu);
    if (t0 === undefined) continue;
    const span = t1.total - t0.total;
    if (span <= 0) continue;
    // Task time plus irq/softirq: on this kernel a task's utime+stime includes the softirq work
    // done on its CPU while it runs (checked: the pinned daemon's utime+stime matches CPU 0's
    // task + softirq time), so both are compared with the processes' figures.
    machineBusyS += t1.busy - t0.busy + (t1.irq - t0.irq);
    perCpu.push({
      cpu,
      busyPct: (100 * (t1.busy - t0.busy)) / span,
      irqPct: (100 * (t1.irq - t0.irq)) / span,
      stealPct: (100 * (t1.steal - t0.steal)) / span,
    });
  }
  const driverS = rep.windowEnd.driverCpuS - rep.windowStart.driverCpuS;
  // Through a forward path the kernel's forwarding is softirq work charged to no process: only
  // task time is compared with the processes' figures there.
  const irqS = perCpu.reduce((n, c) => n + (c.irqPct / 100) * daemonWindowS, 0);
  const taskBusyS = rep.topology === null ? machineBusyS : machineBusyS - irqS;
  const otherS =
    perCpu.length === 0 ? null : Math.max(0, taskBusyS - daemonCpuS - genCpuS - driverS);
  const otherPct = otherS === null ? null : (100 * otherS) / daemonWindowS;
  const warnings: string[] = [];
  if (otherPct !== null && otherPct > 5) {
    warnings.push(
      `other processes used ${otherPct.toFixed(0)} % of a core during the window (the machine was not quiet): ` +
        'the figures are disturbed; run again on an idle machine',
    );
  }
  const maxSteal = Math.max(0, ...perCpu.map((c) => c.stealPct));
  if (maxSteal > 2) {
    warnings.push(`the hypervisor stole up to ${maxSteal.toFixed(0)} % of a CPU during the window`);
  }
  if (!rep.pinning.applied) {
    warnings.push(
      `CPU pinning not applied (${rep.pinning.reason}): daemon and generator share CPUs`,
    );
  }
  // The native generator busy-polls between its sends: its CPU use says nothing of its headroom
  // (its lateness does, below).
  if (r.generator === 'node' && (genPct > 85 || (r.elu ?? 0) > 0.9)) {
    const loop = r.elu === null ? '' : `, event loop ${(100 * r.elu).toFixed(0)} % utilised`;
    warnings.push(
      `the generator was busy (${genPct.toFixed(0)} % of a core${loop}): ` +
        'it may be the bottleneck, not the daemon',
    );
  }
  if (r.schedule.slotsLateByTick > 0) {
    warnings.push(
      `the generator fell behind its schedule: ${String(r.schedule.slotsLateByTick)} of ${String(r.schedule.slotSends)} ` +
        `slot sends were more than one tick (${(1000 / o.rate).toFixed(0)} ms) late, max ${r.schedule.maxLateMs.toFixed(1)} ms`,
    );
  } else if (r.schedule.maxLateMs > 1000 / o.rate / 2) {
    warnings.push(
      `the generator's sends were up to ${r.schedule.maxLateMs.toFixed(1)} ms late (less than one tick)`,
    );
  }
  if (lost > 0) {
    warnings.push(
      `${String(lost)} packets lost; kernel drops in the window: ${String(dropsDaemon)} on daemon sockets, ` +
        `${String(dropsGenerator)} on generator sockets, ${String(dropsBacklog)} on a full input backlog ` +
        `(UDP SndbufErrors +${String(delta('SndbufErrors'))}: a send whose packet the backlog dropped)`,
    );
  }
  if (r.sendErrors > 0) {
    warnings.push(
      `the generator's sockets refused ${String(r.sendErrors)} sends (send buffer full): ` +
        'not offered, not counted as loss',
    );
  }
  if (r.setup.retransmissions > 0) {
    warnings.push(
      `${String(r.setup.retransmissions)} control commands were retransmitted during setup`,
    );
  }
  if (r.misrouted > 0) warnings.push(`${String(r.misrouted)} packets arrived at the wrong peer`);
  if (r.duplicates > 0) warnings.push(`${String(r.duplicates)} duplicate packets received`);
  if (counters === null) {
    warnings.push(
      'the daemon did not answer G npkts_rcvd npkts_relayed npkts_discard; CPU per packet uses packets received by the peers',
    );
  } else if (counters.npkts_discard > 0) {
    warnings.push(`the daemon discarded ${String(counters.npkts_discard)} packets`);
  }
  if (r.generator === 'native' && o.genPoll === 'sleep' && genPct > 90) {
    warnings.push(
      `the generator was busy (${genPct.toFixed(0)} % of a core): it may be the bottleneck, not the daemon`,
    );
  }
  const k = rep.kernel;
  if (k !== null && k.mode !== 'off') {
    const at = k.atWindowStart;
    if (at === null) {
      warnings.push('the daemon does not report kernel streams (Iv): is --kernel implemented?');
    } else if (at.streams < k.expected) {
      warnings.push(
        `only ${String(at.streams)} of ${String(k.expected)} streams were offloaded when the window ` +
          `started (kernel path: ${at.state}): the rest went through userspace`,
      );
    }
    const end = k.atWindowEnd;
    if (at !== null && end !== null && end.failed > at.failed) {
      warnings.push(`${String(end.failed - at.failed)} nftables transactions failed in the window`);
    }
  }
  const receivedPps = r.received / windowS;
  const machinePct = (100 * machineBusyS) / daemonWindowS;
  const generatorCpus = parseCpuList(rep.pinning.generatorCpus);
  const generatorCpuPct = perCpu
    .filter((c) => generatorCpus.has(c.cpu))
    .reduce((n, c) => n + c.busyPct + c.irqPct, 0);
  const daemonCpus = parseCpuList(rep.pinning.daemonCpus);
  // The daemon's CPUs that it does not share with the generator, busy % per CPU.
  const relayOnly = perCpu.filter((c) => daemonCpus.has(c.cpu) && !generatorCpus.has(c.cpu));
  const relayCpuPct =
    relayOnly.length === 0
      ? null
      : relayOnly.reduce((n, c) => n + c.busyPct + c.irqPct, 0) / relayOnly.length;
  const perSession = (kib: number): number => (kib - rep.rssKiB.before) / o.sessions;
  const base = {
    windowS,
    daemonWindowS,
    counters,
    daemonUser,
    daemonSys,
    daemonCpuS,
    daemonPct: (100 * daemonCpuS) / daemonWindowS,
    relayedBasis,
    cpuUsPerPacket:
      relayedPpsForCpu === 0 ? null : ((daemonCpuS / daemonWindowS) * 1e6) / relayedPpsForCpu,
    genCpuS,
    genPct,
    lost,
    lossPct,
    addedP50,
    addedP99,
    addedP50Idle,
    offeredPps: r.sent / windowS,
    receivedPps: r.received / windowS,
    relayedPpsCounter,
    dropsDaemon,
    dropsGenerator,
    dropsBacklog,
    rcvbufErrors: delta('RcvbufErrors'),
    sndbufErrors: delta('SndbufErrors'),
    rssPerSessionSetup: perSession(rep.rssKiB.afterSetup),
    rssPerSessionEnd: perSession(rep.rssKiB.end),
    perCpu,
    driverS,
    otherPct,
    warnings,
    machinePct,
    machineCpus: perCpu.length,
    machineUsPerPacket: receivedPps > 0 ? (10_000 * machinePct) / receivedPps : null,
    generatorCpuPct: rep.pinning.applied ? generatorCpuPct : null,
    relayCpuPct: rep.pinning.applied ? relayCpuPct : null,
  };
  return { ...base, saturated: saturation(rep, base) };
}

/** CPU numbers of a list such as `0`, `0-1` or `0,2-3` (empty for null or garbage). */
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

/** Loss and p99 limits of a sustainable rate (ramp mode). */
const RAMP_MAX_LOSS_PCT = 0.1;
const RAMP_MAX_P99_MS = 50;
/** Below this share of the nominal rate, the generator (not the relay) is the limit. */
const RAMP_MIN_OFFERED = 0.95;
/** A process or CPU this busy (% of a core) counts as saturated. */
const SATURATED_PCT = 90;

/**
 * Which part gave out first in a run that was not sustainable (or came close): the generator
 * (it could not offer the rate, or its own sockets overflowed), the daemon (its CPU, or drops on
 * its sockets), the generator's CPU (shared with the kernel's forwarding, which runs in the
 * sender's softirq), or the machine. Null when nothing did.
 */
function saturation(
  rep: BenchReport,
  d: {
    offeredPps: number;
    lossPct: number;
    daemonPct: number;
    dropsDaemon: number;
    dropsGenerator: number;
    dropsBacklog: number;
    machinePct: number;
    machineCpus: number;
    generatorCpuPct: number | null;
    relayCpuPct: number | null;
    genPct: number;
  },
): string | null {
  const r = rep.result;
  const nominal = 2 * rep.options.sessions * rep.options.rate;
  const p99 = r.latency.p99Ms;
  const sustained = d.lossPct < RAMP_MAX_LOSS_PCT && p99 !== null && p99 < RAMP_MAX_P99_MS;
  const daemonCores = Math.max(1, parseCpuList(rep.pinning.daemonCpus).size);
  const daemonPct = `${d.daemonPct.toFixed(0)} % of ${daemonCores === 1 ? 'its core' : `its ${String(daemonCores)} cores`}`;
  if (d.offeredPps < RAMP_MIN_OFFERED * nominal) {
    return `the load generator: it offered ${d.offeredPps.toFixed(0)} of ${String(nominal)} packets/s`;
  }
  const drops = d.dropsDaemon + d.dropsGenerator + d.dropsBacklog;
  if (sustained && drops === 0) return null;
  if (d.daemonPct >= SATURATED_PCT * daemonCores || d.dropsDaemon > 0) {
    return `the relay daemon: ${daemonPct}, ${String(d.dropsDaemon)} receive drops on its sockets`;
  }
  if (d.relayCpuPct !== null && d.relayCpuPct >= SATURATED_PCT) {
    const what =
      rep.steering?.startsWith('RPS') === true
        ? "the daemon, and the receive processing steered there, the kernel's forwarding included"
        : 'the daemon, and whatever else ran there';
    return `the relay's CPU: ${d.relayCpuPct.toFixed(0)} % busy (tasks + softirq: ${what}), daemon ${daemonPct}`;
  }
  if (r.sendErrors > 0) {
    return (
      `the load generator: its sockets refused ${String(r.sendErrors)} sends (send buffer full: ` +
      'its packets were not taken fast enough)'
    );
  }
  if (d.dropsBacklog > 0) {
    return (
      `the kernel's input backlog (net.core.netdev_max_backlog): ${String(d.dropsBacklog)} packets ` +
      'dropped before any socket'
    );
  }
  if (d.dropsGenerator > 0) {
    return (
      `the load generator's receive side: ${String(d.dropsGenerator)} receive drops on its sockets ` +
      `(its one thread did not drain them; generator ${d.genPct.toFixed(0)} % of a core)`
    );
  }
  if (r.schedule.slotsLateByTick > 0) {
    return (
      `the load generator: ${String(r.schedule.slotsLateByTick)} of its sends were more than a tick ` +
      `late (up to ${r.schedule.maxLateMs.toFixed(1)} ms)`
    );
  }
  if (d.generatorCpuPct !== null && d.generatorCpuPct >= SATURATED_PCT) {
    return (
      `the generator's CPU: ${d.generatorCpuPct.toFixed(0)} % busy (tasks + softirq: the generator ` +
      `and the kernel's forwarding of what it sends)`
    );
  }
  if (d.machinePct >= SATURATED_PCT * d.machineCpus) {
    return `the machine: ${d.machinePct.toFixed(0)} % of ${String(100 * d.machineCpus)} %`;
  }
  return `unclear: daemon ${daemonPct}, machine ${d.machinePct.toFixed(0)} %, no receive drops`;
}

function jsonObject(rep: BenchReport): Record<string, unknown> {
  const d = derive(rep);
  const r = rep.result;
  const o = rep.options;
  const obj = {
    date: rep.date,
    host: rep.host,
    target: rep.target,
    pinning: rep.pinning,
    topology:
      rep.topology === null
        ? { kind: 'loopback' }
        : { kind: 'netns', ...rep.topology, receiveSteering: rep.steering },
    generatorMode: { poll: o.genPoll, endpoints: o.endpoints },
    kernel: rep.kernel,
    config: {
      sessions: o.sessions,
      durationS: o.durationS,
      warmupS: o.warmupS,
      ratePerDirection: o.rate,
      slots: o.slots,
      packetBytes: r.packetBytes,
      portMin: o.portMin,
      portMax: o.portMax,
      peerRecvBufferRequested: o.recvBufferBytes,
      peerRecvBufferGranted: r.peerRecvBuffer,
    },
    setup: {
      seconds: round(rep.setupMs / 1000),
      commands: r.setup.commands,
      commandsPerSecond: round(r.setup.commands / (rep.setupMs / 1000), 0),
      retransmissions: r.setup.retransmissions,
    },
    windowSeconds: round(d.windowS),
    offeredPps: round(d.offeredPps, 1),
    relayedPpsReceived: round(d.receivedPps, 1),
    relayedPpsDaemonCounter: d.relayedPpsCounter === null ? null : round(d.relayedPpsCounter, 1),
    packetsSent: r.sent,
    packetsReceived: r.received,
    lossPercent: round(d.lossPct, 4),
    duplicates: r.duplicates,
    misrouted: r.misrouted,
    reordered: r.reordered,
    streamsWithLoss: r.streamsWithLoss,
    worstStreamLossPercent: round(r.worstStreamLossPct, 3),
    latencyMs: latencyJson(r.latency),
    baselineIdleMs: latencyJson(r.baselineIdle),
    baselineUnderLoadMs: latencyJson(r.baselineLoad),
    addedLatencyP50Ms: d.addedP50 === null ? null : round(d.addedP50, 4),
    addedLatencyP99Ms: d.addedP99 === null ? null : round(d.addedP99, 4),
    addedLatencyP50VsIdleBaselineMs: d.addedP50Idle === null ? null : round(d.addedP50Idle, 4),
    daemon: {
      counters: d.counters,
      cpuUserSeconds: round(d.daemonUser, 2),
      cpuSystemSeconds: round(d.daemonSys, 2),
      cpuPercentOfCore: round(d.daemonPct, 1),
      cpuMicrosecondsPerRelayedPacket:
        d.cpuUsPerPacket === null ? null : round(d.cpuUsPerPacket, 2),
      cpuPerPacketBasis: d.relayedBasis,
      rssKiB: rep.rssKiB,
      rssKiBPerSession: {
        afterSetup: round(d.rssPerSessionSetup, 1),
        end: round(d.rssPerSessionEnd, 1),
      },
    },
    generator: {
      kind: r.generator,
      cpuUserSeconds: round(r.cpu.userS, 2),
      cpuSystemSeconds: round(r.cpu.systemS, 2),
      cpuPercentOfCore: round(d.genPct, 1),
      eventLoopUtilisation: r.elu === null ? null : round(r.elu, 3),
      sendsRefused: r.sendErrors,
      heldBeforeWarmupMs: round(r.heldMs, 0),
      schedule: {
        slotSends: r.schedule.slotSends,
        slotsLateByMoreThanOneTick: r.schedule.slotsLateByTick,
        maxLateMs: round(r.schedule.maxLateMs, 3),
        meanLateMs: round(r.schedule.meanLateMs, 3),
      },
    },
    machine: {
      perCpu: d.perCpu.map((c) => ({
        cpu: c.cpu,
        taskPercent: round(c.busyPct, 1),
        irqSoftirqPercent: round(c.irqPct, 1),
        stealPercent: round(c.stealPct, 1),
      })),
      driverCpuSeconds: round(d.driverS, 3),
      otherProcessesPercentOfCore: d.otherPct === null ? null : round(d.otherPct, 1),
      busyPercentOfOneCore: round(d.machinePct, 1),
      cpus: d.machineCpus,
      cpuMicrosecondsPerRelayedPacket:
        d.machineUsPerPacket === null ? null : round(d.machineUsPerPacket, 2),
      generatorCpuBusyPercent: d.generatorCpuPct === null ? null : round(d.generatorCpuPct, 1),
    },
    saturatedFirst: d.saturated,
    kernelUdp: {
      receiveDropsOnDaemonSockets: d.dropsDaemon,
      receiveDropsOnOtherSockets: d.dropsGenerator,
      backlogDrops: d.dropsBacklog,
      RcvbufErrors: d.rcvbufErrors,
      SndbufErrors: d.sndbufErrors,
    },
    control:
      rep.control === null
        ? null
        : {
            callers: rep.control.concurrency,
            latchedAndHeldMs: rep.control.holdMs,
            deletedEarly: rep.control.deletedEarly,
            setupsPerSecond: round(rep.control.setupsPerS, 1),
            commands: rep.control.commands,
            failures: rep.control.failures,
            retransmissions: rep.control.retransmissions,
            roundTripMs: latencyJson(rep.control.latency),
          },
    warnings: d.warnings,
  };
  return obj;
}

function toText(rep: BenchReport): string {
  const d = derive(rep);
  const r = rep.result;
  const o = rep.options;
  const L: string[] = [];
  const row = (label: string, value: string): void => {
    L.push(`${label.padEnd(27)}: ${value}`);
  };
  L.push('', `rtpproxy relay benchmark, ${rep.date}`);
  row(
    'host',
    `${String(rep.host.cpus)} CPUs (${rep.host.cpuModel}), Linux ${rep.host.kernel}, node ${rep.host.node}`,
  );
  row(
    'target',
    rep.target.kind === 'ours'
      ? `ours (${rep.target.version ?? '?'})`
      : 'other (--binary/--target)',
  );
  row('daemon command', rep.target.command);
  const t = rep.topology;
  row(
    'topology',
    t === null
      ? 'loopback: daemon and peers on 127.0.0.1 in one network namespace'
      : `netns: daemon in ${t.relayNs} (${t.relayAddr}, forwarding), peers in ${t.endpointsNs} ` +
          `(callers ${t.callerAddr} and callees ${t.calleeAddr} on two veth links)`,
  );
  if (rep.steering !== null) row('receive processing', rep.steering);
  row(
    'CPU pinning',
    rep.pinning.applied
      ? `applied: daemon on CPUs [${rep.pinning.daemonCpus ?? '?'}], generator on CPUs [${rep.pinning.generatorCpus ?? '?'}]`
      : `NOT applied (${rep.pinning.reason})`,
  );
  row(
    'load',
    `${String(o.sessions)} sessions, ${String(r.relayStreams)} RTP streams, ${String(r.packetBytes)}-byte packets, ` +
      `${String(o.rate)} pps per direction, ` +
      (r.generator === 'native'
        ? 'each stream at its own instant of the tick'
        : `spread over ${String(o.slots)} slots per tick`),
  );
  row(
    'generator',
    r.generator === 'native'
      ? `native (bench/rtpgen.c): arrival times from the kernel (SO_TIMESTAMPNS); ` +
          `${o.genPoll === 'spin' ? 'busy-polls before its sends' : 'sleeps between its sends'}; ` +
          (o.endpoints === 'shared'
            ? 'one caller and one callee socket for all sessions (sendmmsg/recvmmsg)'
            : 'two sockets per session')
      : 'Node (bench/generator.ts): arrival times taken in its receive callbacks',
  );
  row(
    'setup',
    `${String(r.setup.commands)} U/L commands in ${(rep.setupMs / 1000).toFixed(2)} s ` +
      `(${(r.setup.commands / (rep.setupMs / 1000)).toFixed(0)} commands/s), ${String(r.setup.retransmissions)} retransmitted`,
  );
  row('warm-up / measured window', `${String(o.warmupS)} s / ${d.windowS.toFixed(2)} s`);
  const k = rep.kernel;
  if (k !== null) {
    const a = k.atWindowStart;
    const b = k.atWindowEnd;
    row(
      'kernel path',
      `--kernel ${k.mode}` +
        (a === null
          ? ': no kernel figures in Iv'
          : ` (${a.state}): kernel streams ${String(a.streams)} at the window's start, ` +
            `${b === null ? '?' : String(b.streams)} at its end (${String(k.expected)} = every session's RTP)`) +
        (k.waitedMs === null
          ? ''
          : `; offload waited for ${(k.waitedMs / 1000).toFixed(1)} s before the warm-up` +
            (k.holdTimedOut ? ' (the generator stopped holding on its own bound)' : '')),
    );
    if (a !== null && b !== null) {
      row(
        'kernel path, in the window',
        `${String(b.offloads - a.offloads)} offloads, ${String(b.withdrawals - a.withdrawals)} withdrawals, ` +
          `${String(b.committed - a.committed)} nftables transactions committed, ${String(b.failed - a.failed)} failed`,
      );
    }
  }
  L.push('');
  row(
    'offered',
    `${d.offeredPps.toFixed(0)} packets/s (${String(r.sent)} packets sent in the window)`,
  );
  row(
    'relayed, received by peers',
    `${d.receivedPps.toFixed(0)} packets/s (${String(r.received)} packets)`,
  );
  if (d.relayedPpsCounter !== null) {
    row('relayed, daemon counter', `${d.relayedPpsCounter.toFixed(0)} packets/s (G npkts_relayed)`);
  }
  row(
    'loss',
    `${d.lossPct.toFixed(3)} % (${String(d.lost)} lost, ${String(r.streamsWithLoss)} streams with loss, ` +
      `worst stream ${r.worstStreamLossPct.toFixed(2)} %; ${String(r.duplicates)} duplicates, ${String(r.reordered)} reordered)`,
  );
  row(
    'latency through the relay',
    `p50 ${ms(r.latency.p50Ms)}, p99 ${ms(r.latency.p99Ms)}, max ${ms(r.latency.maxMs)} (mean ${ms(r.latency.meanMs)})`,
  );
  row(
    'baseline, direct, idle',
    `p50 ${ms(r.baselineIdle.p50Ms)}, p99 ${ms(r.baselineIdle.p99Ms)}, max ${ms(r.baselineIdle.maxMs)} (${String(r.baselineIdle.count)} packets)`,
  );
  row(
    'baseline, direct, in load',
    `p50 ${ms(r.baselineLoad.p50Ms)}, p99 ${ms(r.baselineLoad.p99Ms)}, max ${ms(r.baselineLoad.maxMs)} (${String(r.baselineLoad.count)} packets)`,
  );
  row(
    'added latency (p50)',
    `${ms(d.addedP50)} (relay p50 - in-load baseline p50; ${ms(d.addedP50Idle)} against the idle baseline)`,
  );
  row(
    'added latency (p99)',
    `${ms(d.addedP99)} (relay p99 - in-load baseline p99` +
      (r.generator === 'native' ? ')' : `: the generator's own tail is in both)`),
  );
  L.push('');
  if (d.counters !== null) {
    row(
      'daemon counters (window)',
      `npkts_rcvd +${String(d.counters.npkts_rcvd)}, npkts_relayed +${String(d.counters.npkts_relayed)}, npkts_discard +${String(d.counters.npkts_discard)}`,
    );
  }
  row(
    'daemon CPU',
    `${d.daemonCpuS.toFixed(2)} s (user ${d.daemonUser.toFixed(2)}, sys ${d.daemonSys.toFixed(2)}) in ${d.daemonWindowS.toFixed(2)} s = ` +
      `${d.daemonPct.toFixed(1)} % of one core`,
  );
  row(
    'daemon CPU per packet',
    d.cpuUsPerPacket === null
      ? 'n/a'
      : `${d.cpuUsPerPacket.toFixed(2)} µs per relayed packet (basis: ${d.relayedBasis})`,
  );
  row(
    'daemon RSS',
    `before sessions ${mib(rep.rssKiB.before)}, after setup ${mib(rep.rssKiB.afterSetup)}, at end ${mib(rep.rssKiB.end)}`,
  );
  row(
    'daemon RSS per session',
    `${d.rssPerSessionSetup.toFixed(1)} KiB after setup, ${d.rssPerSessionEnd.toFixed(1)} KiB at end`,
  );
  row(
    'generator CPU',
    `${d.genCpuS.toFixed(2)} s (user ${r.cpu.userS.toFixed(2)}, sys ${r.cpu.systemS.toFixed(2)}) = ${d.genPct.toFixed(1)} % of one core, ` +
      (r.elu !== null
        ? `event loop ${(100 * r.elu).toFixed(0)} % utilised`
        : o.genPoll === 'spin'
          ? 'busy-polls between sends'
          : 'sleeps between sends: this is its work'),
  );
  row(
    'generator schedule',
    `sends late by mean ${r.schedule.meanLateMs.toFixed(2)} ms, max ${r.schedule.maxLateMs.toFixed(2)} ms; ` +
      `${String(r.schedule.slotsLateByTick)} ${r.generator === 'native' ? 'wake-ups' : 'slot sends'} more than one tick late` +
      (r.sendErrors > 0 ? `; ${String(r.sendErrors)} sends refused by its sockets` : ''),
  );
  row(
    'machine during the window',
    d.perCpu
      .map(
        (c) =>
          `CPU${String(c.cpu)} ${c.busyPct.toFixed(0)} % tasks + ${c.irqPct.toFixed(0)} % irq/softirq`,
      )
      .join(', ') +
      (d.otherPct === null ? '' : `; other processes ${d.otherPct.toFixed(1)} % of a core`),
  );
  row(
    'machine CPU',
    `${d.machinePct.toFixed(1)} % of ${String(100 * d.machineCpus)} % (tasks + irq/softirq, all CPUs)` +
      (d.machineUsPerPacket === null
        ? ''
        : ` = ${d.machineUsPerPacket.toFixed(2)} µs per relayed packet, everything included`),
  );
  row('saturated first', d.saturated ?? 'nothing (sustained, no receive drops)');
  row(
    'kernel UDP receive drops',
    `daemon sockets ${String(d.dropsDaemon)}, generator sockets ${String(d.dropsGenerator)}, ` +
      `input backlog ${String(d.dropsBacklog)} ` +
      `(RcvbufErrors +${String(d.rcvbufErrors)}, SndbufErrors +${String(d.sndbufErrors)}); ` +
      `peer SO_RCVBUF ${String(r.peerRecvBuffer)} bytes`,
  );
  const c = rep.control;
  if (c !== null) {
    L.push('');
    row(
      'control under load',
      `${c.setupsPerS.toFixed(0)} setups/s (U+L) by ${String(c.concurrency)} callers, ` +
        `${String(c.commands)} commands, ${String(c.failures)} failed, ${String(c.retransmissions)} retransmitted`,
    );
    if (c.holdMs > 0) {
      row(
        'control sessions',
        `each latched by both parties and deleted ${String(c.holdMs)} ms later` +
          (c.deletedEarly > 0 ? ` (${String(c.deletedEarly)} earlier: too many alive)` : ''),
      );
    }
    row(
      'control round trip',
      `p50 ${ms(c.latency.p50Ms)}, p99 ${ms(c.latency.p99Ms)}, max ${ms(c.latency.maxMs)}`,
    );
  }
  L.push('');
  if (d.warnings.length === 0) L.push('warnings: none');
  else for (const w of d.warnings) L.push(`WARNING: ${w}`);
  L.push('');
  return L.join('\n');
}

export function formatReport(rep: BenchReport, json: boolean): string {
  return json ? `${JSON.stringify(jsonObject(rep), null, 2)}\n` : toText(rep);
}

/** One ramp run, reduced to what decides whether the rate is sustainable. */
export interface RampStep {
  readonly sessions: number;
  /** `--kernel` of the run; null when not given. */
  readonly kernel: 'on' | 'off' | 'auto' | null;
  readonly offeredPps: number;
  readonly relayedPps: number;
  readonly lossPct: number;
  readonly p99Ms: number | null;
  readonly cpuPct: number;
  readonly cpuUsPerPacket: number | null;
  /** Whole machine, tasks + irq/softirq, % of one core summed over the CPUs. */
  readonly machinePct: number;
  readonly machineUsPerPacket: number | null;
  /** The native generator's own CPU (% of a core). */
  readonly generatorPct: number;
  readonly kernelStreams: number | null;
  /** Setups per second of the control probe (--control), null without it. */
  readonly setupsPerS: number | null;
  readonly sustained: boolean;
  /** The generator could not offer the nominal rate: the step says nothing of the relay. */
  readonly generatorLimited: boolean;
  /** What gave out first (see saturation()); null when nothing did. */
  readonly saturated: string | null;
}

export function rampStep(rep: BenchReport): RampStep {
  const d = derive(rep);
  const p99 = rep.result.latency.p99Ms;
  const nominal = 2 * rep.options.sessions * rep.options.rate;
  return {
    sessions: rep.options.sessions,
    kernel: rep.options.kernel,
    offeredPps: d.offeredPps,
    relayedPps: d.receivedPps,
    lossPct: d.lossPct,
    p99Ms: p99,
    cpuPct: d.daemonPct,
    cpuUsPerPacket: d.cpuUsPerPacket,
    machinePct: d.machinePct,
    machineUsPerPacket: d.machineUsPerPacket,
    generatorPct: d.genPct,
    kernelStreams: rep.kernel?.atWindowEnd?.streams ?? null,
    setupsPerS: rep.control?.setupsPerS ?? null,
    sustained: d.lossPct < RAMP_MAX_LOSS_PCT && p99 !== null && p99 < RAMP_MAX_P99_MS,
    generatorLimited: d.offeredPps < RAMP_MIN_OFFERED * nominal,
    saturated: d.saturated,
  };
}

const us = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(2)} µs`);

export function formatRampStep(st: RampStep): string {
  return (
    `${String(st.sessions)} sessions: offered ${st.offeredPps.toFixed(0)} pps, relayed ${st.relayedPps.toFixed(0)} pps, ` +
    `loss ${st.lossPct.toFixed(3)} %, p99 ${ms(st.p99Ms)}, daemon ${st.cpuPct.toFixed(0)} % of a core, ` +
    `${st.cpuUsPerPacket === null ? 'n/a' : st.cpuUsPerPacket.toFixed(2)} µs/packet, ` +
    `machine ${st.machinePct.toFixed(0)} % (${us(st.machineUsPerPacket)}/packet)` +
    (st.kernelStreams === null ? '' : `, ${String(st.kernelStreams)} kernel streams`) +
    (st.setupsPerS === null ? '' : `, ${st.setupsPerS.toFixed(0)} setups/s`) +
    ' -> ' +
    (st.generatorLimited
      ? `the generator offered only ${st.offeredPps.toFixed(0)} pps: it, not the relay, is the limit`
      : st.sustained
        ? 'sustained'
        : `NOT sustained (${st.saturated ?? 'cause unclear'})`)
  );
}

/** The highest sustained step, and whether the ramp stopped on the generator. */
function rampSummary(steps: readonly RampStep[]): {
  best: RampStep | undefined;
  limited: boolean;
  last: RampStep | undefined;
} {
  let best: RampStep | undefined;
  for (const st of steps) if (st.sustained && !st.generatorLimited) best = st;
  const last = steps.at(-1);
  return { best, limited: last?.generatorLimited === true, last };
}

function rampLines(title: string, steps: readonly RampStep[]): string[] {
  const { best, limited, last } = rampSummary(steps);
  const stopped = last === undefined || last === best ? null : last.saturated;
  return [
    `${title} (sustainable: loss < ${String(RAMP_MAX_LOSS_PCT)} % and p99 < ${String(RAMP_MAX_P99_MS)} ms)`,
    ...steps.map((st) => `  ${formatRampStep(st)}`),
    best === undefined
      ? 'highest sustainable rate: none of the steps'
      : `highest sustainable rate: ${best.relayedPps.toFixed(0)} packets/s (${String(best.sessions)} sessions)` +
        (limited
          ? ' or more: the generator could not offer the next step (run it on another host or core)'
          : best === last
            ? ' (the ramp ended before the relay saturated: raise --ramp-max)'
            : ''),
    ...(stopped === null ? [] : [`saturated first: ${stopped}`]),
  ];
}

export function formatRamp(steps: readonly RampStep[], json: boolean): string {
  if (json) {
    const { best } = rampSummary(steps);
    return `${JSON.stringify({ limits: { lossPct: RAMP_MAX_LOSS_PCT, p99Ms: RAMP_MAX_P99_MS }, steps, sustainablePps: best?.relayedPps ?? null }, null, 2)}\n`;
  }
  return ['', ...rampLines('ramp', steps), ''].join('\n');
}

/** Rows of a side-by-side table: a label, then one cell per column. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_h, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join(' | ')
      .trimEnd(),
  );
}

const ratio = (a: number | null, b: number | null): string =>
  a === null || b === null || b === 0 ? 'n/a' : `${(a / b).toFixed(1)}x`;

/** --compare: a userspace run and a kernel-path run of the same load, side by side. */
export function formatCompare(user: BenchReport, kernel: BenchReport, json: boolean): string {
  if (json) {
    return `${JSON.stringify({ userspace: jsonObject(user), kernel: jsonObject(kernel) }, null, 2)}\n`;
  }
  const u = derive(user);
  const k = derive(kernel);
  const both = (
    f: (rep: BenchReport, d: ReturnType<typeof derive>) => string,
  ): [string, string] => [f(user, u), f(kernel, k)];
  const n = (v: number | null | undefined): string =>
    v === null || v === undefined ? 'n/a' : String(v);
  const rows: string[][] = [
    ['offered packets/s', ...both((_r, d) => d.offeredPps.toFixed(0))],
    ['relayed packets/s (peers)', ...both((_r, d) => d.receivedPps.toFixed(0))],
    ['loss', ...both((_r, d) => `${d.lossPct.toFixed(3)} %`)],
    [
      'latency p50 / p99 / max',
      ...both(
        (r) =>
          `${ms(r.result.latency.p50Ms)} / ${ms(r.result.latency.p99Ms)} / ${ms(r.result.latency.maxMs)}`,
      ),
    ],
    ['daemon CPU', ...both((_r, d) => `${d.daemonPct.toFixed(1)} % of a core`)],
    ['daemon CPU per packet', ...both((_r, d) => us(d.cpuUsPerPacket))],
    [
      'machine CPU (all CPUs)',
      ...both((_r, d) => `${d.machinePct.toFixed(1)} % of ${String(100 * d.machineCpus)} %`),
    ],
    ['machine CPU per packet', ...both((_r, d) => us(d.machineUsPerPacket))],
    ['generator CPU (rtpgen)', ...both((_r, d) => `${d.genPct.toFixed(1)} % of a core`)],
    [
      'kernel streams, window start / end',
      ...both(
        (r) => `${n(r.kernel?.atWindowStart?.streams)} / ${n(r.kernel?.atWindowEnd?.streams)}`,
      ),
    ],
    [
      'offloads / nft transactions in window',
      ...both((r) => {
        const a = r.kernel?.atWindowStart;
        const b = r.kernel?.atWindowEnd;
        return a === null || b === null || a === undefined || b === undefined
          ? 'n/a'
          : `${String(b.offloads - a.offloads)} / ${String(b.committed - a.committed)}`;
      }),
    ],
    [
      'setups/s with media (--control)',
      ...both((r) => (r.control === null ? 'n/a' : r.control.setupsPerS.toFixed(0))),
    ],
    [
      'control round trip p50 / p99',
      ...both((r) =>
        r.control === null
          ? 'n/a'
          : `${ms(r.control.latency.p50Ms)} / ${ms(r.control.latency.p99Ms)}`,
      ),
    ],
    ['saturated first', ...both((_r, d) => d.saturated ?? 'nothing')],
  ];
  const warnings = [
    ...u.warnings.map((w) => `WARNING (userspace): ${w}`),
    ...k.warnings.map((w) => `WARNING (kernel path): ${w}`),
  ];
  return [
    '',
    `comparison, ${String(user.options.sessions)} sessions, ${user.topology === null ? 'loopback' : 'netns topology'}, fresh daemon per run`,
    ...table(['', 'userspace (--kernel off)', 'kernel path (--kernel on)'], rows),
    `machine CPU per packet, userspace / kernel path: ${ratio(u.machineUsPerPacket, k.machineUsPerPacket)}`,
    ...(warnings.length === 0 ? ['warnings: none'] : warnings),
    '',
  ].join('\n');
}

/** --compare --ramp: both ramps, then their summaries side by side. */
export function formatCompareRamp(
  user: readonly RampStep[],
  kernel: readonly RampStep[],
  json: boolean,
): string {
  const u = rampSummary(user);
  const k = rampSummary(kernel);
  if (json) {
    const limits = { lossPct: RAMP_MAX_LOSS_PCT, p99Ms: RAMP_MAX_P99_MS };
    return `${JSON.stringify(
      {
        limits,
        userspace: { steps: user, sustainablePps: u.best?.relayedPps ?? null },
        kernel: { steps: kernel, sustainablePps: k.best?.relayedPps ?? null },
      },
      null,
      2,
    )}\n`;
  }
  const cell = (
    sum: ReturnType<typeof rampSummary>,
    f: (st: RampStep) => string,
    last = false,
  ): string => {
    const st = last ? sum.last : sum.best;
    return st === undefined ? 'n/a' : f(st);
  };
  const both = (f: (st: RampStep) => string, last = false): [string, string] => [
    cell(u, f, last),
    cell(k, f, last),
  ];
  const rows: string[][] = [
    [
      'highest sustainable rate',
      cell(u, (st) => `${st.relayedPps.toFixed(0)} pps (${String(st.sessions)} sessions)`) +
        (u.limited ? ' or more' : ''),
      cell(k, (st) => `${st.relayedPps.toFixed(0)} pps (${String(st.sessions)} sessions)`) +
        (k.limited ? ' or more' : ''),
    ],
    ['  p99 there', ...both((st) => ms(st.p99Ms))],
    ['  daemon CPU there', ...both((st) => `${st.cpuPct.toFixed(1)} % of a core`)],
    [
      '  machine CPU there',
      ...both((st) => `${st.machinePct.toFixed(0)} % (${us(st.machineUsPerPacket)}/packet)`),
    ],
    ['  generator CPU there', ...both((st) => `${st.generatorPct.toFixed(0)} % of a core`)],
    ['  setups/s there (--control)', ...both((st) => n0(st.setupsPerS))],
    [
      'next step',
      ...both(
        (st) =>
          st.sustained && !st.generatorLimited
            ? 'none: the ramp ended'
            : `${String(st.sessions)} sessions, loss ${st.lossPct.toFixed(3)} %, p99 ${ms(st.p99Ms)}`,
        true,
      ),
    ],
    [
      'saturated first',
      ...both(
        (st) => (st.generatorLimited ? 'the load generator' : (st.saturated ?? 'nothing')),
        true,
      ),
    ],
  ];
  return [
    '',
    ...rampLines('userspace ramp (--kernel off)', user),
    '',
    ...rampLines('kernel path ramp (--kernel on)', kernel),
    '',
    'comparison of the two ramps (same topology, fresh daemon per step)',
    ...table(['', 'userspace', 'kernel path'], rows),
    '',
  ].join('\n');
}

const n0 = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(0));

/** One run of --repeat, reduced to the figures compared across runs. */
export interface RepeatRun {
  readonly lossPct: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  readonly addedP99Ms: number | null;
  readonly cpuPct: number;
  readonly cpuUsPerPacket: number | null;
  /** The generator's largest send delay: a late generator sends bursts the relay must queue. */
  readonly generatorMaxLateMs: number;
}

export function repeatRun(rep: BenchReport): RepeatRun {
  const d = derive(rep);
  const r = rep.result;
  return {
    lossPct: d.lossPct,
    p50Ms: r.latency.p50Ms,
    p99Ms: r.latency.p99Ms,
    maxMs: r.latency.maxMs,
    addedP99Ms: d.addedP99,
    cpuPct: d.daemonPct,
    cpuUsPerPacket: d.cpuUsPerPacket,
    generatorMaxLateMs: r.schedule.maxLateMs,
  };
}

export function formatRepeatRun(i: number, run: RepeatRun): string {
  return (
    `run ${String(i + 1)}: loss ${run.lossPct.toFixed(3)} %, p50 ${ms(run.p50Ms)}, p99 ${ms(run.p99Ms)}, ` +
    `max ${ms(run.maxMs)}, added p99 ${ms(run.addedP99Ms)}, daemon ${run.cpuPct.toFixed(0)} % of a core, ` +
    `${run.cpuUsPerPacket === null ? 'n/a' : run.cpuUsPerPacket.toFixed(2)} µs/packet, ` +
    `generator up to ${run.generatorMaxLateMs.toFixed(1)} ms late`
  );
}

/** Median, smallest and largest of the non-null values (null when there are none). */
function spread(
  values: readonly (number | null)[],
): { median: number; min: number; max: number } | null {
  const v = values.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? (v[mid] ?? 0) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
  return { median, min: v[0] ?? 0, max: v[v.length - 1] ?? 0 };
}

export function formatRepeat(runs: readonly RepeatRun[], json: boolean): string {
  const fields = {
    lossPct: spread(runs.map((r) => r.lossPct)),
    p50Ms: spread(runs.map((r) => r.p50Ms)),
    p99Ms: spread(runs.map((r) => r.p99Ms)),
    maxMs: spread(runs.map((r) => r.maxMs)),
    addedP99Ms: spread(runs.map((r) => r.addedP99Ms)),
    cpuPct: spread(runs.map((r) => r.cpuPct)),
    cpuUsPerPacket: spread(runs.map((r) => r.cpuUsPerPacket)),
    generatorMaxLateMs: spread(runs.map((r) => r.generatorMaxLateMs)),
  };
  if (json) return `${JSON.stringify({ runs, summary: fields }, null, 2)}\n`;
  const line = (
    label: string,
    s: { median: number; min: number; max: number } | null,
    unit: string,
    digits: number,
  ): string =>
    `  ${label.padEnd(26)}: ` +
    (s === null
      ? 'n/a'
      : `median ${s.median.toFixed(digits)}${unit} (${s.min.toFixed(digits)} to ${s.max.toFixed(digits)})`);
  const under = (limit: number): number =>
    runs.filter((r) => r.p99Ms !== null && r.p99Ms < limit).length;
  return [
    '',
    `${String(runs.length)} runs`,
    ...runs.map((r, i) => `  ${formatRepeatRun(i, r)}`),
    line('loss', fields.lossPct, ' %', 3),
    line('latency p50', fields.p50Ms, ' ms', 3),
    line('latency p99', fields.p99Ms, ' ms', 3),
    line('latency max', fields.maxMs, ' ms', 3),
    line('added latency p99', fields.addedP99Ms, ' ms', 3),
    line('daemon CPU', fields.cpuPct, ' % of a core', 1),
    line('daemon CPU per packet', fields.cpuUsPerPacket, ' µs', 2),
    line('generator max lateness', fields.generatorMaxLateMs, ' ms', 2),
    `  runs with p99 under 1 / 2 / 5 ms: ${String(under(1))} / ${String(under(2))} / ${String(under(5))} of ${String(runs.length)}`,
    '',
  ].join('\n');
}
