/**
 * Linux /proc readers used to account the daemon: CPU time (utime+stime from /proc/PID/stat),
 * resident memory (VmRSS from /proc/PID/status), CPU affinity, UDP socket drop counters. The
 * daemon is measured as its process tree (the PID we started plus its live descendants), so a
 * `--target` wrapper script or a forking daemon is still accounted in full.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

let clockTicks: number | undefined;

/** Kernel clock ticks per second (`getconf CLK_TCK`, 100 when it cannot be asked). */
function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      const v = Number(
        execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim(),
      );
      clockTicks = Number.isInteger(v) && v > 0 ? v : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

interface StatFields {
  readonly ppid: number;
  readonly utime: number;
  readonly stime: number;
  /** CPU of its children that ended and were waited for (the daemon's `nft` runs, say). */
  readonly cutime: number;
  readonly cstime: number;
}

function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${String(pid)}/stat`, 'latin1');
  } catch {
    return null;
  }
  // Field 2 (comm) is in parentheses and may hold spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  return {
    ppid: Number(rest[1]),
    utime: Number(rest[11]),
    stime: Number(rest[12]),
    cutime: Number(rest[13]),
    cstime: Number(rest[14]),
  };
}

/** `pid` and all its live descendants (bounded by the number of processes in /proc). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [pid];
  }
  for (const e of entries) {
    if (!/^[0-9]+$/.test(e)) continue;
    const st = readStat(Number(e));
    if (st === null) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(e));
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  for (let p = queue.shift(); p !== undefined && out.length <= entries.length; p = queue.shift()) {
    out.push(p);
    for (const c of children.get(p) ?? []) queue.push(c);
  }
  return out;
}

/**
 * CPU seconds (user, system) used so far by the tree rooted at `pid`: its live processes, and
 * the children that ended and were waited for (short-lived ones, such as one `nft` per
 * transaction, would otherwise go uncounted between two samples).
 */
export function treeCpuSeconds(pid: number): { user: number; system: number } {
  let u = 0;
  let s = 0;
  for (const p of processTree(pid)) {
    const st = readStat(p);
    if (st === null) continue;
    u += st.utime + st.cutime;
    s += st.stime + st.cstime;
  }
  const hz = clkTck();
  return { user: u / hz, system: s / hz };
}

function statusField(pid: number, name: string): string | null {
  try {
    const text = readFileSync(`/proc/${String(pid)}/status`, 'latin1');
    const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text);
    return m?.[1]?.trim() ?? null;
  } catch {
    return null;
  }
}

/** Resident set size in KiB of the tree rooted at `pid` (VmRSS summed). */
export function treeRssKiB(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    const v = statusField(p, 'VmRSS');
    const m = v === null ? null : /^([0-9]+)\s*kB/.exec(v);
    if (m?.[1] !== undefined) total += Number(m[1]);
  }
  return total;
}

/** The CPUs a process may run on, as /proc shows it (for example `0` or `0-1`). */
export function cpusAllowed(pid: number): string | null {
  return statusField(pid, 'Cpus_allowed_list');
}

/**
 * The UDP line of /proc/net/snmp as name -> value: of this process's network namespace, or of
 * process `pid`'s (`/proc/PID/net/snmp`).
 */
export function udpSnmp(pid?: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const file = pid === undefined ? '/proc/net/snmp' : `/proc/${String(pid)}/net/snmp`;
    const lines = readFileSync(file, 'latin1')
      .split('\n')
      .filter((l) => l.startsWith('Udp: '));
    const names = lines[0]?.split(/\s+/).slice(1) ?? [];
    const values = lines[1]?.split(/\s+/).slice(1) ?? [];
    names.forEach((n, i) => {
      out[n] = Number(values[i]);
    });
  } catch {
    // Not Linux, or /proc not mounted: no figures.
  }
  return out;
}

/**
 * Per-socket receive drops from /proc/net/udp (of this process's network namespace, or of
 * process `pid`'s), summed separately for sockets bound to `address` (as /proc prints it,
 * `0100007F` for 127.0.0.1; null for any) with a local port inside [min, max] (the daemon's media
 * range) and for the other sockets bound to it (the load generator's peers on loopback).
 * Cumulative since each socket was created.
 */
export function udpDrops(
  min: number,
  max: number,
  address: string | null = '0100007F',
  pid?: number,
): { inRange: number; outside: number; sockets: number } {
  let inRange = 0;
  let outside = 0;
  let sockets = 0;
  let text: string;
  try {
    text = readFileSync(
      pid === undefined ? '/proc/net/udp' : `/proc/${String(pid)}/net/udp`,
      'latin1',
    );
  } catch {
    return { inRange, outside, sockets };
  }
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = (lines[i] ?? '').trim().split(/\s+/);
    const local = f[1];
    if (local === undefined || (address !== null && !local.startsWith(`${address}:`))) continue;
    const port = parseInt(local.slice(local.indexOf(':') + 1), 16);
    const drops = Number(f[12] ?? 0);
    sockets++;
    if (port >= min && port <= max) inRange += drops;
    else outside += drops;
  }
  return { inRange, outside, sockets };
}

/**
 * CPU time in nanoseconds used so far by every thread of the tree rooted at `pid`, from
 * /proc/PID/task/TID/schedstat (finer than the clock ticks of /proc/PID/stat; for time series).
 */
export function treeCpuNs(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${String(p)}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const f = readFileSync(`/proc/${String(p)}/task/${tid}/schedstat`, 'latin1').split(' ');
        total += Number(f[0] ?? 0);
      } catch {
        // the thread ended
      }
    }
  }
  return total;
}

/** CPU time (ns, from schedstat) of every thread of one process, by thread id. */
export function threadCpuNs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${String(pid)}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const f = readFileSync(`/proc/${String(pid)}/task/${tid}/schedstat`, 'latin1').split(' ');
      out.set(Number(tid), Number(f[0] ?? 0));
    } catch {
      // the thread ended
    }
  }
  return out;
}

/**
 * Per-CPU time from /proc/stat, in seconds: busy = user + nice + system (task time), irq = irq +
 * softirq (kernel work not charged to any task when the kernel accounts IRQ time separately, such
 * as loopback packet delivery), steal, and the total of all columns.
 */
export interface CpuTimes {
  readonly busy: number;
  readonly irq: number;
  readonly steal: number;
  readonly total: number;
}

/** Every `cpuN` line of /proc/stat, keyed by N. */
export function systemCpuTimes(): Map<number, CpuTimes> {
  const out = new Map<number, CpuTimes>();
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'latin1');
  } catch {
    return out;
  }
  const hz = clkTck();
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (m?.[1] === undefined || m[2] === undefined) continue;
    // user nice system idle iowait irq softirq steal guest guest_nice
    const f = m[2].trim().split(/\s+/).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0);
    const irq = (f[5] ?? 0) + (f[6] ?? 0);
    const steal = f[7] ?? 0;
    out.set(Number(m[1]), { busy: busy / hz, irq: irq / hz, steal: steal / hz, total: total / hz });
  }
  return out;
}

/**
 * Moves every thread of the processes in `pids`, except those whose command name is `keep`, to the
 * SCHED_IDLE policy (`chrt --idle`: they run only when nothing else wants the CPU, and a waking
 * normal thread preempts them at once), or to nice 19 where chrt is missing or fails (a nice-19
 * thread may still finish its slice, a few ms, before a waking thread runs). Scheduling policy and
 * nice are per thread on Linux. Returns how many threads went idle and how many were reniced.
 */
export function yieldCpu(pids: readonly number[], keep: string): { idle: number; niced: number } {
  const out = { idle: 0, niced: 0 };
  for (const pid of pids) {
    let comm: string;
    let tids: string[];
    try {
      comm = readFileSync(`/proc/${String(pid)}/comm`, 'utf8').trim();
      tids = readdirSync(`/proc/${String(pid)}/task`);
    } catch {
      continue;
    }
    if (comm === keep) continue;
    for (const tid of tids) {
      const r = spawnSync('chrt', ['--idle', '--pid', '0', tid], { timeout: 2000 });
      if (r.status === 0) {
        out.idle++;
        continue;
      }
      try {
        os.setPriority(Number(tid), 19);
        out.niced++;
      } catch {
        // The thread ended meanwhile.
      }
    }
  }
  return out;
}

/**
 * Packets the kernel dropped because a CPU's input backlog was full (netdev_max_backlog), summed
 * over the CPUs: the second column of /proc/net/softnet_stat (hexadecimal, one line per CPU).
 * Veth delivery goes through that backlog, so this is where a forward path overflows.
 */
export function backlogDrops(): number {
  let text: string;
  try {
    text = readFileSync('/proc/net/softnet_stat', 'latin1');
  } catch {
    return 0;
  }
  let total = 0;
  for (const line of text.split('\n')) {
    const dropped = line.trim().split(/\s+/)[1];
    if (dropped !== undefined) total += parseInt(dropped, 16) || 0;
  }
  return total;
}
