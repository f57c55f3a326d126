/**
 * The running process's lifecycle: the fatal-error handlers, the stop and drain signals, the
 * stop itself (with its deadline), and the pid file. Exit statuses follow the reference: 0 for a
 * clean stop, 1 for a failed one, 128+signal when a second stop signal arrives while stopping.
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Logger } from 'pino';
import type { DaemonHandle } from '../daemon-types.ts';
import { isErrnoException } from './process-io.ts';

/** How long a stop may take before the process gives up and exits 1. */
const SHUTDOWN_DEADLINE_MS = 10_000;
/**
 * Signals that stop at once (the reference's `fatsignal`), but SIGXFSZ: the kernel sends it to a
 * process whose write would pass its file-size limit (`ulimit -f`), and that is one recording's
 * failure, not the relay's. It is ignored, so the write fails with EFBIG and the recorder stops
 * that one file with a log line (docs/recording.md).
 */
const STOP_SIGNALS = [
  'SIGTERM',
  'SIGINT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGXCPU',
  'SIGVTALRM',
  'SIGPROF',
] as const satisfies readonly NodeJS.Signals[];

/**
 * The stop signals to handle: all of them, except SIGPROF when V8's sampling profiler runs
 * (`node --cpu-prof` or `--prof`, for `npm run bench -- --target node --cpu-prof ...`), which
 * interrupts the threads with SIGPROF many times a second.
 */
export function stopSignals(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env['NODE_OPTIONS'] ?? '',
): readonly NodeJS.Signals[] {
  const args = [...execArgv, ...nodeOptions.split(/\s+/)];
  const profiling = args.some((a) => a === '--prof' || a.startsWith('--cpu-prof'));
  return profiling ? STOP_SIGNALS.filter((s) => s !== 'SIGPROF') : STOP_SIGNALS;
}

/**
 * One serving process: installs the handlers, stops the daemon it is given once, and resolves
 * {@link ProcessLifecycle.finished} with the exit status.
 */
export class ProcessLifecycle {
  readonly #logger: Logger;
  readonly #pidFile: string | undefined;
  #pidFileWritten = false;
  #daemon: DaemonHandle | undefined;
  #stopping = false;
  #draining = false;
  #finish: (code: number) => void = () => undefined;
  /** Resolves with the exit status once the process has stopped. */
  readonly finished: Promise<number>;

  /** `pidFile` is written by {@link writePidFile} and removed on every way out. */
  constructor(logger: Logger, pidFile: string | undefined) {
    this.#logger = logger;
    this.#pidFile = pidFile;
    this.finished = new Promise<number>((resolve) => {
      this.#finish = resolve;
    });
  }

  /** True once a stop has begun. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** True once a graceful drain has begun. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * An uncaught exception or unhandled rejection is logged at fatal and exits 1. SIGPIPE is
   * ignored (a write to a closed peer fails instead), and so is SIGXFSZ (see STOP_SIGNALS).
   */
  installFatalHandlers(): void {
    process.on('uncaughtException', (err) => this.#fatalExit(err, 'uncaught exception'));
    process.on('unhandledRejection', (reason) =>
      this.#fatalExit(reason, 'unhandled promise rejection'),
    );
    process.on('SIGPIPE', () => undefined);
    // A write past the file-size limit then fails with EFBIG (see STOP_SIGNALS).
    process.on('SIGXFSZ', () => undefined);
  }

  /** The stop signals stop (a second one exits at once); SIGHUP drains. */
  installSignalHandlers(): void {
    for (const signal of stopSignals()) {
      process.on(signal, () => {
        if (this.#stopping) {
          this.#logger.warn({ signal }, 'second stop signal while stopping, exiting at once');
          this.removePidFile();
          process.exit(128 + osConstants.signals[signal]);
        }
        this.#logger.info({ signal }, 'got signal');
        void this.stop(signal);
      });
    }
    process.on('SIGHUP', () => {
      this.drain('SIGHUP');
    });
  }

  /** The daemon that {@link stop} closes and {@link drain} drains. */
  attach(daemon: DaemonHandle): void {
    this.#daemon = daemon;
  }

  /** Closes the daemon, within SHUTDOWN_DEADLINE_MS, removes the pid file and finishes. */
  async stop(reason: string, failed = false): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const logger = this.#logger;
    logger.info({ reason }, 'stopping');
    const deadline = setTimeout(() => {
      logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed, exiting');
      this.removePidFile();
      this.#finish(1);
    }, SHUTDOWN_DEADLINE_MS);
    let code = failed ? 1 : 0;
    try {
      await this.#daemon?.close();
    } catch (err) {
      code = 1;
      logger.error({ err }, 'error while stopping');
    }
    clearTimeout(deadline);
    this.removePidFile();
    logger.info('stopped');
    this.#finish(code);
  }

  /** A graceful shutdown: new sessions are refused, and the daemon stops after the last one. */
  drain(reason: string): void {
    if (this.#stopping || this.#draining) return;
    this.#draining = true;
    this.#logger.info(
      { reason },
      'graceful shutdown: refusing new sessions, exiting when the last one is gone',
    );
    this.#daemon?.drain();
  }

  /** Writes the pid file, if any; a failure is logged, not fatal. */
  writePidFile(): void {
    if (this.#pidFile === undefined) return;
    try {
      writeFileSync(this.#pidFile, `${String(process.pid)}\n`);
      this.#pidFileWritten = true;
    } catch (err) {
      this.#logger.warn({ err, pidFile: this.#pidFile }, 'cannot write the pid file');
    }
  }

  /** Removes the pid file if this process wrote it (once). */
  removePidFile(): void {
    if (!this.#pidFileWritten || this.#pidFile === undefined) return;
    this.#pidFileWritten = false;
    try {
      unlinkSync(this.#pidFile);
    } catch (err) {
      if (!isErrnoException(err) || err.code !== 'ENOENT') {
        this.#logger.warn({ err, pidFile: this.#pidFile }, 'cannot remove the pid file');
      }
    }
  }

  #fatalExit(err: unknown, msg: string): never {
    this.#logger.fatal({ err }, msg);
    this.removePidFile();
    process.exit(1);
  }
}
