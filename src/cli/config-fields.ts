/**
 * Validation of single options: the control sockets (`-s`), the media port range (`-m`/`-M`),
 * the user to run as (`-u`), the log level (`-d`) and the admin listener (`--http`).
 */
import { isIP } from 'node:net';
import type { ControlSocketSpec, HttpListen } from '../base/config.ts';
import { parseSocketSpec } from '../control/socket-spec.ts';
import type { LogLevel } from '../util/logger.ts';
import { DEFAULTS, type Fail } from './config-defaults.ts';
import type { RawOptions } from './options.ts';

/** `-d` level names (any case) and the pino level each maps to. */
const LOG_LEVELS = {
  DBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERR: 'error',
  CRIT: 'fatal',
} as const satisfies Readonly<Record<string, LogLevel>>;

/** Syslog facilities the reference accepts (`str2fac[]` in `src/rtpp_log_stand.c`). */
const LOG_FACILITIES = [
  'LOG_AUTH',
  'LOG_CRON',
  'LOG_DAEMON',
  'LOG_KERN',
  'LOG_LOCAL0',
  'LOG_LOCAL1',
  'LOG_LOCAL2',
  'LOG_LOCAL3',
  'LOG_LOCAL4',
  'LOG_LOCAL5',
  'LOG_LOCAL6',
  'LOG_LOCAL7',
  'LOG_LPR',
  'LOG_MAIL',
  'LOG_NEWS',
  'LOG_USER',
  'LOG_UUCP',
  'LOG_AUTHPRIV',
  'LOG_FTP',
  'LOG_SYSLOG',
] as const;

/** The value, or undefined with an error when it is the empty string. */
export function nonEmpty(
  value: string | undefined,
  flag: string,
  message: string,
  fail: Fail,
): string | undefined {
  if (value === '') return fail(flag, message);
  return value;
}

/** `-s`, or the default control socket: parsed specs; stdio needs -f, --no_resolve numeric hosts. */
export function buildControlSockets(raw: RawOptions, fail: Fail): ControlSocketSpec[] {
  const texts = raw.sockets.length > 0 ? raw.sockets : [DEFAULTS.controlSocket];
  const specs: ControlSocketSpec[] = [];
  for (const text of texts) {
    const spec = parseSocketSpec(text);
    if ('error' in spec) {
      fail('-s', `cannot use control socket ${JSON.stringify(text)}: ${spec.error}`);
      continue;
    }
    if ((spec.kind === 'stdio' || spec.kind === 'stdioc') && !raw.foreground) {
      fail('-s', `the ${spec.kind}: control socket needs -f (stay in the foreground)`);
    }
    if (raw.noResolve && 'host' in spec && isIP(spec.host) === 0) {
      fail(
        '-s',
        `${JSON.stringify(spec.host)} in ${JSON.stringify(text)} is not a numeric address, and --no_resolve forbids name lookups`,
      );
    }
    specs.push(Object.freeze(spec));
  }
  return specs;
}

/** `-m`/`-M`: the even RTP port range, each RTP port leaving room for its RTCP port above. */
export function buildPortRange(
  raw: RawOptions,
  fail: Fail,
): { min: number; max: number } | undefined {
  const min = raw.portMin ?? DEFAULTS.portMin;
  const max = raw.portMax ?? DEFAULTS.portMax;
  let ok = true;
  if (min < 1 || min > 65535) {
    ok = false;
    fail('-m', `the lowest media port must be between 1 and 65535, got ${String(min)}`);
  }
  if (max < 1 || max > 65535) {
    ok = false;
    fail('-M', `the highest media port must be between 1 and 65535, got ${String(max)}`);
  }
  if (!ok) return undefined;
  // RTP ports are even; the highest RTP port P must leave room for its RTCP port: P + 1 <= -M.
  const evenMin = min % 2 === 0 ? min : min + 1;
  const evenMax = max % 2 === 0 ? max - 2 : max - 1;
  if (evenMin > evenMax) {
    return fail(
      '-m/-M',
      `the media port range is empty: -m ${String(min)} -M ${String(max)} gives RTP ports from ${String(evenMin)} to ${String(evenMax)} (RTP ports are even and need the next port for RTCP)`,
    );
  }
  return { min: evenMin, max: evenMax };
}

/** `-u USER[:GROUP]` or `-u :GROUP`. Whether they exist is checked when privileges are dropped. */
export function parseUser(value: string, fail: Fail): { user?: string; group?: string } {
  const colon = value.indexOf(':');
  const user = colon === -1 ? value : value.slice(0, colon);
  const group = colon === -1 ? undefined : value.slice(colon + 1);
  if (colon === -1 && user === '') {
    fail('-u', 'the user name is empty; use -u USER[:GROUP] or -u :GROUP');
    return {};
  }
  if (group === '') {
    fail(
      '-u',
      `${JSON.stringify(value)}: the group name after ':' is empty; use -u USER[:GROUP] or -u :GROUP`,
    );
    return {};
  }
  return {
    ...(user === '' ? {} : { user }),
    ...(group === undefined ? {} : { group }),
  };
}

/** `-d LEVEL[:FACILITY]`; without it DBUG in the foreground and WARN as a daemon, LOG_DAEMON. */
export function parseDebug(
  value: string | undefined,
  foreground: boolean,
  fail: Fail,
): { level: LogLevel; facility: string } | undefined {
  if (value === undefined) {
    return { level: foreground ? 'debug' : 'warn', facility: DEFAULTS.logFacility };
  }
  const colon = value.indexOf(':');
  const levelText = colon === -1 ? value : value.slice(0, colon);
  const facilityText = colon === -1 ? undefined : value.slice(colon + 1);
  let ok = true;
  let facility: string = DEFAULTS.logFacility;
  if (facilityText !== undefined) {
    const upper = facilityText.toUpperCase();
    const found = LOG_FACILITIES.find((f) => f === upper || f.slice(4) === upper);
    if (found === undefined) {
      ok = false;
      fail(
        '-d',
        `${JSON.stringify(facilityText)} is not a syslog facility; use one such as LOG_DAEMON, LOG_LOCAL0..LOG_LOCAL7 or LOG_USER (the LOG_ prefix is optional)`,
      );
    } else {
      facility = found;
    }
  }
  const key = levelText.toUpperCase();
  const level = Object.hasOwn(LOG_LEVELS, key)
    ? LOG_LEVELS[key as keyof typeof LOG_LEVELS]
    : undefined;
  if (level === undefined) {
    return fail(
      '-d',
      `${JSON.stringify(levelText)} is not a log level; use DBUG, INFO, WARN, ERR or CRIT`,
    );
  }
  return ok ? { level, facility } : undefined;
}

/**
 * `--http ADDR:PORT`: a numeric IPv4 address, or an IPv6 one in brackets (`[::1]:9090`), and a
 * port in 0..65535 (0: any free port). A message when malformed.
 */
export function parseHttpListen(text: string): HttpListen | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  const v6 = m?.[1] !== undefined;
  if (m === null || host === undefined || isIP(host) !== (v6 ? 6 : 4) || port > 65535) {
    return `expected ADDR:PORT with a numeric address (IPv6 in brackets) and a port in 0..65535, got ${JSON.stringify(text)}`;
  }
  return { host, port };
}
