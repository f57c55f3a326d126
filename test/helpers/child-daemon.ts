/**
 * The daemon as a real child process (bin/rtpproxy.js), for tests about signals, resource limits,
 * the stdio control socket and what is on disk when the process is gone: spawn it, wait until its
 * UDP control socket answers `V`, read its JSON log lines and what it wrote on stdout. Every wait
 * has a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { udpCommand } from './control.ts';
import { nftArgs } from './kernel-mode.ts';
export { freeUdpPort } from './udp.ts';
import type { Teardown } from './daemon.ts';

const BIN = fileURLToPath(new URL('../../bin/rtpproxy.js', import.meta.url));
const DEADLINE_MS = 15_000;

export interface ChildDaemon {
  /** The process itself (its stdin when piped, its exit code while it runs). */
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the daemon wrote on stdout so far; empty unless {@link SpawnOptions.stdout} says. */
  stdout(): string;
  /** Everything the daemon wrote on stderr so far (its JSON log lines). */
  stderr(): string;
  /** The JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit status, or 128+signal number when a signal ended it. */
  readonly exited: Promise<number>;
  /** Whether the process has ended. */
  readonly gone: () => boolean;
  kill(signal: NodeJS.Signals): void;
}

export interface SpawnOptions {
  /** A command the daemon runs under, e.g. `['prlimit', '--fsize=65536', '--']`. */
  readonly wrapper?: readonly string[];
  /** `'pipe'` to write to the daemon's stdin through `child.stdin`; ignored by default. */
  readonly stdin?: 'ignore' | 'pipe';
  /** Collect stdout, decoded this way (`latin1` keeps every byte); ignored by default. */
  readonly stdout?: 'ignore' | 'utf8' | 'latin1';
}

/**
 * Starts bin/rtpproxy.js with `args`, through env(1) without NODE_OPTIONS (tap's process-info
 * hook adds itself there to every node child and writes into the repository when it exits).
 */
export function spawnDaemon(
  t: Teardown,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildDaemon {
  const command = [
    ...(options.wrapper ?? []),
    'env',
    '-u',
    'NODE_OPTIONS',
    process.execPath,
    BIN,
    // No test creates an nftables table in the host's network namespace (kernel-mode.ts).
    ...nftArgs(),
    ...args,
  ];
  const [file = 'env', ...rest] = command;
  const stdoutEncoding = options.stdout ?? 'ignore';
  const child = spawn(file, rest, {
    stdio: [options.stdin ?? 'ignore', stdoutEncoding === 'ignore' ? 'ignore' : 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let ended = false;
  if (stdoutEncoding !== 'ignore') {
    child.stdout?.setEncoding(stdoutEncoding).on('data', (d: string) => (out += d));
  }
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => {
      ended = true;
      resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
    });
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  if (child.pid === undefined) throw new Error('spawn failed');
  return {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      err
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
    gone: () => ended,
    kill: (s) => child.kill(s),
  };
}

/** Polls `V` on 127.0.0.1:port until the daemon answers; fails early when it exited. */
export async function waitReady(d: ChildDaemon, port: number): Promise<void> {
  const end = performance.now() + DEADLINE_MS;
  for (;;) {
    if (d.gone()) throw new Error(`the daemon exited before it was ready:\n${d.stderr()}`);
    try {
      const reply = await udpCommand(port, '127.0.0.1', 'V', { timeoutMs: 200 });
      if (reply === '20040107\n') return;
    } catch {
      // not yet
    }
    if (performance.now() > end) {
      throw new Error(`timeout: 127.0.0.1:${String(port)} never answered V:\n${d.stderr()}`);
    }
  }
}
