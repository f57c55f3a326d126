/**
 * Helpers the bench scripts share: a free loopback UDP port, a sleep, integer options, and our
 * daemon as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ControlClient } from './control-client.ts';

/** A free UDP port on 127.0.0.1: bind port 0, read it, close (the daemon binds it right after). */
export async function freeUdpPort(): Promise<number> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port: 0, address: '127.0.0.1' }, () => {
      resolve();
    });
  });
  const { port } = sock.address();
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An integer option of a bench script: its default (null: not given) and its bounds. */
export interface IntSpec {
  readonly default: number | null;
  readonly min: number;
  readonly max: number;
}

/** A bench script's command line, parsed. */
export interface BenchArgs<I extends string> {
  readonly ints: Readonly<Record<I, number | null>>;
  /** Every value of each string option, in order (repeatable options have several). */
  readonly strings: Readonly<Record<string, readonly string[]>>;
  /** What follows `--`: arguments for the daemon. */
  readonly daemonArgs: readonly string[];
}

/**
 * Parses a bench script's command line: `--name N` integer options checked against their bounds,
 * `--name VALUE` string options (repeatable), `-h`/`--help` (returns 'help'), then `--` and the
 * daemon's arguments. Unknown options are errors.
 */
export function parseBenchArgs<I extends string>(
  argv: readonly string[],
  ints: Readonly<Record<I, IntSpec>>,
  strings: readonly string[] = [],
): BenchArgs<I> | 'help' {
  const split = argv.indexOf('--');
  const head = split < 0 ? [...argv] : argv.slice(0, split);
  const daemonArgs = split < 0 ? [] : argv.slice(split + 1);
  // `--node-arg --trace-gc`: a value may start with a dash, so it is joined to its option.
  const own: string[] = [];
  for (let i = 0; i < head.length; i += 1) {
    const arg = head[i] ?? '';
    const value = head[i + 1];
    if (arg.startsWith('--') && strings.includes(arg.slice(2)) && value !== undefined) {
      own.push(`${arg}=${value}`);
      i += 1;
    } else own.push(arg);
  }
  const names = Object.keys(ints) as I[];
  const { values } = parseArgs({
    args: own,
    options: {
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(
        [...names, ...strings].map((name) => [name, { type: 'string', multiple: true }] as const),
      ),
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) return 'help';
  const valuesOf = (name: string): string[] => {
    const v = (values as Record<string, unknown>)[name];
    return Array.isArray(v) ? v.map(String) : [];
  };
  const parsed = {} as Record<I, number | null>;
  for (const name of names) {
    const spec = ints[name];
    const given = valuesOf(name).at(-1);
    parsed[name] =
      given === undefined ? spec.default : intOption(`--${name}`, given, spec.min, spec.max);
  }
  return {
    ints: parsed,
    strings: Object.fromEntries(strings.map((name) => [name, valuesOf(name)])),
    daemonArgs,
  };
}

/** An integer option in `min..max`, or an error naming the option. */
function intOption(name: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} needs an integer in ${String(min)}..${String(max)}`);
  }
  return n;
}

/**
 * The arguments every bench script gives the daemon it starts: in the foreground, a UDP control
 * socket on `address`:`controlPort`, media on `address` in `portMin`..`portMax`.
 */
export function localDaemonArgs(
  controlPort: number,
  portMin: number,
  portMax: number,
  address = '127.0.0.1',
): string[] {
  return [
    '-f',
    '-F',
    '-s',
    `udp:${address}:${String(controlPort)}`,
    '-l',
    address,
    '-m',
    String(portMin),
    '-M',
    String(portMax),
  ];
}

/** What a bench script starts its daemon with. */
export interface LocalDaemonOptions {
  readonly portMin: number;
  readonly portMax: number;
  /** `--workers`; null leaves the daemon's default. */
  readonly workers: number | null;
  /** Options for the daemon's node (`--trace-gc`, ...). */
  readonly nodeArgs?: readonly string[];
  /** More daemon arguments, after the bench's own. */
  readonly daemonArgs: readonly string[];
  /** Where the daemon's stdout and stderr go (a file descriptor); discarded by default. */
  readonly logFd?: number;
  /** `-d ERR`: log errors only. */
  readonly quiet?: boolean;
}

/**
 * Our daemon as a child process of a bench script, in its own process group, on 127.0.0.1 with a
 * UDP control socket on a free port and `--nft off` (a bench never creates an nftables table in
 * the host's network namespace). kill() ends the whole group; it is safe to call at any time.
 */
export class LocalDaemon {
  readonly controlPort: number;
  readonly args: readonly string[];
  readonly #child: ChildProcess;

  private constructor(controlPort: number, args: readonly string[], child: ChildProcess) {
    this.controlPort = controlPort;
    this.args = args;
    this.#child = child;
  }

  static async start(root: string, opts: LocalDaemonOptions): Promise<LocalDaemon> {
    const controlPort = await freeUdpPort();
    const args = [
      ...(opts.nodeArgs ?? []),
      path.join(root, 'bin/rtpproxy.js'),
      '--nft',
      'off',
      ...localDaemonArgs(controlPort, opts.portMin, opts.portMax),
      ...(opts.quiet === true ? ['-d', 'ERR'] : []),
      ...(opts.workers === null ? [] : ['--workers', String(opts.workers)]),
      ...opts.daemonArgs,
    ];
    const child = spawn(process.execPath, args, {
      cwd: root,
      stdio: opts.logFd === undefined ? 'ignore' : ['ignore', opts.logFd, opts.logFd],
      detached: true,
    });
    if (child.pid === undefined) throw new Error('the daemon did not start');
    return new LocalDaemon(controlPort, args, child);
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get exited(): boolean {
    return this.#child.exitCode !== null;
  }

  /** Polls `V` (at most 100 tries, 200 ms each) until the daemon answers; throws otherwise. */
  async waitReady(client: ControlClient): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      if (this.exited) throw new Error('the daemon exited');
      try {
        if ((await client.command('V', 0, 200)) === '20040107') return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error('the daemon did not answer V');
  }

  kill(): void {
    const pid = this.#child.pid;
    if (pid === undefined || this.#child.exitCode !== null) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/**
 * Runs a bench script's `main`; `cleanup` (killing its daemon) runs on exit, on error and on
 * SIGINT, SIGTERM and SIGHUP.
 */
export function runScript(name: string, main: () => Promise<void>, cleanup: () => void): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });
  }
  process.once('exit', cleanup);
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    cleanup();
    process.exitCode = 1;
  });
}
