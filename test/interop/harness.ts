/**
 * The interop harness: our daemon (bin/rtpproxy.js), Kamailio with test/interop/kamailio.cfg and
 * SIPp user agents with real RTP, all on loopback, with tcpdump capturing the wire. Every process
 * runs in its own process group and is killed in teardown (and on exit, if the test process dies
 * first); every wait has a deadline.
 *
 * Addresses: the daemon and Kamailio on 127.0.0.1; each test file puts its caller and callee on
 * their own 127.0.0.x addresses, so a capture filtered on those hosts sees only that file's calls.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { udpCommand } from '../helpers/control.ts';
import { nftArgs } from '../helpers/kernel-mode.ts';
import { NgClient } from '../helpers/ng.ts';

const KAMAILIO_CFG = fileURLToPath(new URL('kamailio.cfg', import.meta.url));
/** Kamailio with its rtpengine module, driving the daemon over the ng protocol. */
const KAMAILIO_NG_CFG = fileURLToPath(new URL('kamailio-ng.cfg', import.meta.url));
const SCENARIO_DIR = fileURLToPath(new URL('scenarios/', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/rtpproxy.js', import.meta.url));

/** The part of tap's Test the harness uses. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** Rejects with `timeout after N ms: what` unless `promise` settles first. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`timeout after ${String(ms)} ms: ${what}`));
      }, ms);
    }),
  ]).finally(() => {
    clearTimeout(timer);
  });
}

// ---------------------------------------------------------------------------------------------
// Tools

/** The external programs the suite drives. */
const TOOLS = ['kamailio', 'sipp', 'tcpdump'] as const;

/** The program's path: from PATH, or from the sbin directories a non-login PATH may lack. */
function findTool(cmd: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const path = found.status === 0 ? found.stdout.trim() : '';
  if (path !== '') return path;
  return ['/usr/sbin', '/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']
    .map((dir) => join(dir, cmd))
    .find((file) => {
      try {
        accessSync(file, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

const tool = (cmd: string): string => findTool(cmd) ?? cmd;

/**
 * Why the suite cannot run here, or undefined when it can. `fatal` reasons must fail the run (CI
 * runs as root and installs the tools with .ci/run); the others are printed as a skip.
 */
export function unavailable(): { readonly reason: string; readonly fatal: boolean } | undefined {
  const missing = TOOLS.filter((name) => findTool(name) === undefined);
  const root = process.getuid?.() === 0;
  if (missing.length > 0) {
    const how = 'apt-get install kamailio sip-tester tcpdump (bash .ci/run does it when root)';
    return root
      ? { reason: `missing ${missing.join(', ')}: install with ${how}`, fatal: true }
      : {
          reason: `missing ${missing.join(', ')} and not root, so cannot install: ${how}`,
          fatal: false,
        };
  }
  if (!root) {
    return {
      reason: 'not root: the suite captures loopback traffic with tcpdump (CI runs it as root)',
      fatal: false,
    };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Processes

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One external process in its own process group, its stdout and stderr kept as text. */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #output = '';
  #exit: Exit | undefined;

  constructor(t: Teardown, name: string, cmd: string, args: readonly string[], cwd?: string) {
    this.name = name;
    this.child = spawn(cmd, args, {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);
    const keep = (data: string): void => {
      // Bounded: a runaway log must not eat the test process's memory.
      if (this.#output.length < 8_000_000) this.#output += data;
    };
    this.child.stdout?.setEncoding('utf8').on('data', keep);
    this.child.stderr?.setEncoding('utf8').on('data', keep);
    this.exited = new Promise<Exit>((resolve) => {
      const done = (exit: Exit): void => {
        live.delete(this.child);
        this.#exit = exit;
        // Whatever the leader left behind in its group goes with it.
        killGroup(this.child, 'SIGKILL');
        resolve(exit);
      };
      this.child.on('exit', (code, signal) => {
        done({ code, signal });
      });
      this.child.on('error', (err) => {
        keep(`spawn error: ${err.message}\n`);
        done({ code: -1, signal: null });
      });
    });
    t.teardown(() => this.stop());
  }

  output(): string {
    return this.#output;
  }

  running(): boolean {
    return this.#exit === undefined;
  }

  get exit(): Exit | undefined {
    return this.#exit;
  }

  /** Sends `signal` to the group and returns at once (SIGHUP, say). */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit === undefined) killGroup(this.child, signal);
  }

  /** Sends `signal` to the group, then SIGKILL after `graceMs`; resolves once the leader exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<Exit> {
    if (this.#exit !== undefined) return this.#exit;
    killGroup(this.child, signal);
    try {
      return await deadline(this.exited, graceMs, `${this.name} to exit on ${signal}`);
    } catch {
      killGroup(this.child, 'SIGKILL');
      return deadline(this.exited, 5000, `${this.name} to exit on SIGKILL`);
    }
  }

  /** The last `n` lines of the output, for diagnostics. */
  tail(n = 40): string {
    return this.#output.split('\n').slice(-n).join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Ports

/** A free UDP port on `host` (bound on port 0, then released). */
export async function freeUdpPort(host: string): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, resolve);
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** `HEXADDR:HEXPORT` entries of the UDP sockets bound in this network namespace. */
function boundUdp(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    if (local !== undefined) out.add(local);
  }
  return out;
}

const hexAddr = (host: string): string =>
  host
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
const hexPort = (port: number): string => port.toString(16).padStart(4, '0').toUpperCase();

/** True when some socket is bound to `host:port` (or the wildcard address with that port). */
function udpBound(host: string, port: number, table = boundUdp()): boolean {
  return table.has(`${hexAddr(host)}:${hexPort(port)}`) || table.has(`00000000:${hexPort(port)}`);
}

/**
 * An even port P on `host` with P..P+count-1 all free, picked at random in [lo, hi). Below the
 * kernel's ephemeral range (32768 and up), so that no client socket of another test takes it
 * between the check and SIPp's bind; random, so that two runs of the suite at once (two
 * developers, say) rarely meet.
 */
export function freePortBlock(host: string, count: number, lo = 20000, hi = 32000): number {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const base = lo + 2 * Math.floor((Math.random() * (hi - lo - count)) / 2);
    const table = boundUdp();
    let free = true;
    for (let p = base; p < base + count && free; p += 1) free = !udpBound(host, p, table);
    if (free) return base;
  }
  throw new Error(`no ${String(count)} free UDP ports on ${host} in ${String(lo)}..${String(hi)}`);
}

/** Waits until `proc` has bound `host:port` (UDP). */
export async function waitBound(
  proc: Proc,
  host: string,
  port: number,
  ms = 10_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!udpBound(host, port)) {
    if (!proc.running()) {
      throw new Error(
        `${proc.name} exited before binding ${host}:${String(port)}:\n${proc.tail()}`,
      );
    }
    if (Date.now() > end) {
      throw new Error(
        `timeout after ${String(ms)} ms: ${proc.name} to bind ${host}:${String(port)}`,
      );
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// The daemon

export interface DaemonOptions {
  readonly controlPort: number;
  /** Also listen on this unix control socket. */
  readonly unixSocket?: string;
  /** Also listen for the ng protocol on this UDP port (`-s ng:udp:127.0.0.1:PORT`). */
  readonly ngPort?: number;
  /** `-l` value: `127.0.0.1`, or `A/B` for bridge mode. */
  readonly listen: string;
  readonly portMin: number;
  readonly portMax: number;
  readonly recordDir: string;
  /** `-T`: idle timeout of a call, in seconds (the daemon's default otherwise). */
  readonly ttl?: number;
}

/**
 * What the rig needs of the relay under test: ours (RtpproxyDaemon) or the reference rtpengine
 * (RtpengineDaemon), so that the same calls and the same wire checks run against both.
 */
export interface Relay {
  readonly proc: Proc;
  /** `controlPort` is the port Kamailio's commands go to (rtpengine: its ng port). */
  readonly options: DaemonOptions;
  /** Calls (ours: sessions) the relay holds now. */
  activeSessions(): Promise<number>;
  /** Sessions created and packets relayed so far. */
  figures(): Promise<{ created: number; relayed: number }>;
  /** Polls until no session is left; resolves with the last count seen. */
  drained(ms?: number): Promise<number>;
  stop(): Promise<Exit>;
}

/** Polls `count` until it is 0 or `ms` ran out; resolves with the last value. */
async function pollToZero(count: () => Promise<number>, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let active = await count();
  while (active !== 0 && Date.now() < end) {
    await sleep(100);
    active = await count();
  }
  return active;
}

export class RtpproxyDaemon implements Relay {
  readonly proc: Proc;
  readonly options: DaemonOptions;

  private constructor(proc: Proc, options: DaemonOptions) {
    this.proc = proc;
    this.options = options;
  }

  /** The command line of the brief: `-f -F -s udp:127.0.0.1:PORT -l ... -m MIN -M MAX -d INFO`. */
  static async start(t: Teardown, name: string, options: DaemonOptions): Promise<RtpproxyDaemon> {
    // --nft off: no test creates an nftables table in the host's network namespace; --kernel on
    // in the kernel pass (test/helpers/kernel-mode.ts).
    const args = [
      BIN,
      '-f',
      '-F',
      ...nftArgs(),
      '-s',
      `udp:127.0.0.1:${String(options.controlPort)}`,
    ];
    if (options.unixSocket !== undefined) args.push('-s', `unix:${options.unixSocket}`);
    if (options.ngPort !== undefined) args.push('-s', `ng:udp:127.0.0.1:${String(options.ngPort)}`);
    args.push('-l', options.listen, '-m', String(options.portMin), '-M', String(options.portMax));
    if (options.ttl !== undefined) args.push('-T', String(options.ttl));
    args.push('-d', 'INFO', '-p', '/dev/null', '-r', options.recordDir, '-P');
    const proc = new Proc(t, name, process.execPath, args);
    const daemon = new RtpproxyDaemon(proc, options);
    const end = Date.now() + 20_000;
    for (;;) {
      if (!proc.running()) throw new Error(`${name} exited at start:\n${proc.tail()}`);
      try {
        if ((await daemon.command('V', 300)) === '20040107') return daemon;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > end) throw new Error(`timeout: ${name} never answered V:\n${proc.tail()}`);
      await sleep(100);
    }
  }

  /** One command over the UDP control socket; the reply without cookie and trailing LF. */
  async command(line: string, timeoutMs = 3000): Promise<string> {
    const reply = await udpCommand(this.options.controlPort, '127.0.0.1', line, { timeoutMs });
    return reply.replace(/\n$/, '');
  }

  /** `active sessions:` from `I`. */
  async activeSessions(): Promise<number> {
    const reply = await this.command('I');
    const m = /active sessions: (\d+)/.exec(reply);
    if (m?.[1] === undefined) throw new Error(`I answered ${JSON.stringify(reply)}`);
    return Number(m[1]);
  }

  /** Global counters from `G NAME ...`. */
  async counters<K extends string>(...names: K[]): Promise<Record<K, number>> {
    const reply = await this.command(`G ${names.join(' ')}`);
    const values = reply.split(' ').map(Number);
    if (values.length !== names.length || values.some((v) => !Number.isFinite(v))) {
      throw new Error(`G answered ${JSON.stringify(reply)}`);
    }
    const out = {} as Record<K, number>;
    names.forEach((name, i) => {
      out[name] = values[i] ?? NaN;
    });
    return out;
  }

  /** `G nsess_created npkts_relayed`. */
  async figures(): Promise<{ created: number; relayed: number }> {
    const g = await this.counters('nsess_created', 'npkts_relayed');
    return { created: g.nsess_created, relayed: g.npkts_relayed };
  }

  /** Polls `I` until no session is left; resolves with the last count seen. */
  drained(ms = 5000): Promise<number> {
    return pollToZero(() => this.activeSessions(), ms);
  }

  stop(): Promise<Exit> {
    return this.proc.stop('SIGTERM', 5000);
  }
}

// ---------------------------------------------------------------------------------------------
// The reference: rtpengine

/**
 * Debian's rtpengine (`rtpengine-daemon`) in userspace (`--table=-1`, no kernel module), on the
 * ng port `options.controlPort`, with no configuration file and no delete delay, so that a call
 * ends when Kamailio deletes it, as ours does. Its figures come over ng: `list` (calls now) and
 * `statistics` (`managedsessions`, `relayedpackets`).
 */
export class RtpengineDaemon implements Relay {
  readonly proc: Proc;
  readonly options: DaemonOptions;
  readonly #ng: NgClient;

  private constructor(proc: Proc, options: DaemonOptions, ng: NgClient) {
    this.proc = proc;
    this.options = options;
    this.#ng = ng;
  }

  /** The binary, or undefined when rtpengine-daemon is not installed. */
  static binary(): string | undefined {
    return findTool('rtpengine');
  }

  static async start(t: Teardown, name: string, options: DaemonOptions): Promise<RtpengineDaemon> {
    const bin = RtpengineDaemon.binary();
    if (bin === undefined) {
      throw new Error('rtpengine is not installed (apt-get install rtpengine-daemon)');
    }
    const args = [
      '--config-file=none',
      '--foreground',
      '--log-stderr',
      '--log-level=5',
      '--table=-1',
      `--listen-ng=127.0.0.1:${String(options.controlPort)}`,
      `--port-min=${String(options.portMin)}`,
      `--port-max=${String(options.portMax)}`,
      '--delete-delay=0',
      `--recording-dir=${options.recordDir}`,
    ];
    // `-l A/B` becomes two named interfaces, as ng's `direction` names them (docs/ng.md).
    const [internal, external] = options.listen.split('/');
    if (external === undefined) args.push(`--interface=${String(internal)}`);
    else args.push(`--interface=internal/${String(internal)}`, `--interface=external/${external}`);
    const proc = new Proc(t, name, bin, args);
    const ng = await NgClient.open(t, options.controlPort);
    const daemon = new RtpengineDaemon(proc, options, ng);
    const end = Date.now() + 20_000;
    for (;;) {
      if (!proc.running()) throw new Error(`${name} exited at start:\n${proc.tail()}`);
      try {
        if ((await ng.request({ command: 'ping' }, NgClient.cookie(), 300))['result'] === 'pong') {
          return daemon;
        }
      } catch {
        // Not listening yet.
      }
      if (Date.now() > end) {
        throw new Error(`timeout: ${name} never answered ping:\n${proc.tail()}`);
      }
      await sleep(100);
    }
  }

  async activeSessions(): Promise<number> {
    const reply = await this.#ng.request({ command: 'list', limit: 1000 });
    const calls = reply['calls'];
    if (!Array.isArray(calls)) throw new Error(`list answered ${JSON.stringify(reply)}`);
    return calls.length;
  }

  async figures(): Promise<{ created: number; relayed: number }> {
    const reply = await this.#ng.request({ command: 'statistics' });
    const stats = reply['statistics'];
    const total =
      typeof stats === 'object' && !Array.isArray(stats) ? stats['totalstatistics'] : undefined;
    const get = (key: string): number => {
      const v = typeof total === 'object' && !Array.isArray(total) ? total[key] : undefined;
      if (typeof v !== 'number') {
        throw new Error(`statistics without ${key}: ${JSON.stringify(reply)}`);
      }
      return v;
    };
    return { created: get('managedsessions'), relayed: get('relayedpackets') };
  }

  drained(ms = 5000): Promise<number> {
    return pollToZero(() => this.activeSessions(), ms);
  }

  stop(): Promise<Exit> {
    return this.proc.stop('SIGTERM', 5000);
  }
}

// ---------------------------------------------------------------------------------------------
// Kamailio

export interface KamailioOptions {
  readonly port: number;
  /**
   * The rtpproxy_sock of set 0: `udp:127.0.0.1:PORT` or `unix:PATH`, or several daemons with
   * their weights (`udp:127.0.0.1:P1=2 udp:127.0.0.1:P2=1`); the ng port with `ng`.
   */
  readonly rtpproxySock: string;
  /** rtpproxy_disable_tout and rtpproxy_retr (default: the module's, 60 s and 5). */
  readonly disableTimeout?: number;
  readonly retries?: number;
  /** Drive the daemon with the rtpengine module over the ng protocol (kamailio-ng.cfg). */
  readonly ng?: boolean;
  /** Set 1 (bridge mode), `udp:HOST:PORT`. */
  readonly bridgeSock?: string;
  readonly prompt?: string;
  readonly workDir: string;
}

const KAMAILIO_PROBLEM = /^\s*\d+\(\d+\) (ERROR|CRITICAL|ALERT|BUG|EMERGENCY):.*$/gm;

export class Kamailio {
  readonly proc: Proc;
  readonly port: number;

  private constructor(proc: Proc, port: number) {
    this.proc = proc;
    this.port = port;
  }

  static async start(t: Teardown, name: string, options: KamailioOptions): Promise<Kamailio> {
    mkdirSync(options.workDir, { recursive: true });
    const cfg = options.ng === true ? KAMAILIO_NG_CFG : KAMAILIO_CFG;
    const args = ['-DD', '-E', '-f', cfg, '-A', `RTPPROXY_SOCK="${options.rtpproxySock}"`];
    if (options.bridgeSock !== undefined) {
      args.push('-A', `BRIDGE_SOCK="1 == ${options.bridgeSock}"`);
    }
    if (options.prompt !== undefined) args.push('-A', `PROMPT="${options.prompt}"`);
    if (options.disableTimeout !== undefined) {
      args.push('-A', `RTPPROXY_DISABLE_TOUT=${String(options.disableTimeout)}`);
    }
    if (options.retries !== undefined) args.push('-A', `RTPPROXY_RETR=${String(options.retries)}`);
    args.push('-l', `udp:127.0.0.1:${String(options.port)}`);
    args.push(
      '-w',
      options.workDir,
      '-Y',
      options.workDir,
      '-P',
      join(options.workDir, 'kamailio.pid'),
    );
    args.push('-m', '64', '-M', '16');
    const proc = new Proc(t, name, tool('kamailio'), args);
    const k = new Kamailio(proc, options.port);
    const end = Date.now() + 20_000;
    for (let n = 0; ; n += 1) {
      if (!proc.running()) throw new Error(`${name} exited at start:\n${proc.tail()}`);
      if (await k.#options(n)) break;
      if (Date.now() > end) {
        throw new Error(`timeout: ${name} never answered OPTIONS:\n${proc.tail()}`);
      }
      await sleep(200);
    }
    // Every worker has tested the rtpproxy (V, VF) in its child_init before reading SIP; a few
    // more OPTIONS make it likely that all of them are up before the first call.
    for (let n = 1000; n < 1008; n += 1) await k.#options(n);
    return k;
  }

  /** Sends one OPTIONS to the proxy itself; true on a 200. */
  async #options(n: number): Promise<boolean> {
    const socket = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, '127.0.0.1', resolve);
      });
      const local = socket.address().port;
      const got = new Promise<string>((resolve) => {
        socket.on('message', (m) => {
          resolve(m.toString('latin1'));
        });
      });
      const target = `127.0.0.1:${String(this.port)}`;
      const msg = [
        `OPTIONS sip:${target} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${String(local)};branch=z9hG4bK-probe-${String(process.pid)}-${String(n)}`,
        `From: <sip:probe@127.0.0.1>;tag=probe${String(n)}`,
        `To: <sip:${target}>`,
        `Call-ID: probe-${String(process.pid)}-${String(n)}@127.0.0.1`,
        'CSeq: 1 OPTIONS',
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      socket.send(msg, this.port, '127.0.0.1');
      const reply = await deadline(got, 500, 'OPTIONS reply');
      return reply.startsWith('SIP/2.0 200');
    } catch {
      return false;
    } finally {
      socket.close();
    }
  }

  /** Position in the log, to look for problems logged after it. */
  mark(): number {
    return this.proc.output().length;
  }

  /** ERROR (and worse) lines logged since `mark`. */
  problemsSince(mark = 0): string[] {
    return this.proc.output().slice(mark).match(KAMAILIO_PROBLEM) ?? [];
  }

  /** Lines since `mark` that match `re`. */
  linesSince(mark: number, re: RegExp): string[] {
    return this.proc
      .output()
      .slice(mark)
      .split('\n')
      .filter((line) => re.test(line));
  }

  stop(): Promise<Exit> {
    return this.proc.stop('SIGTERM', 5000);
  }
}

// ---------------------------------------------------------------------------------------------
// SIPp

export interface SippOptions {
  readonly name: string;
  /** Scenario file name in scenarios/ without `.xml`. */
  readonly scenario: string;
  readonly cwd: string;
  readonly ip: string;
  readonly port: number;
  /** First RTP port of the rtp_stream sockets (one even port per call). */
  readonly mediaPort: number;
  readonly calls: number;
  /** Client mode: Kamailio's address, the service (Request-URI user) and the callee. */
  readonly client?: {
    readonly proxy: string;
    readonly service: string;
    readonly uas: string;
    readonly holdMs: number;
    readonly rate: number;
  };
  readonly timeoutS: number;
}

export function startSipp(t: Teardown, o: SippOptions): Proc {
  const args: string[] = [];
  if (o.client !== undefined) args.push(o.client.proxy);
  args.push('-sf', join(SCENARIO_DIR, `${o.scenario}.xml`));
  args.push('-i', o.ip, '-p', String(o.port), '-mi', o.ip, '-mp', String(o.mediaPort));
  args.push(
    '-m',
    String(o.calls),
    '-nostdin',
    '-timeout',
    `${String(o.timeoutS)}s`,
    '-timeout_error',
  );
  args.push('-trace_err', '-error_file', join(o.cwd, `${o.name}.errors.log`));
  args.push('-trace_msg', '-message_file', join(o.cwd, `${o.name}.messages.log`));
  if (o.client !== undefined) {
    args.push('-s', o.client.service, '-key', 'uas', o.client.uas);
    args.push('-d', String(o.client.holdMs), '-r', String(o.client.rate), '-rp', '1000');
    args.push('-l', String(o.calls));
  }
  return new Proc(t, o.name, tool('sipp'), args, o.cwd);
}

// ---------------------------------------------------------------------------------------------
// Capture

export interface Packet {
  /** Milliseconds (epoch). */
  readonly ts: number;
  readonly src: string;
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
  readonly payload: Buffer;
}

export class Capture {
  readonly proc: Proc;
  readonly file: string;
  readonly #markerHost: string;

  private constructor(proc: Proc, file: string, markerHost: string) {
    this.proc = proc;
    this.file = file;
    this.#markerHost = markerHost;
  }

  /**
   * Captures loopback UDP matching `filter` into `file`. `markerHost` must match the filter: the
   * marker datagram that `stop()` sends there shows that everything before it reached the file.
   */
  static async start(
    t: Teardown,
    name: string,
    file: string,
    filter: string,
    markerHost: string,
  ): Promise<Capture> {
    const args = ['-i', 'lo', '-n', '-U', '--immediate-mode', '-B', '16384', '-w', file];
    if (process.getuid?.() === 0) args.push('-Z', 'root');
    args.push(filter);
    const proc = new Proc(t, name, tool('tcpdump'), args);
    const end = Date.now() + 10_000;
    while (!proc.output().includes('listening on')) {
      if (!proc.running()) throw new Error(`tcpdump exited at start:\n${proc.tail()}`);
      if (Date.now() > end) {
        throw new Error(`timeout: tcpdump never started listening:\n${proc.tail()}`);
      }
      await sleep(20);
    }
    return new Capture(proc, file, markerHost);
  }

  /**
   * Sends a marker datagram, waits until tcpdump has written it (so every packet before it is in
   * the file), stops tcpdump and reads back every IPv4/UDP packet.
   */
  async stop(): Promise<{ packets: Packet[]; dropped: number; complete: boolean }> {
    const marker = Buffer.from(
      `rtpproxy-interop-marker-${String(process.pid)}-${String(Date.now())}`,
    );
    const socket = dgram.createSocket('udp4');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    let complete = false;
    const end = Date.now() + 5000;
    while (!complete && Date.now() < end) {
      socket.send(marker, 9, this.#markerHost);
      await sleep(100);
      try {
        complete = readFileSync(this.file).includes(marker);
      } catch {
        complete = false;
      }
    }
    socket.close();
    await this.proc.stop('SIGINT', 5000);
    const m = /(\d+) packets? dropped by kernel/.exec(this.proc.output());
    const packets = readPcap(readFileSync(this.file)).filter((p) => !p.payload.equals(marker));
    return { packets, dropped: Number(m?.[1] ?? 0), complete };
  }
}

/** IPv4/UDP packets of a pcap file (either byte order, micro- or nanosecond, Ethernet/SLL/raw). */
export function readPcap(buf: Buffer): Packet[] {
  if (buf.length < 24) return [];
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = buf.readUInt32BE(0) === 0xa1b23c4d;
  } else {
    throw new Error('not a pcap file');
  }
  const u32 = (at: number): number => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const linktype = u32(20) & 0xffff;
  const out: Packet[] = [];
  for (let at = 24; at + 16 <= buf.length;) {
    const sec = u32(at);
    const frac = u32(at + 4);
    const incl = u32(at + 8);
    const frame = buf.subarray(at + 16, at + 16 + incl);
    at += 16 + incl;
    let ip: Buffer | undefined;
    if (linktype === 1 && frame.length >= 14 && frame.readUInt16BE(12) === 0x0800) {
      ip = frame.subarray(14);
    } else if (linktype === 113 && frame.length >= 16 && frame.readUInt16BE(14) === 0x0800) {
      ip = frame.subarray(16);
    } else if (linktype === 276 && frame.length >= 20 && frame.readUInt16BE(0) === 0x0800) {
      ip = frame.subarray(20);
    } else if (
      (linktype === 101 || linktype === 228) &&
      frame.length > 0 &&
      frame[0] !== undefined &&
      frame[0] >> 4 === 4
    ) {
      ip = frame;
    }
    if (ip === undefined || ip.length < 28 || (ip[0] ?? 0) >> 4 !== 4 || ip[9] !== 17) continue;
    const ihl = ((ip[0] ?? 0) & 0x0f) * 4;
    const udp = ip.subarray(ihl);
    if (udp.length < 8) continue;
    const udpLen = udp.readUInt16BE(4);
    out.push({
      ts: sec * 1000 + (nano ? frac / 1e6 : frac / 1e3),
      src: Array.from(ip.subarray(12, 16)).join('.'),
      dst: Array.from(ip.subarray(16, 20)).join('.'),
      sport: udp.readUInt16BE(0),
      dport: udp.readUInt16BE(2),
      payload: udp.subarray(8, Math.max(8, Math.min(udp.length, udpLen))),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What the wire says

export interface Sdp {
  readonly address: string;
  readonly port: number;
}

export interface SipMessage {
  readonly ts: number;
  /** `ip:port` */
  readonly from: string;
  readonly to: string;
  readonly method?: string;
  readonly status?: number;
  readonly callId: string;
  readonly cseqMethod: string;
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: string;
  readonly sdp?: Sdp;
  /** `INVITE` for a request, `200/INVITE` for a response. */
  readonly label: string;
}

const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  v: 'via',
  f: 'from',
  t: 'to',
  m: 'contact',
  c: 'content-type',
  l: 'content-length',
};

/** The audio `c=`/`m=` of an SDP body (media-level `c=` wins over session-level). */
function parseSdp(body: string): Sdp | undefined {
  let session: string | undefined;
  let media: string | undefined;
  let port: number | undefined;
  let inAudio = false;
  for (const raw of body.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      inAudio = line.startsWith('m=audio ');
      if (inAudio && port === undefined) port = Number(line.split(' ')[1]);
    } else if (line.startsWith('c=')) {
      const address = line.split(' ')[2];
      if (port === undefined && !inAudio) session = address;
      else if (inAudio && media === undefined) media = address;
    }
  }
  const address = media ?? session;
  if (address === undefined || port === undefined || !Number.isFinite(port)) return undefined;
  return { address, port };
}

export function parseSip(p: Packet): SipMessage | undefined {
  const text = p.payload.toString('latin1');
  const first = /^(?:SIP\/2\.0 (\d{3}) [^\r\n]*|([A-Z]+) sip:[^\r\n]* SIP\/2\.0)\r?\n/.exec(text);
  if (first === null) return undefined;
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 4);
  const headers = new Map<string, string[]>();
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    let name = line.slice(0, colon).trim().toLowerCase();
    name = COMPACT[name] ?? name;
    const list = headers.get(name) ?? [];
    list.push(line.slice(colon + 1).trim());
    headers.set(name, list);
  }
  const cseq = headers.get('cseq')?.[0]?.split(/\s+/)[1] ?? '';
  const status = first[1] === undefined ? undefined : Number(first[1]);
  const method = first[2];
  const sdp = /application\/sdp/i.test(headers.get('content-type')?.[0] ?? '')
    ? parseSdp(body)
    : undefined;
  return {
    ts: p.ts,
    from: `${p.src}:${String(p.sport)}`,
    to: `${p.dst}:${String(p.dport)}`,
    ...(method === undefined ? {} : { method }),
    ...(status === undefined ? {} : { status }),
    callId: headers.get('call-id')?.[0] ?? '',
    cseqMethod: cseq,
    headers,
    body,
    ...(sdp === undefined ? {} : { sdp }),
    label: method ?? `${String(status)}/${cseq}`,
  };
}

/** True for an RTP version 2 packet (not RTCP). */
export function isRtp(payload: Buffer): boolean {
  if (payload.length < 12 || (payload[0] ?? 0) >> 6 !== 2) return false;
  const pt = (payload[1] ?? 0) & 0x7f;
  return pt < 64 || pt > 95;
}

/** `ssrc/seq` of an RTP packet: what identifies it on both sides of the relay. */
export function rtpId(payload: Buffer): string {
  return `${String(payload.readUInt32BE(8))}/${String(payload.readUInt16BE(2))}`;
}

/** The test prompt (playback, issue 5): one second of PCMU, every byte this value. */
export const PROMPT_BYTE = 0x2a;
export const PROMPT_BYTES = 8000;

/** Writes `n` bytes of a PCMU-like pattern (never 0x00), for SIPp's rtp_stream. */
export function writeTone(file: string, bytes = 8000): void {
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 1) {
    buf[i] = 0x80 + Math.round(60 * Math.sin((2 * Math.PI * 400 * i) / 8000)) + 1;
  }
  writeFileSync(file, buf);
}

/** A fresh directory under the system temp dir. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
