/**
 * Starts the real daemon in-process from a command line, the way an operator would write it, with
 * a control socket on a free loopback port. Teardown closes it and every socket it owned.
 */
import pino from 'pino';
import { buildConfig, isConfigErrors } from '../../src/cli/config.ts';
import { parseOptions } from '../../src/cli/options.ts';
import { Daemon } from '../../src/daemon.ts';
import { UdpControlClient } from './control.ts';
import { nftArgs } from './kernel-mode.ts';

/** The part of tap's Test these helpers use. */
export interface Teardown {
  teardown(fn: () => unknown): void;
  fail(message: string): unknown;
}

/** One JSON log line of the daemon, as tests read it. */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/**
 * The two media layouts the integration suite runs its core files in: one media worker (the
 * default of a host with two cores, and of startDaemon) and media on the main thread (the
 * default of a one-core host).
 */
export const LAYOUTS = ['1', '0'] as const;

export interface StartOptions {
  /** Collect the daemon's log lines (level info and up) in `logs`. */
  readonly captureLogs?: boolean;
  /**
   * Start as the program does, serving before the media workers run (Daemon.start); by default
   * they run before the first command, so that no test's timing includes their start.
   */
  readonly deferMedia?: boolean;
}

export interface RunningDaemon {
  readonly daemon: Daemon;
  /** Log lines, when started with `captureLogs`; empty otherwise. */
  readonly logs: readonly LogLine[];
  readonly controlPort: number;
  /** One command over the UDP control socket; resolves with the reply text (LF included). */
  command(line: string): Promise<string>;
  /** The port of a U/L reply (`PORT ADDR` or `PORT`); throws on anything else. */
  port(line: string): Promise<number>;
  close(): Promise<void>;
  drained: Promise<void>;
}

/**
 * Starts a daemon with `-f -F -s udp:127.0.0.1:0 --workers 1 --nft off` plus `args` (for example
 * `['-l', '127.0.0.1', '-m', '41000', '-M', '41099', '-b']`).
 */
export async function startDaemon(
  t: Teardown,
  args: readonly string[],
  options: StartOptions = {},
): Promise<RunningDaemon> {
  // One media worker unless the test asks otherwise: the same daemon on every test host, whatever
  // its number of cores (test/integration/workers.test.ts covers 0 and several).
  const workers = args.some((a) => a === '--workers' || a.startsWith('--workers='))
    ? []
    : ['--workers', '1'];
  // --nft off: no test creates an nftables table in the host's network namespace; the TOS test
  // (test/integration/tos.test.ts) runs daemons with it inside network namespaces of its own, and
  // the kernel pass (scripts/test-kernel.sh) runs every daemon with --kernel on inside one.
  const nft = args.includes('--nft') || args.includes('--kernel') ? [] : nftArgs();
  const parsed = parseOptions([
    '-f',
    '-F',
    '-s',
    'udp:127.0.0.1:0',
    '-d',
    'CRIT',
    ...workers,
    ...nft,
    ...args,
  ]);
  if (!parsed.ok) throw new Error(`bad test arguments: ${parsed.message}`);
  const config = buildConfig(parsed.options);
  if (isConfigErrors(config)) throw new Error(`bad test config: ${JSON.stringify(config)}`);
  let onDrained: () => void = () => undefined;
  const drained = new Promise<void>((resolve) => {
    onDrained = resolve;
  });
  const logs: LogLine[] = [];
  const logger =
    options.captureLogs === true
      ? pino(
          { level: 'info' },
          { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
        )
      : pino({ level: 'silent' });
  const daemon: Daemon = new Daemon(config, logger, {
    onDrained: () => onDrained(),
    onStdioEof: () => undefined,
    onDrainRequested: () => {
      daemon.drain();
    },
    onFatal: (err) => {
      t.fail(`daemon: ${err.message}`);
    },
  });
  await daemon.start({ waitForMedia: options.deferMedia !== true });
  const controlPort = daemon.controlPort(0) ?? 0;
  const client = await UdpControlClient.open(controlPort, '127.0.0.1');
  const close = async (): Promise<void> => {
    await client.close();
    await daemon.close();
  };
  t.teardown(close);
  return {
    daemon,
    logs,
    controlPort,
    command: (line) => client.command(line),
    port: async (line) => {
      const reply = await client.command(line);
      const m = /^([0-9]+)( |\n)/.exec(reply);
      if (m?.[1] === undefined) throw new Error(`${line} -> ${JSON.stringify(reply)}`);
      return Number(m[1]);
    },
    close,
    drained,
  };
}
