/**
 * The vocabulary of command-line validation shared by the config-* files: the reference's
 * defaults, the error shape and how a check reports one.
 */
import { availableParallelism } from 'node:os';

/** One start-up error: the flag it is about and what is wrong, in an operator's words. */
export interface ConfigError {
  readonly flag: string;
  readonly message: string;
}

/** Reference defaults (`src/rtpp_defines.h`, `src/main.c`). */
export const DEFAULTS = {
  controlSocket: 'unix:/var/run/rtpproxy.sock',
  pidFile: '/var/run/rtpproxy.pid',
  portMin: 35000,
  portMax: 65000,
  ttl: 60,
  tos: 184,
  /** Ours: the reference sets 0755 only with a group and leaves the umask's mode otherwise. */
  socketMode: 0o660,
  logFacility: 'LOG_DAEMON',
  /** At most this many `-l`/`-6` arguments in total. */
  maxAddresses: 16,
} as const;

/** Upper bound of `--workers`. */
export const MAX_WORKERS = 64;

/** Media workers by default at most (each is a V8 isolate of its own: memory, start-up time). */
const MAX_DEFAULT_WORKERS = 8;

/**
 * Media workers when `--workers` is not given: one per core but the one the main thread (control
 * sockets, session manager) keeps, at most {@link MAX_DEFAULT_WORKERS}; none on a one-core host,
 * where a thread would only add hops.
 */
export function defaultWorkers(cores: number = availableParallelism()): number {
  return Math.max(0, Math.min(cores - 1, MAX_DEFAULT_WORKERS));
}

/** Records one error and returns undefined, so a check can `return fail(...)`. */
export type Fail = (flag: string, message: string) => undefined;
