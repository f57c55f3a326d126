/**
 * Network namespaces for tests that need a real network between the parties and the relay: a
 * caller host, a relay host and a callee host, joined by two veth pairs, with IPv4 and IPv6
 * addresses that exist only inside them and routes through the relay. Forwarding is switched on
 * (by default) in the relay's namespace only; nothing here changes a setting, a table or an
 * interface of the host's own namespace. Names carry the process id, so test files running side by side
 * never meet, and teardown deletes the namespaces (their interfaces, addresses, routes and
 * nftables tables go with them).
 *
 * Beside the topology: the daemon (bin/rtpproxy.js) started in a namespace with a `stdio:`
 * control socket, and parties, small node children in a namespace that bind one UDP socket, send
 * numbered RTP (or RTCP) packets at a given pace and report what they received as JSON. Every
 * wait has a deadline and every loop a bound.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LogLine, Teardown } from './daemon.ts';

const execFileP = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/rtpproxy.js', import.meta.url));

/** The default deadline of every wait here, in milliseconds. */
const NETNS_DEADLINE_MS = 15_000;

/** The part of tap's Test the helpers here use. */
export type WithTeardown = Pick<Teardown, 'teardown'>;

/** Whether `cmd` is on PATH. */
function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/**
 * Why namespace tests cannot run here (not Linux, not root, a command of `commands` missing),
 * or false when they can. `ip` is always needed.
 */
export function netnsSkipReason(commands: readonly string[] = []): string | false {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'not root: cannot create network namespaces';
  for (const cmd of ['ip', ...commands]) {
    if (!have(cmd)) return `${cmd} is not installed`;
  }
  return false;
}

/** Runs `cmd args` and resolves with its stdout; rejects with its stderr on failure. */
export async function run(
  cmd: string,
  args: readonly string[],
  timeoutMs = 10_000,
): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const detail = typeof stderr === 'string' && stderr !== '' ? `: ${stderr.trim()}` : '';
    throw new Error(`${cmd} ${args.join(' ')} failed${detail}`, { cause: err });
  }
}

/** `cmd args` inside namespace `ns`. */
export function runIn(ns: string, cmd: string, args: readonly string[]): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** `nft args` inside namespace `ns`: its stdout, or `error: ...` when nft fails. */
export async function nftIn(ns: string, args: readonly string[]): Promise<string> {
  try {
    return await runIn(ns, 'nft', args);
  } catch (err) {
    return `error: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Polls `probe` (every 50 ms, at most 2000 times) until it gives a value; rejects after `ms`. */
export async function waitFor<T>(
  what: string | (() => string),
  probe: () => Promise<T | undefined> | T | undefined,
  ms = NETNS_DEADLINE_MS,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 2000; i += 1) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  throw new Error(
    `timed out after ${String(ms)} ms waiting for ${typeof what === 'string' ? what : what()}`,
  );
}

/** A pause; only for pacing traffic and for letting time pass on purpose, never to wait for an event. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The lines of a child's stream, collected as they come. */
export function collectLines(stream: NodeJS.ReadableStream | null): string[] {
  const out: string[] = [];
  let rest = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    out.push(...parts);
  });
  return out;
}

/** Resolves with the exit status (128 + signal number after a signal); SIGKILLed at teardown. */
function exitOf(t: WithTeardown, child: ChildProcess): Promise<number> {
  const exited = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => {
      resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
    });
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return exited;
}

// ---------------------------------------------------------------------------------------------
// The topology

/** One side of a veth pair: its namespace, interface and addresses (the first is the main one). */
interface Side {
  readonly ns: string;
  readonly dev: string;
  readonly v4: readonly [string, ...string[]];
  readonly v6: readonly [string, ...string[]];
}

export interface Topology {
  /** The caller's host: 10.201.1.2 (and .3, .4), fd00:201:1::2 (and ::3). */
  readonly caller: Side;
  /** The callee's host: 10.201.2.2 (and .3, .4), fd00:201:2::2 (and ::3). */
  readonly callee: Side;
  /** The relay's namespace. */
  readonly relay: string;
  /** The relay's interface towards the caller: 10.201.1.1, fd00:201:1::1. */
  readonly relayCallerSide: Side;
  /** The relay's interface towards the callee: 10.201.2.1, fd00:201:2::1. */
  readonly relayCalleeSide: Side;
}

const CALLER_NET4 = '10.201.1';
const CALLEE_NET4 = '10.201.2';
const CALLER_NET6 = 'fd00:201:1:';
const CALLEE_NET6 = 'fd00:201:2:';

/**
 * Creates the three namespaces `rtpp-LABEL-PID-{a,r,b}` (caller, relay, callee) and deletes them
 * at teardown. The parties route everything through the relay, whose namespace forwards IPv4 and
 * IPv6 unless `forwarding` is false (a relay host that forwards nothing, where the daemon's kernel
 * path stays off). `label` is at most 8 characters.
 */
export async function createTopology(
  t: WithTeardown,
  label: string,
  { forwarding = true }: { readonly forwarding?: boolean } = {},
): Promise<Topology> {
  const id = `${label.slice(0, 8)}-${String(process.pid)}`;
  const caller = `rtpp-${id}-a`;
  const relay = `rtpp-${id}-r`;
  const callee = `rtpp-${id}-b`;
  t.teardown(async () => {
    for (const ns of [caller, relay, callee]) {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  });
  for (const ns of [caller, relay, callee]) await run('ip', ['netns', 'add', ns]);
  // Set before the interfaces exist, so that they take the setting.
  const on = forwarding ? '1' : '0';
  await runIn(relay, 'sysctl', ['-q', '-w', `net.ipv4.ip_forward=${on}`]);
  await runIn(relay, 'sysctl', ['-q', '-w', `net.ipv6.conf.all.forwarding=${on}`]);
  await runIn(relay, 'sysctl', ['-q', '-w', `net.ipv6.conf.default.forwarding=${on}`]);

  const side = (ns: string, dev: string, net4: string, net6: string, hosts: number[]): Side => ({
    ns,
    dev,
    v4: hosts.map((h) => `${net4}.${String(h)}`) as unknown as Side['v4'],
    v6: hosts.map((h) => `${net6}:${String(h)}`) as unknown as Side['v6'],
  });
  const relayCallerSide = side(relay, 'ra', CALLER_NET4, CALLER_NET6, [1]);
  const relayCalleeSide = side(relay, 'rb', CALLEE_NET4, CALLEE_NET6, [1]);
  const callerSide = side(caller, 'va', CALLER_NET4, CALLER_NET6, [2, 3, 4]);
  const calleeSide = side(callee, 'vb', CALLEE_NET4, CALLEE_NET6, [2, 3, 4]);

  for (const [r, p] of [
    [relayCallerSide, callerSide],
    [relayCalleeSide, calleeSide],
  ] as const) {
    // Created inside the relay's namespace, the peer moved straight into the party's.
    await run('ip', [
      ...['-n', relay, 'link', 'add', r.dev, 'type', 'veth'],
      ...['peer', 'name', p.dev, 'netns', p.ns],
    ]);
    for (const s of [r, p]) {
      for (const a of s.v4) await run('ip', ['-n', s.ns, 'addr', 'add', `${a}/24`, 'dev', s.dev]);
      for (const a of s.v6) {
        await run('ip', ['-n', s.ns, 'addr', 'add', `${a}/64`, 'dev', s.dev, 'nodad']);
      }
      await run('ip', ['-n', s.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', s.ns, 'link', 'set', s.dev, 'up']);
    }
    await run('ip', ['-n', p.ns, 'route', 'add', 'default', 'via', r.v4[0]]);
    await run('ip', ['-n', p.ns, '-6', 'route', 'add', 'default', 'via', r.v6[0]]);
  }
  return {
    caller: callerSide,
    callee: calleeSide,
    relay,
    relayCallerSide,
    relayCalleeSide,
  };
}

// ---------------------------------------------------------------------------------------------
// nftables, read inside a namespace

/**
 * One element of an nftables map: its key (a concatenation's parts), value and counter: the
 * element's own, or, for a forwarding element of the kernel path (value: a mark id), the named
 * counter `k<id in hex>` the daemon keeps for it.
 */
export interface MapElement {
  readonly key: readonly (string | number)[];
  readonly value: unknown;
  readonly packets: number | undefined;
  readonly bytes: number | undefined;
}

interface NftJsonElem {
  readonly elem?: {
    readonly val?: unknown;
    readonly counter?: { readonly packets?: number; readonly bytes?: number };
  };
  readonly concat?: readonly (string | number)[];
}

function keyParts(val: unknown): (string | number)[] {
  if (typeof val === 'string' || typeof val === 'number') return [val];
  const concat = (val as { concat?: unknown } | null)?.concat;
  return Array.isArray(concat) ? (concat as (string | number)[]) : [JSON.stringify(val)];
}

function elementOf(entry: unknown): MapElement {
  const [rawKey, value] = Array.isArray(entry) ? (entry as unknown[]) : [entry, undefined];
  const key = rawKey as NftJsonElem | string | number;
  if (typeof key === 'object' && key.elem !== undefined) {
    return {
      key: keyParts(key.elem.val),
      value,
      packets: key.elem.counter?.packets,
      bytes: key.elem.counter?.bytes,
    };
  }
  return { key: keyParts(key), value, packets: undefined, bytes: undefined };
}

/**
 * The maps and sets of table `inet TABLE` in `ns` with their elements (`nft -j list table`);
 * undefined when there is no such table.
 */
export async function nftTableMaps(
  ns: string,
  table: string,
): Promise<Map<string, MapElement[]> | undefined> {
  const text = await nftIn(ns, ['-j', 'list', 'table', 'inet', table]);
  if (text.startsWith('error:')) return undefined;
  const doc = JSON.parse(text) as { nftables?: Record<string, unknown>[] };
  const maps = new Map<string, MapElement[]>();
  for (const item of doc.nftables ?? []) {
    const m = (item['map'] ?? item['set']) as { name?: string; elem?: unknown[] } | undefined;
    if (m?.name === undefined) continue;
    maps.set(m.name, (m.elem ?? []).map(elementOf));
  }
  return maps;
}

/** The elements of map `inet TABLE NAME` in `ns`; undefined when the map (or table) is missing. */
export async function nftMapElements(
  ns: string,
  table: string,
  name: string,
): Promise<MapElement[] | undefined> {
  const text = await nftIn(ns, ['-j', 'list', 'map', 'inet', table, name]);
  if (text.startsWith('error:')) return undefined;
  const doc = JSON.parse(text) as { nftables?: Record<string, unknown>[] };
  for (const item of doc.nftables ?? []) {
    const m = item['map'] as { elem?: unknown[] } | undefined;
    if (m === undefined) continue;
    const elements = (m.elem ?? []).map(elementOf);
    if (elements.every((e) => e.packets !== undefined || typeof e.value !== 'number')) {
      return elements;
    }
    const counters = await namedCounters(ns, table);
    return elements.map((e) => {
      const c = typeof e.value === 'number' ? counters.get(`k${e.value.toString(16)}`) : undefined;
      return c === undefined ? e : { ...e, packets: c.packets, bytes: c.bytes };
    });
  }
  return [];
}

/** The named counters of `inet TABLE` in `ns` (read, not reset). */
async function namedCounters(
  ns: string,
  table: string,
): Promise<Map<string, { packets: number; bytes: number }>> {
  const text = await nftIn(ns, ['-j', 'list', 'counters', 'table', 'inet', table]);
  const counters = new Map<string, { packets: number; bytes: number }>();
  if (text.startsWith('error:')) return counters;
  const doc = JSON.parse(text) as { nftables?: Record<string, unknown>[] };
  for (const item of doc.nftables ?? []) {
    const c = item['counter'] as { name?: string; packets?: number; bytes?: number } | undefined;
    if (c?.name === undefined) continue;
    counters.set(c.name, { packets: c.packets ?? 0, bytes: c.bytes ?? 0 });
  }
  return counters;
}

/** The table names (`FAMILY NAME`) in `ns`. */
export async function nftTables(ns: string): Promise<string[]> {
  const text = await nftIn(ns, ['list', 'tables']);
  return text
    .split('\n')
    .map((l) => l.replace(/^table\s+/, '').trim())
    .filter((l) => l !== '');
}

/**
 * A counter of the UDP packets that the local stack of `ns` delivers (the input hook) to
 * `addresses` on ports `min..max`: what the relay's own sockets could have received. It lives in
 * a table of its own (`inet rtpptest_input`) in `ns`, deleted at teardown.
 */
export async function inputCounter(
  t: WithTeardown,
  ns: string,
  addresses: readonly string[],
  min: number,
  max: number,
): Promise<{ read(): Promise<number> }> {
  const table = 'rtpptest_input';
  const rules = addresses.map((a) =>
    a.includes(':')
      ? `ip6 daddr ${a} udp dport ${String(min)}-${String(max)} counter`
      : `ip daddr ${a} udp dport ${String(min)}-${String(max)} counter`,
  );
  t.teardown(() => nftIn(ns, ['delete', 'table', 'inet', table]));
  await nftIn(ns, ['delete', 'table', 'inet', table]);
  await nftIn(ns, ['add', 'table', 'inet', table]);
  const chain = await nftIn(ns, [
    'add',
    'chain',
    'inet',
    table,
    'input',
    '{ type filter hook input priority 0; policy accept; }',
  ]);
  if (chain.startsWith('error:')) throw new Error(chain);
  for (const rule of rules) {
    const out = await nftIn(ns, ['add', 'rule', 'inet', table, 'input', ...rule.split(' ')]);
    if (out.startsWith('error:')) throw new Error(out);
  }
  return {
    read: async () => {
      const text = await nftIn(ns, ['-j', 'list', 'chain', 'inet', table, 'input']);
      const doc = JSON.parse(text) as { nftables?: Record<string, unknown>[] };
      let sum = 0;
      for (const item of doc.nftables ?? []) {
        const rule = item['rule'] as { expr?: Record<string, unknown>[] } | undefined;
        for (const e of rule?.expr ?? []) {
          const c = e['counter'] as { packets?: number } | undefined;
          sum += c?.packets ?? 0;
        }
      }
      return sum;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The daemon in a namespace

export interface NsDaemon {
  readonly pid: number;
  /**
   * One command over `stdio:`; resolves with the reply without its final LF (the lines of a
   * multi-line reply joined by LF). Rejects when the daemon exits or the reply takes too long.
   */
  command(line: string): Promise<string>;
  /** The JSON log lines so far. */
  logs(): LogLine[];
  /** Everything the daemon wrote on stderr so far. */
  stderr(): string;
  /** Resolves with the exit status, or 128 + signal number. */
  readonly exited: Promise<number>;
  gone(): boolean;
  /** SIGTERM, then the exit status. */
  stop(): Promise<number>;
  kill(signal: NodeJS.Signals): void;
}

export interface NsDaemonOptions {
  /** Commands the daemon runs under, inside the namespace (setpriv, unshare ...). */
  readonly wrap?: readonly string[];
  /** Environment variables set for the daemon (through env(1)). */
  readonly env?: Readonly<Record<string, string>>;
}

/** The reply of `V`: what ends every command's reply on the pipe (see {@link NsDaemon.command}). */
const SENTINEL = '20040107';

/**
 * Starts bin/rtpproxy.js in namespace `ns` with `-f -F -s stdio: -d INFO -p /dev/null` and
 * `args` (its table is `inet rtpproxy_stdio`). Every command is followed by a `V` on the pipe,
 * whose reply marks the end of the command's reply, so replies of any number of lines (`I`) are
 * told apart. The daemon gets SIGKILL at teardown if it still runs.
 */
export function startNsDaemon(
  t: WithTeardown,
  ns: string,
  args: readonly string[],
  options: NsDaemonOptions = {},
): NsDaemon {
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
  // env -u NODE_OPTIONS: tap's process-info hook would otherwise follow the child.
  const child = spawn(
    'ip',
    [
      ...['netns', 'exec', ns, ...(options.wrap ?? [])],
      ...['env', '-u', 'NODE_OPTIONS', ...env, process.execPath, BIN],
      ...['-f', '-F', '-s', 'stdio:', '-d', 'INFO', '-p', '/dev/null', ...args],
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  if (child.pid === undefined) throw new Error('spawn failed');
  const out = collectLines(child.stdout);
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.on('error', () => undefined);
  let ended = false;
  const exited = exitOf(t, child);
  void exited.then(() => (ended = true));
  let read = 0;
  let queue: Promise<unknown> = Promise.resolve();

  const ask = async (line: string): Promise<string> => {
    if (ended) throw new Error(`the daemon has exited; cannot send ${line}:\n${err}`);
    // `V` alone is its own end mark: its reply is that one line.
    const isV = line.trim() === 'V';
    child.stdin.write(isV ? `${line}\n` : `${line}\nV\n`);
    const from = read;
    const end = await waitFor(
      () => `the reply to ${line} (so far: ${JSON.stringify(out.slice(from))})`,
      () => {
        if (ended) throw new Error(`the daemon exited before it answered ${line}:\n${err}`);
        const at = out.indexOf(SENTINEL, from);
        return at === -1 ? undefined : at;
      },
    );
    read = end + 1;
    return isV ? SENTINEL : out.slice(from, end).join('\n');
  };

  return {
    pid: child.pid,
    command: (line) => {
      const next = queue.then(() => ask(line));
      queue = next.catch(() => undefined);
      return next;
    },
    logs: () =>
      err.split('\n').flatMap((l) => {
        if (!l.startsWith('{')) return [];
        try {
          return [JSON.parse(l) as LogLine];
        } catch {
          return [];
        }
      }),
    stderr: () => err,
    exited,
    gone: () => ended,
    stop: () => {
      if (!ended) child.kill('SIGTERM');
      return exited;
    },
    kill: (signal) => child.kill(signal),
  };
}

/** The port of a U/L reply (`PORT`, `PORT ADDR`, `PORT ADDR 6`); throws on anything else. */
export function portOf(reply: string): number {
  const m = /^([0-9]+)(?: |$)/.exec(reply);
  if (m?.[1] === undefined || m[1] === '0') {
    throw new Error(`not a port reply: ${JSON.stringify(reply)}`);
  }
  return Number(m[1]);
}

// ---------------------------------------------------------------------------------------------
// Parties

/** What a party sends: RTP (12-byte header, 160 bytes of payload) or RTCP APP packets. */
type PacketKind = 'rtp' | 'rtcp';

interface SendOptions {
  readonly to: string;
  readonly port: number;
  readonly count: number;
  /** Milliseconds between two packets; 20 by default. */
  readonly intervalMs?: number;
  readonly ssrc: number;
  /** The first sequence number (RTP: modulo 2^16); 1 by default. */
  readonly firstSeq?: number;
  readonly kind?: PacketKind;
}

interface SendResult {
  /** Packets sent (fewer than asked when stopped). */
  readonly sent: number;
  readonly firstSeq: number;
  /** Wall-clock time (Date.now()) each packet was sent, in order. */
  readonly sentAt: readonly number[];
  /** Send errors. */
  readonly errors: number;
}

interface StreamReport {
  readonly kind: PacketKind;
  /** Sequence numbers in arrival order. */
  readonly seqs: readonly number[];
}

export interface PartyReport {
  /** Packets received, well-formed or not. */
  readonly received: number;
  /** Packets whose header or payload did not check out. */
  readonly bad: number;
  /** Packets per source `ADDR:PORT` (IPv6 as `[ADDR]:PORT`). */
  readonly sources: Readonly<Record<string, number>>;
  /** Well-formed packets per SSRC (decimal). */
  readonly streams: Readonly<Record<string, StreamReport>>;
}

interface SendHandle {
  /** Resolves when every packet is sent, or the sending was stopped. */
  readonly done: Promise<SendResult>;
  /** Stops sending; resolves like `done`. */
  stop(): Promise<SendResult>;
}

export interface Party {
  readonly ns: string;
  readonly address: string;
  readonly port: number;
  /** Starts sending; `await party.send(...).done` waits for the last packet. */
  send(options: SendOptions): SendHandle;
  /** What arrived since the start (or the last reset). */
  report(): Promise<PartyReport>;
  /** Forgets what arrived. */
  reset(): Promise<void>;
  /** Ends the child. */
  close(): Promise<void>;
}

/**
 * The party's program (plain JavaScript for `node -e`): one UDP socket, commands as JSON lines on
 * stdin, answers as JSON lines on stdout. RTP packets carry a payload derived from SSRC and
 * sequence number, RTCP APP packets (name RTPP) a 32-bit sequence number; the receiver checks both.
 */
const PARTY_SCRIPT = String.raw`
'use strict';
const dgram = require('node:dgram');
const readline = require('node:readline');
const cfg = JSON.parse(process.argv[1]);
const sock = dgram.createSocket({ type: cfg.address.includes(':') ? 'udp6' : 'udp4' });
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let rx = { received: 0, bad: 0, sources: {}, streams: {} };
const senders = new Map();
const RTP_PAYLOAD = 160;

function build(kind, ssrc, seq) {
  if (kind === 'rtcp') {
    const b = Buffer.alloc(16);
    b[0] = 0x80; b[1] = 204; b.writeUInt16BE(3, 2); b.writeUInt32BE(ssrc >>> 0, 4);
    b.write('RTPP', 8, 'latin1'); b.writeUInt32BE(seq >>> 0, 12);
    return b;
  }
  const b = Buffer.alloc(12 + RTP_PAYLOAD);
  b[0] = 0x80; b[1] = 0; b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4); b.writeUInt32BE(ssrc >>> 0, 8);
  for (let i = 0; i < RTP_PAYLOAD; i += 1) b[12 + i] = (seq + ssrc + i) & 0xff;
  return b;
}

function parse(msg) {
  if (msg.length < 12 || (msg[0] & 0xc0) !== 0x80) return undefined;
  if (msg[1] === 204) {
    if (msg.length !== 16 || msg.toString('latin1', 8, 12) !== 'RTPP') return undefined;
    return { kind: 'rtcp', ssrc: msg.readUInt32BE(4), seq: msg.readUInt32BE(12) };
  }
  if (msg.length !== 12 + RTP_PAYLOAD) return undefined;
  const ssrc = msg.readUInt32BE(8);
  const seq = msg.readUInt16BE(2);
  for (let i = 0; i < RTP_PAYLOAD; i += 1) {
    if (msg[12 + i] !== ((seq + ssrc + i) & 0xff)) return undefined;
  }
  return { kind: 'rtp', ssrc, seq };
}

sock.on('message', (msg, rinfo) => {
  rx.received += 1;
  const from = (rinfo.family === 'IPv6' ? '[' + rinfo.address + ']' : rinfo.address) + ':' + rinfo.port;
  rx.sources[from] = (rx.sources[from] || 0) + 1;
  const p = parse(msg);
  if (p === undefined) { rx.bad += 1; return; }
  const s = (rx.streams[p.ssrc] = rx.streams[p.ssrc] || { kind: p.kind, seqs: [] });
  s.seqs.push(p.seq);
});
sock.on('error', () => undefined);

function send(c) {
  const kind = c.kind || 'rtp';
  const first = c.firstSeq === undefined ? 1 : c.firstSeq;
  const count = Math.min(c.count, 100000);
  const st = { sent: 0, firstSeq: first, sentAt: [], errors: 0, timer: undefined, id: c.id };
  senders.set(c.id, st);
  const finish = () => {
    if (st.timer !== undefined) clearTimeout(st.timer);
    if (!senders.delete(c.id)) return;
    say({ id: c.id, sent: st.sent, firstSeq: st.firstSeq, sentAt: st.sentAt, errors: st.errors });
  };
  st.finish = finish;
  const one = () => {
    st.timer = undefined;
    if (!senders.has(c.id)) return;
    if (st.sent >= count) { finish(); return; }
    const pkt = build(kind, c.ssrc, first + st.sent);
    st.sentAt.push(Date.now());
    st.sent += 1;
    sock.send(pkt, c.port, c.to, (err) => { if (err) st.errors += 1; });
    if (st.sent >= count) { setImmediate(finish); return; }
    st.timer = setTimeout(one, c.intervalMs === undefined ? 20 : c.intervalMs);
  };
  one();
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.op === 'send') send(c);
  else if (c.op === 'stop') { const st = senders.get(c.target); if (st) st.finish(); say({ id: c.id }); }
  else if (c.op === 'report') say(Object.assign({ id: c.id }, rx));
  else if (c.op === 'reset') { rx = { received: 0, bad: 0, sources: {}, streams: {} }; say({ id: c.id }); }
});
process.stdin.on('end', () => process.exit(0));
sock.bind(cfg.port, cfg.address, () => say({ ready: true, port: sock.address().port }));
`;

/**
 * A party in namespace `ns` with one UDP socket on `address:port` (port 0: any), ready when the
 * promise resolves. Ended at teardown.
 */
export async function startParty(
  t: WithTeardown,
  ns: string,
  address: string,
  port: number,
): Promise<Party> {
  const child = spawn(
    'ip',
    [
      ...['netns', 'exec', ns, 'env', '-u', 'NODE_OPTIONS', process.execPath],
      ...['-e', PARTY_SCRIPT, JSON.stringify({ address, port })],
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const out = collectLines(child.stdout);
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.on('error', () => undefined);
  let ended = false;
  void exitOf(t, child).then(() => (ended = true));
  const parsed = (): Record<string, unknown>[] =>
    out.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
  const ready = await waitFor(
    () => `the party on ${address}:${String(port)} (${err})`,
    () => {
      if (ended) throw new Error(`the party on ${address}:${String(port)} exited: ${err}`);
      return parsed().find((o) => o['ready'] === true);
    },
  );
  let seq = 0;
  const request = (op: Record<string, unknown>, ms = NETNS_DEADLINE_MS) => {
    seq += 1;
    const id = seq;
    child.stdin.write(`${JSON.stringify({ ...op, id })}\n`);
    return {
      id,
      answer: waitFor(
        () => `the party's answer to ${JSON.stringify(op)}`,
        () => {
          if (ended) throw new Error(`the party on ${address} exited: ${err}`);
          return parsed().find((o) => o['id'] === id);
        },
        ms,
      ),
    };
  };
  return {
    ns,
    address,
    port: Number(ready['port']),
    send: (o) => {
      // A batch may take its count times its interval, and then some.
      const ms = NETNS_DEADLINE_MS + o.count * (o.intervalMs ?? 20) * 2;
      const r = request({ op: 'send', ...o }, ms);
      const done = r.answer as Promise<unknown> as Promise<SendResult>;
      return {
        done,
        stop: async () => {
          await request({ op: 'stop', target: r.id }).answer;
          return done;
        },
      };
    },
    report: async () => (await request({ op: 'report' }).answer) as unknown as PartyReport,
    reset: async () => {
      await request({ op: 'reset' }).answer;
    },
    close: async () => {
      child.stdin.end();
      await waitFor('the party to exit', () => (ended ? true : undefined));
    },
  };
}

/** The sequence numbers of SSRC `ssrc` in a report (empty when none arrived). */
export function seqsOf(report: PartyReport, ssrc: number): readonly number[] {
  return report.streams[String(ssrc)]?.seqs ?? [];
}
