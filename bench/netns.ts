/**
 * The namespaced topology of `npm run bench -- --topology netns`: every relayed packet crosses
 * the relay namespace's forward path, as it would on a relay host, instead of loopback.
 *
 * ```
 *  endpoints namespace (bench driver, generator, rtpgen)        relay namespace (daemon)
 *   caller 10.99.1.2  ecaller ════ veth ════ rcaller 10.99.1.1 ┐
 *                                                              ├─ ip_forward=1, lo: 10.99.0.1
 *   callee 10.99.2.2  ecallee ════ veth ════ rcallee 10.99.2.1 ┘   (-l and the control socket)
 * ```
 *
 * The caller's sockets leave through one link and the callee's through the other (a source rule
 * in the endpoints namespace), so a packet the relay forwards comes in on one interface and goes
 * out on the other. Both namespaces have unique names (`rtpbench-PID-relay`, `rtpbench-PID-ends`)
 * and the veth pairs are created inside them: nothing of the host namespace (interfaces, routes,
 * sysctls, ruleset) is read or changed, and the daemon's nftables table lives in the relay
 * namespace. Whoever creates a topology deletes it (deleteTopology, safe to call twice); what a
 * killed bench left behind is removed by the next one (removeStaleTopologies).
 */
import { spawnSync } from 'node:child_process';

/** Addresses and names of one topology; passed to the bench's re-run inside the namespace. */
export interface Topology {
  /** Namespace of the daemon. */
  readonly relayNs: string;
  /** Namespace of the bench driver, the generator and its peers. */
  readonly endpointsNs: string;
  /** The daemon's media and control address, on the relay namespace's loopback. */
  readonly relayAddr: string;
  /** The caller peers' address (endpoints side of the caller link). */
  readonly callerAddr: string;
  /** The callee peers' address (endpoints side of the callee link). */
  readonly calleeAddr: string;
}

const PREFIX = 'rtpbench-';
const NAME = /^rtpbench-([0-9]+)-(relay|ends)$/;
/** Routing table of the callee's source rule in the endpoints namespace. */
const CALLEE_TABLE = '100';
const COMMAND_TIMEOUT_MS = 10_000;

const ADDR = {
  relay: '10.99.0.1',
  relayCaller: '10.99.1.1',
  caller: '10.99.1.2',
  relayCallee: '10.99.2.1',
  callee: '10.99.2.2',
} as const;

/** Environment variable carrying the topology (JSON) to the bench run inside the namespace. */
export const TOPOLOGY_ENV = 'RTPPROXY_BENCH_TOPOLOGY';

function ip(args: readonly string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  if (r.error !== undefined) return { ok: false, out: '', err: r.error.message };
  return { ok: r.status === 0, out: r.stdout, err: r.stderr.trim() };
}

function must(args: readonly string[]): void {
  const r = ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.err === '' ? 'failed' : r.err}`);
}

/** `ip netns exec NS` + the command: runs it in namespace `ns`. */
export function inNamespace(ns: string, command: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...command];
}

function sysctl(ns: string, settings: readonly string[]): void {
  for (const s of settings) must(['netns', 'exec', ns, 'sysctl', '-q', '-w', s]);
}

/** Why the topology cannot be built here (not root, no `ip`), or undefined. */
export function topologyProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  const r = ip(['netns', 'list']);
  if (!r.ok) return `ip netns does not work: ${r.err}`;
  return undefined;
}

/** Creates the two namespaces, the veth pairs, the addresses, routes and sysctls. */
export function createTopology(owner: number): Topology {
  const t: Topology = {
    relayNs: `${PREFIX}${String(owner)}-relay`,
    endpointsNs: `${PREFIX}${String(owner)}-ends`,
    relayAddr: ADDR.relay,
    callerAddr: ADDR.caller,
    calleeAddr: ADDR.callee,
  };
  try {
    must(['netns', 'add', t.relayNs]);
    must(['netns', 'add', t.endpointsNs]);
    const r = (args: readonly string[]): void => must(['-n', t.relayNs, ...args]);
    const e = (args: readonly string[]): void => must(['-n', t.endpointsNs, ...args]);
    // Created inside the namespaces: the host namespace never sees these interfaces.
    for (const side of ['caller', 'callee'] as const) {
      must([
        'link',
        'add',
        `r${side}`,
        'netns',
        t.relayNs,
        'type',
        'veth',
        'peer',
        'name',
        `e${side}`,
        'netns',
        t.endpointsNs,
      ]);
    }
    // Before the addresses: a new namespace takes its IPv4 defaults from the host's.
    const quiet = (ns: string, ifs: readonly string[]): void =>
      sysctl(
        ns,
        ['all', 'default', ...ifs].flatMap((i) => [
          `net.ipv4.conf.${i}.rp_filter=0`,
          `net.ipv4.conf.${i}.send_redirects=0`,
        ]),
      );
    quiet(t.relayNs, ['rcaller', 'rcallee']);
    quiet(t.endpointsNs, ['ecaller', 'ecallee']);
    // No IPv6 link-local chatter (router solicitations, DAD) on the links.
    for (const ns of [t.relayNs, t.endpointsNs]) {
      sysctl(ns, ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    sysctl(t.relayNs, ['net.ipv4.ip_forward=1']);
    r(['link', 'set', 'lo', 'up']);
    r(['addr', 'add', `${ADDR.relay}/32`, 'dev', 'lo']);
    r(['addr', 'add', `${ADDR.relayCaller}/24`, 'dev', 'rcaller']);
    r(['addr', 'add', `${ADDR.relayCallee}/24`, 'dev', 'rcallee']);
    r(['link', 'set', 'rcaller', 'up']);
    r(['link', 'set', 'rcallee', 'up']);
    e(['link', 'set', 'lo', 'up']);
    e(['addr', 'add', `${ADDR.caller}/24`, 'dev', 'ecaller']);
    e(['addr', 'add', `${ADDR.callee}/24`, 'dev', 'ecallee']);
    e(['link', 'set', 'ecaller', 'up']);
    e(['link', 'set', 'ecallee', 'up']);
    // The relay through the caller link, except for what the callee's address sends.
    e(['route', 'add', `${ADDR.relay}/32`, 'via', ADDR.relayCaller, 'dev', 'ecaller']);
    e([
      'route',
      'add',
      `${ADDR.relay}/32`,
      'via',
      ADDR.relayCallee,
      'dev',
      'ecallee',
      'table',
      CALLEE_TABLE,
    ]);
    e(['rule', 'add', 'from', ADDR.callee, 'lookup', CALLEE_TABLE, 'pref', '100']);
  } catch (err) {
    deleteTopology(t);
    throw err;
  }
  return t;
}

/** Pids of the processes in namespace `ns` (what the bench started there). */
function namespacePids(ns: string): number[] {
  const r = ip(['netns', 'pids', ns]);
  if (!r.ok) return [];
  return r.out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

/**
 * Kills what still runs in the two namespaces (only the bench's own processes run there) and
 * deletes them; the veth pairs go with them. Synchronous: usable from an 'exit' handler.
 */
export function deleteTopology(t: Topology): void {
  for (const ns of [t.relayNs, t.endpointsNs]) {
    for (const pid of namespacePids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    ip(['netns', 'del', ns]);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes the namespaces of bench runs whose process is gone; returns their names. */
export function removeStaleTopologies(): string[] {
  const r = ip(['netns', 'list']);
  if (!r.ok) return [];
  const removed: string[] = [];
  for (const line of r.out.split('\n')) {
    const name = line.trim().split(' ')[0] ?? '';
    const m = NAME.exec(name);
    if (m?.[1] === undefined || alive(Number(m[1]))) continue;
    for (const pid of namespacePids(name)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (ip(['netns', 'del', name]).ok) removed.push(name);
  }
  return removed;
}

/** The topology handed to this process by the run that created it, or undefined. */
export function inheritedTopology(): Topology | undefined {
  const raw = process.env[TOPOLOGY_ENV];
  if (raw === undefined || raw === '') return undefined;
  const t = JSON.parse(raw) as Partial<Topology>;
  const fields = ['relayNs', 'endpointsNs', 'relayAddr', 'callerAddr', 'calleeAddr'] as const;
  for (const f of fields) {
    if (typeof t[f] !== 'string' || t[f] === '') throw new Error(`${TOPOLOGY_ENV}: no ${f}`);
  }
  return t as Topology;
}

/** An IPv4 address as /proc/net/udp prints it (little-endian hex, `0100007F` for 127.0.0.1). */
export function procNetAddress(addr: string): string {
  const b = addr.split('.').map(Number);
  return b
    .reverse()
    .map((x) => x.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

/** A CPU list (`0`, `0,1`, `0-1`) as the hexadecimal mask that rps_cpus takes; null if empty. */
export function cpuMask(list: string): string | null {
  let mask = 0n;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m?.[1] === undefined) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let c = a; c <= b && c < 1024; c++) mask |= 1n << BigInt(c);
  }
  return mask === 0n ? null : mask.toString(16);
}

/**
 * Receive packet steering on the links: what arrives on the relay namespace's side (the
 * forwarding, or the delivery to the daemon's sockets) is processed on `relayMask`'s CPUs, what
 * arrives on the endpoints' side (the delivery to the generator's sockets) on `endpointsMask`'s,
 * as if relay and endpoints were two hosts. Without it all of it runs in softirq on the CPU of
 * whoever sent the packet. Throws if a mask cannot be written.
 */
export function steerReceive(t: Topology, relayMask: string, endpointsMask: string): void {
  const links = [
    [t.relayNs, 'rcaller', relayMask],
    [t.relayNs, 'rcallee', relayMask],
    [t.endpointsNs, 'ecaller', endpointsMask],
    [t.endpointsNs, 'ecallee', endpointsMask],
  ] as const;
  for (const [ns, dev, mask] of links) {
    if (!/^[0-9a-f]+$/.test(mask)) throw new Error(`bad CPU mask ${mask}`);
    must([
      'netns',
      'exec',
      ns,
      'sh',
      '-c',
      `echo ${mask} > /sys/class/net/${dev}/queues/rx-0/rps_cpus`,
    ]);
  }
}
