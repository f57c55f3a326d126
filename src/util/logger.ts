import { pino, type Logger } from 'pino';

/** Pino level names the daemon logs at. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/**
 * The root logger: JSON lines on `fd` (stderr by default, because stdout carries the replies of a
 * `stdio:` control socket), written synchronously so that nothing is lost when the process exits
 * right after logging (fatal errors, signals). The only base field is `pid`.
 */
export function createLogger(level: LogLevel, fd = 2): Logger {
  return pino(
    {
      level,
      // pino's default base is { pid, hostname }; keep pid only (and leave `process` to cli/).
      formatters: { bindings: (bindings) => ({ pid: bindings['pid'] as unknown }) },
    },
    pino.destination({ fd, sync: true }),
  );
}

/** Injected time source of {@link makeRateLimiter}, in milliseconds (monotonic preferred). */
export type MillisecondClock = () => number;

/** Keys remembered at most; the oldest are forgotten first. */
const RATE_LIMITER_MAX_KEYS = 1024;

/**
 * "Log at most once per key per window" (rtpengine's LOG_FLAG_LIMIT). The returned function answers
 * true when a line for `key` may be logged now, and then mutes the key for `windowMs`. The map of
 * keys is bounded: when full, expired keys are dropped, then the oldest ones.
 */
export function makeRateLimiter(
  windowMs: number,
  clock: MillisecondClock,
  maxKeys: number = RATE_LIMITER_MAX_KEYS,
): (key: string) => boolean {
  /** key -> time it was last allowed; insertion order = age order (re-inserted when allowed). */
  const last = new Map<string, number>();
  return (key: string): boolean => {
    const now = clock();
    const at = last.get(key);
    if (at !== undefined && now - at < windowMs) return false;
    last.delete(key);
    if (last.size >= maxKeys) {
      for (const [k, t] of last) {
        if (now - t >= windowMs) last.delete(k);
      }
      while (last.size >= maxKeys) {
        const oldest = last.keys().next();
        if (oldest.done === true) break;
        last.delete(oldest.value);
      }
    }
    last.set(key, now);
    return true;
  };
}
