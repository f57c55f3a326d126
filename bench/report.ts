/** Derived figures of a benchmark run, as text for people or as one JSON object. */
import type { LatencySummary } from './histogram.ts';
import type { GeneratorResult } from './messages.ts';
import type { ProbeResult } from './control-probe.ts';
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
  readonly drops: { readonly inRange: number; readonly outside: number };
  readonly snmp: Record<string, number>;
  readonly system: Map<
    number,
    { readonly busy: number; readonly irq: number; readonly steal: number; readonly total: number }
  >;
  readonly driverCpuS: number;
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
  const relayedForCpu =
    counters !== null && counters.npkts_relayed > 0 ? counters.npkts_relayed : r.received;
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
  const otherS =
    perCpu.length === 0 ? null : Math.max(0, machineBusyS - daemonCpuS - genCpuS - driverS);
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
      `${String(lost)} packets lost; kernel receive drops in the window: ${String(dropsDaemon)} on daemon sockets, ` +
        `${String(dropsGenerator)} on generator sockets`,
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
  const perSession = (kib: number): number => (kib - rep.rssKiB.before) / o.sessions;
  return {
    windowS,
    daemonWindowS,
    counters,
    daemonUser,
    daemonSys,
    daemonCpuS,
    daemonPct: (100 * daemonCpuS) / daemonWindowS,
    relayedBasis,
    cpuUsPerPacket: relayedForCpu === 0 ? null : (daemonCpuS * 1e6) / relayedForCpu,
    genCpuS,
    genPct,
    lost,
    lossPct,
    addedP50,
    addedP99,
    addedP50Idle,
    offeredPps: r.sent / windowS,
    receivedPps: r.received / windowS,
    relayedPpsCounter: counters === null ? null : counters.npkts_relayed / daemonWindowS,
    dropsDaemon,
    dropsGenerator,
    rcvbufErrors: delta('RcvbufErrors'),
    sndbufErrors: delta('SndbufErrors'),
    rssPerSessionSetup: perSession(rep.rssKiB.afterSetup),
    rssPerSessionEnd: perSession(rep.rssKiB.end),
    perCpu,
    driverS,
    otherPct,
    warnings,
  };
}

function toJson(rep: BenchReport): string {
  const d = derive(rep);
  const r = rep.result;
  const o = rep.options;
  const obj = {
    date: rep.date,
    host: rep.host,
    target: rep.target,
    pinning: rep.pinning,
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
    },
    kernelUdp: {
      receiveDropsOnDaemonSockets: d.dropsDaemon,
      receiveDropsOnOtherSockets: d.dropsGenerator,
      RcvbufErrors: d.rcvbufErrors,
      SndbufErrors: d.sndbufErrors,
    },
    control:
      rep.control === null
        ? null
        : {
            callers: rep.control.concurrency,
            setupsPerSecond: round(rep.control.setupsPerS, 1),
            commands: rep.control.commands,
            failures: rep.control.failures,
            retransmissions: rep.control.retransmissions,
            roundTripMs: latencyJson(rep.control.latency),
          },
    warnings: d.warnings,
  };
  return `${JSON.stringify(obj, null, 2)}\n`;
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
      ? 'native (bench/rtpgen.c): arrival times from the kernel (SO_TIMESTAMPNS)'
      : 'Node (bench/generator.ts): arrival times taken in its receive callbacks',
  );
  row(
    'setup',
    `${String(r.setup.commands)} U/L commands in ${(rep.setupMs / 1000).toFixed(2)} s ` +
      `(${(r.setup.commands / (rep.setupMs / 1000)).toFixed(0)} commands/s), ${String(r.setup.retransmissions)} retransmitted`,
  );
  row('warm-up / measured window', `${String(o.warmupS)} s / ${d.windowS.toFixed(2)} s`);
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
      (r.elu === null
        ? 'busy-polls between sends'
        : `event loop ${(100 * r.elu).toFixed(0)} % utilised`),
  );
  row(
    'generator schedule',
    `sends late by mean ${r.schedule.meanLateMs.toFixed(2)} ms, max ${r.schedule.maxLateMs.toFixed(2)} ms; ` +
      `${String(r.schedule.slotsLateByTick)} ${r.generator === 'native' ? 'wake-ups' : 'slot sends'} more than one tick late`,
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
    'kernel UDP receive drops',
    `daemon sockets ${String(d.dropsDaemon)}, generator sockets ${String(d.dropsGenerator)} ` +
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
  return json ? toJson(rep) : toText(rep);
}

/** Loss and p99 limits of a sustainable rate (ramp mode). */
const RAMP_MAX_LOSS_PCT = 0.1;
const RAMP_MAX_P99_MS = 50;
/** Below this share of the nominal rate, the generator (not the relay) is the limit. */
const RAMP_MIN_OFFERED = 0.95;

/** One ramp run, reduced to what decides whether the rate is sustainable. */
export interface RampStep {
  readonly sessions: number;
  readonly offeredPps: number;
  readonly relayedPps: number;
  readonly lossPct: number;
  readonly p99Ms: number | null;
  readonly cpuPct: number;
  readonly cpuUsPerPacket: number | null;
  readonly sustained: boolean;
  /** The generator could not offer the nominal rate: the step says nothing of the relay. */
  readonly generatorLimited: boolean;
}

export function rampStep(rep: BenchReport): RampStep {
  const d = derive(rep);
  const p99 = rep.result.latency.p99Ms;
  const nominal = 2 * rep.options.sessions * rep.options.rate;
  return {
    sessions: rep.options.sessions,
    offeredPps: d.offeredPps,
    relayedPps: d.receivedPps,
    lossPct: d.lossPct,
    p99Ms: p99,
    cpuPct: d.daemonPct,
    cpuUsPerPacket: d.cpuUsPerPacket,
    sustained: d.lossPct < RAMP_MAX_LOSS_PCT && p99 !== null && p99 < RAMP_MAX_P99_MS,
    generatorLimited: d.offeredPps < RAMP_MIN_OFFERED * nominal,
  };
}

export function formatRampStep(st: RampStep): string {
  return (
    `${String(st.sessions)} sessions: offered ${st.offeredPps.toFixed(0)} pps, relayed ${st.relayedPps.toFixed(0)} pps, ` +
    `loss ${st.lossPct.toFixed(3)} %, p99 ${ms(st.p99Ms)}, daemon ${st.cpuPct.toFixed(0)} % of a core, ` +
    `${st.cpuUsPerPacket === null ? 'n/a' : st.cpuUsPerPacket.toFixed(2)} µs/packet -> ` +
    (st.generatorLimited
      ? `the generator offered only ${st.offeredPps.toFixed(0)} pps: it, not the relay, is the limit`
      : st.sustained
        ? 'sustained'
        : 'NOT sustained')
  );
}

export function formatRamp(steps: readonly RampStep[], json: boolean): string {
  let best: RampStep | undefined;
  for (const st of steps) if (st.sustained && !st.generatorLimited) best = st;
  const limited = steps.at(-1)?.generatorLimited === true;
  if (json) {
    return `${JSON.stringify({ limits: { lossPct: RAMP_MAX_LOSS_PCT, p99Ms: RAMP_MAX_P99_MS }, steps, sustainablePps: best?.relayedPps ?? null }, null, 2)}\n`;
  }
  const lines = [
    '',
    `ramp (sustainable: loss < ${String(RAMP_MAX_LOSS_PCT)} % and p99 < ${String(RAMP_MAX_P99_MS)} ms)`,
    ...steps.map((st) => `  ${formatRampStep(st)}`),
    best === undefined
      ? 'highest sustainable rate: none of the steps'
      : `highest sustainable rate: ${best.relayedPps.toFixed(0)} packets/s (${String(best.sessions)} sessions)` +
        (limited
          ? ' or more: the generator could not offer the next step (run it on another host or core)'
          : best === steps.at(-1)
            ? ' (the ramp ended before the relay saturated: raise --ramp-max)'
            : ''),
    '',
  ];
  return lines.join('\n');
}

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
