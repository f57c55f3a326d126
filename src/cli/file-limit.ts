/**
 * `-L`, the open-files limit: refused up front when too small to start, set with prlimit(1)
 * (Node has no setrlimit()), and read back for the start-up report.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Config } from '../base/config.ts';
import { errorMessage } from '../util/error-message.ts';

/**
 * -L: Node has no setrlimit(), so the limit is set with prlimit(1) on this process, soft and hard
 * to N as the reference does (raising the hard limit needs root, so this runs before -u). Returns
 * a problem to log, or undefined.
 */
export function setFileLimit(limit: number): string | undefined {
  try {
    execFileSync(
      'prlimit',
      ['--pid', String(process.pid), `--nofile=${String(limit)}:${String(limit)}`],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
      },
    );
    return undefined;
  } catch (err) {
    const stderr =
      typeof err === 'object' && err !== null && 'stderr' in err && typeof err.stderr === 'string'
        ? err.stderr.trim()
        : '';
    return stderr !== '' ? stderr : errorMessage(err);
  }
}

/**
 * Descriptors one media worker holds once it runs (its event loop's, its message ports'), with
 * room for the source files it opens while it loads.
 */
const FILES_PER_WORKER = 12;
/** Descriptors start-up needs beyond those, with room for a first call (a few sockets, a file). */
const START_FILES_MARGIN = 16;

/**
 * -L below what start-up needs (the descriptors open now, the control sockets, the media
 * workers) ends in a failure deep inside module loading or a worker: refuse it up front with
 * the figure to give instead. Undefined when -L is not given, is enough, or this is not Linux.
 */
export function checkFileLimit(config: Config): string | undefined {
  if (config.fileLimit === undefined) return undefined;
  let open: number;
  try {
    open = readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
  const need =
    open + config.controlSockets.length + config.workers * FILES_PER_WORKER + START_FILES_MARGIN;
  if (config.fileLimit >= need) return undefined;
  return (
    `an open-files limit of ${String(config.fileLimit)} is too small to start: ` +
    `${String(open)} files are open already, and ${String(config.workers)} media worker(s) and ` +
    `${String(config.controlSockets.length)} control socket(s) need more; give at least ` +
    `${String(need)}, plus 4 to 5 per call`
  );
}

/** The soft open-files limit of this process (Linux), undefined when unknown or unlimited. */
export function currentFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const field = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (field !== undefined && /^[0-9]+$/.test(field)) return Number(field);
  } catch {
    // not Linux
  }
  return undefined;
}
