import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { parseSocketSpec } from '../control/socket-spec.ts';
import { parseNotifyTargets } from '../notify/targets.ts';
import type { ControlSocketSpec } from '../base/config.ts';
import type { Config, LocalAddress } from '../base/config.ts';
import type { LogLevel } from '../util/logger.ts';
import type { ListenArg, RawOptions } from './options.ts';
import type { Family } from '../base/net.ts';

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
const MAX_WORKERS = 64;

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

/**
 * True when the address is a host name that still has to be resolved (with `dns.lookup`, in the
 * address's family) before the daemon can bind it. `buildConfig` keeps names as given; with
 * `--no_resolve` it refuses them instead.
 */
export function needsResolution(address: LocalAddress): boolean {
  return isIP(address.address) === 0;
}

/** Type guard for the error branch of {@link buildConfig}. */
export function isConfigErrors(
  result: Config | readonly ConfigError[],
): result is readonly ConfigError[] {
  return Array.isArray(result);
}

/**
 * Turns the raw command line into a frozen Config, applying the reference's defaults and
 * cross-option rules (protocol.md 4.3, 4.6, 9). Pure: no I/O, no DNS, no `process`. Returns every
 * error found, not just the first.
 */
export function buildConfig(raw: RawOptions): Config | ConfigError[] {
  const errors: ConfigError[] = [];
  const fail = (flag: string, message: string): undefined => {
    errors.push({ flag, message });
    return undefined;
  };

  const controlSockets = buildControlSockets(raw, fail);
  const ports = buildPortRange(raw, fail);
  const listen = buildAddresses(raw, fail);

  const ttl = raw.ttl ?? DEFAULTS.ttl;
  if (ttl < 1) fail('-T', `the session timeout must be at least 1 second, got ${String(ttl)}`);
  const setupTtl = raw.setupTtl ?? ttl;
  if (raw.setupTtl !== undefined && raw.setupTtl < 1) {
    fail('-W', `the setup timeout must be at least 1 second, got ${String(raw.setupTtl)}`);
  }

  const tos = raw.tos ?? DEFAULTS.tos;
  if (tos < 0 || tos > 255) {
    fail('-t', `the TOS value must be between 0 and 255, got ${String(tos)}`);
  }

  const nft = raw.nft ?? 'auto';
  if (nft !== 'auto' && nft !== 'on' && nft !== 'off') {
    fail('--nft', `the nftables mode must be auto, on or off, got ${JSON.stringify(nft)}`);
  }

  const recordDir = nonEmpty(raw.recordDir, '-r', 'the recording directory is empty', fail);
  const spoolDir = nonEmpty(raw.spoolDir, '-S', 'the spool directory is empty', fail);
  if (raw.spoolDir !== undefined && raw.recordDir === undefined) {
    fail('-S', 'a spool directory needs a recording directory: add -r DIR');
  }

  for (const target of raw.notify) {
    if (target === '') fail('-n', 'the timeout notification socket name is empty');
  }
  for (const error of parseNotifyTargets(
    raw.notify.filter((n) => n !== ''),
    raw.noResolve,
  ).errors) {
    fail('-n', error);
  }
  if (raw.kamailioNotify && raw.notify.length === 0) {
    fail(
      '--kamailio_notify',
      'needs a timeout notification target: add -n unix:PATH or -n tcp:HOST:PORT',
    );
  }

  let pidFile: string | undefined = raw.pidFile ?? DEFAULTS.pidFile;
  if (pidFile === '') {
    fail('-p', 'the pid file name is empty (use -p /dev/null to write none)');
  } else if (pidFile === '/dev/null') {
    pidFile = undefined;
  }

  const creds = raw.user === undefined ? {} : parseUser(raw.user, fail);

  let socketMode: number | undefined;
  if (raw.socketMode !== undefined && (raw.socketMode < 0 || raw.socketMode > 4095)) {
    fail(
      '-w',
      `the socket mode must be a decimal number from 0 to 4095 (octal 0660 is 432), got ${String(raw.socketMode)}`,
    );
  } else {
    // Unix control sockets get this mode whatever the umask (they are created owner-only and
    // then chmod'ed): owner and group by default, so a group given with -u can connect. A mode of
    // 0 is not applied (the reference skips chmod for 0): the socket stays owner-only.
    const mode = raw.socketMode ?? DEFAULTS.socketMode;
    if (mode !== 0) socketMode = mode;
  }

  if (raw.fileLimit !== undefined && raw.fileLimit < 1) {
    fail('-L', `the open-files limit must be a positive number, got ${String(raw.fileLimit)}`);
  }

  const log = parseDebug(raw.debug, raw.foreground, fail);

  if (raw.schedPolicy !== undefined && raw.schedPolicy !== 'fifo' && raw.schedPolicy !== 'rr') {
    fail('-c', `unknown scheduling policy ${JSON.stringify(raw.schedPolicy)}: use fifo or rr`);
  }

  if (raw.nice !== undefined && (raw.nice < -20 || raw.nice > 20)) {
    fail('--nice', `the nice level must be between -20 and 20, got ${String(raw.nice)}`);
  }

  if (raw.workers !== undefined && (raw.workers < 0 || raw.workers > MAX_WORKERS)) {
    fail(
      '--workers',
      `expected 0..${String(MAX_WORKERS)} media worker threads, got ${String(raw.workers)}`,
    );
  }

  if (raw.configFile === '') fail('--config', 'the configuration file name is empty');
  for (const dso of raw.dso) {
    if (dso === '') fail('--dso', 'the module file name is empty');
  }

  if (errors.length > 0 || ports === undefined || listen === undefined || log === undefined) {
    return errors;
  }

  const config: Config = {
    foreground: raw.foreground,
    controlSockets: Object.freeze(controlSockets),
    addresses: Object.freeze(listen.addresses.map((a) => Object.freeze(a))),
    bridge: listen.bridge,
    portMin: ports.min,
    portMax: ports.max,
    sequentialPorts: raw.sequentialPorts,
    ttl,
    setupTtl,
    independentTtl: raw.independentTtl,
    tos,
    sendTwice: raw.sendTwice,
    ...(recordDir === undefined ? {} : { recordDir }),
    ...(spoolDir === undefined ? {} : { spoolDir }),
    pcap: raw.pcap,
    recordAll: raw.recordAll,
    noRtcpRecord: raw.noRtcpRecord,
    notifyTargets: Object.freeze([...raw.notify]),
    kamailioNotify: raw.kamailioNotify,
    ...(pidFile === undefined ? {} : { pidFile }),
    ...(creds.user === undefined ? {} : { user: creds.user }),
    ...(creds.group === undefined ? {} : { group: creds.group }),
    ...(socketMode === undefined ? {} : { socketMode }),
    allowRoot: raw.allowRoot,
    ...(raw.fileLimit === undefined ? {} : { fileLimit: raw.fileLimit }),
    logLevel: log.level,
    logFacility: log.facility,
    noChdir: raw.noChdir,
    noRedirect: raw.noRedirect,
    // The reference makes every leg asymmetric in bridge mode unless --bridge_symmetric, and then
    // --bridge_symmetric wins even over --force_asymmetric (main.c: `if (bmode && brsym) aforce = 0`).
    forceAsymmetric: listen.bridge ? !raw.bridgeSymmetric : raw.forceAsymmetric,
    bridgeSymmetric: raw.bridgeSymmetric,
    noResolve: raw.noResolve,
    overloadProt: raw.overloadProt,
    ...(raw.nice === undefined ? {} : { nice: raw.nice }),
    workers: raw.workers ?? defaultWorkers(),
    connectMedia: !raw.noConnectMedia,
    nft: nft === 'on' || nft === 'off' ? nft : 'auto',
    strictSource: !raw.noStrictSource,
  };
  return Object.freeze(config);
}

type Fail = (flag: string, message: string) => undefined;

function nonEmpty(
  value: string | undefined,
  flag: string,
  message: string,
  fail: Fail,
): string | undefined {
  if (value === '') return fail(flag, message);
  return value;
}

function buildControlSockets(raw: RawOptions, fail: Fail): ControlSocketSpec[] {
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
    if (
      raw.noResolve &&
      (spec.kind === 'udp' ||
        spec.kind === 'udp6' ||
        spec.kind === 'tcp' ||
        spec.kind === 'tcp6') &&
      isIP(spec.host) === 0
    ) {
      fail(
        '-s',
        `${JSON.stringify(spec.host)} in ${JSON.stringify(text)} is not a numeric address, and --no_resolve forbids name lookups`,
      );
    }
    specs.push(Object.freeze(spec));
  }
  return specs;
}

function buildPortRange(raw: RawOptions, fail: Fail): { min: number; max: number } | undefined {
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

interface SplitListen {
  readonly flag: '-l' | '-6';
  readonly family: Family;
  readonly text: string;
  readonly label?: string;
  readonly advertised?: string;
  /** The address part, still possibly `A/B`. */
  readonly host: string;
}

/** `[label@]ADDR[=ADV]`, split as the reference's `bindarg_parse()` does (first `@`, then first `=`). */
function splitListen(arg: ListenArg): SplitListen {
  let rest = arg.value;
  let label: string | undefined;
  let advertised: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    label = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  const eq = rest.indexOf('=');
  if (eq !== -1) {
    advertised = rest.slice(eq + 1);
    rest = rest.slice(0, eq);
  }
  return {
    flag: arg.family === 4 ? '-l' : '-6',
    family: arg.family,
    text: arg.value,
    host: rest,
    ...(label === undefined ? {} : { label }),
    ...(advertised === undefined ? {} : { advertised }),
  };
}

/** Validates the address part of `-l`/`-6`; returns the address to store (wildcards normalised). */
function checkHost(
  host: string,
  arg: SplitListen,
  noResolve: boolean,
  fail: Fail,
): string | undefined {
  const { flag, family, text } = arg;
  const what = family === 4 ? 'IPv4' : 'IPv6';
  if (host === '') return fail(flag, `${JSON.stringify(text)}: the address is empty`);
  if (host === '*') return family === 4 ? '0.0.0.0' : '::';
  const ipFamily = isIP(host);
  if (ipFamily === family) return host;
  if (ipFamily !== 0) {
    const other = family === 4 ? '-6' : '-l';
    return fail(flag, `${JSON.stringify(host)} is not an ${what} address; give it with ${other}`);
  }
  if (host.startsWith('[')) {
    return fail(flag, `${JSON.stringify(host)}: write IPv6 addresses without brackets`);
  }
  if (!/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/.test(host)) {
    return fail(
      flag,
      `${JSON.stringify(host)} is neither a numeric ${what} address nor a host name`,
    );
  }
  if (noResolve) {
    return fail(
      flag,
      `${JSON.stringify(host)} is not a numeric ${what} address, and --no_resolve forbids name lookups`,
    );
  }
  return host;
}

/**
 * Local addresses from `-l`/`-6`/`-A`, following the reference's `init_bindaddrs()` (protocol.md
 * 4.6): the first `-l` and the first `-6` decide bridge mode; in bridge mode both of them make up
 * the internal/external pair; every other address needs a unique label.
 */
function buildAddresses(
  raw: RawOptions,
  fail: Fail,
): { addresses: LocalAddress[]; bridge: boolean } | undefined {
  const advertisedPair = parseAdvertisedOption(raw.advertised, fail);
  if (raw.listen.length === 0) {
    return { addresses: [{ address: '0.0.0.0', family: 4 }], bridge: false };
  }
  if (raw.listen.length > DEFAULTS.maxAddresses) {
    return fail(
      '-l/-6',
      `at most ${String(DEFAULTS.maxAddresses)} local addresses can be given, got ${String(raw.listen.length)}`,
    );
  }
  const args = raw.listen.map(splitListen);
  /** Address part still to be processed per argument; undefined once the bridge pair took it. */
  const hosts: (string | undefined)[] = args.map((a) => a.host);
  const firstOf = [args.findIndex((a) => a.family === 4), args.findIndex((a) => a.family === 6)];
  const addresses: LocalAddress[] = [];
  let errorCount = 0;
  const failCounted: Fail = (flag, message) => {
    errorCount++;
    return fail(flag, message);
  };

  let external: { arg: SplitListen; host: string } | undefined;
  for (const i of firstOf) {
    const arg = args[i];
    const host = hosts[i];
    if (arg === undefined || host === undefined) continue;
    const slash = host.indexOf('/');
    if (slash === -1) continue;
    if (external !== undefined) {
      return fail(
        '-l/-6',
        'bridge mode: the external (second) address is given by both the first -l and the first -6 (A/B); give it only once',
      );
    }
    external = { arg, host: host.slice(slash + 1) };
    hosts[i] = slash === 0 ? undefined : host.slice(0, slash);
  }
  const bridge = external !== undefined;

  if (external !== undefined) {
    let internal: { arg: SplitListen; host: string } | undefined;
    for (const i of firstOf) {
      const arg = args[i];
      const host = hosts[i];
      if (arg === undefined || host === undefined) continue;
      if (internal !== undefined) {
        return fail(
          '-l/-6',
          'bridge mode needs exactly two addresses, but the first -l and the first -6 both give an internal (first) address; write the other one as a labelled address after them, or use the -l A -6 /B form',
        );
      }
      internal = { arg, host };
      hosts[i] = undefined;
    }
    if (internal === undefined) {
      return fail(
        '-l/-6',
        'bridge mode needs exactly two addresses: -l INTERNAL/EXTERNAL (or one half from -6, such as -l 10.0.0.1 -6 /2001:db8::1)',
      );
    }
    if (advertisedPair !== undefined && advertisedPair.external === undefined) {
      failCounted(
        '-A',
        'bridge mode needs two advertised addresses, for the internal and the external address: -A ADV1/ADV2',
      );
    }
    const pair = [
      { part: internal, advertised: advertisedPair?.internal },
      { part: external, advertised: advertisedPair?.external },
    ];
    for (const { part, advertised } of pair) {
      const { arg } = part;
      if (arg.label !== undefined) {
        failCounted(
          arg.flag,
          `${JSON.stringify(arg.text)}: bridge mode addresses cannot have a label`,
        );
        continue;
      }
      if (arg.advertised !== undefined) {
        failCounted(
          arg.flag,
          `${JSON.stringify(arg.text)}: bridge mode addresses cannot have an advertised address (=ADV); use -A ADV1/ADV2`,
        );
        continue;
      }
      const address = checkHost(part.host, arg, raw.noResolve, failCounted);
      if (address === undefined) continue;
      addresses.push({
        address,
        family: arg.family,
        ...(advertised === undefined ? {} : { advertised }),
      });
    }
  }

  const labels = new Set<string>();
  args.forEach((arg, i) => {
    const host = hosts[i];
    if (host === undefined) return;
    if (arg.label === '') {
      failCounted(arg.flag, `${JSON.stringify(arg.text)}: the label before '@' is empty`);
      return;
    }
    const isFirst = !bridge && i === hosts.findIndex((h) => h !== undefined);
    if (!isFirst && arg.label === undefined) {
      failCounted(
        arg.flag,
        `${JSON.stringify(arg.text)}: address label is missing; every local address after the first${bridge ? ' (and after the bridge pair)' : ''} needs one, as in ${arg.flag} name@${arg.family === 4 ? '192.0.2.1' : '2001:db8::1'}`,
      );
      return;
    }
    if (host.includes('/')) {
      failCounted(
        arg.flag,
        `${JSON.stringify(arg.text)}: only the first ${arg.flag} address can have the bridge form A/B`,
      );
      return;
    }
    if (arg.advertised === '') {
      failCounted(
        arg.flag,
        `${JSON.stringify(arg.text)}: the advertised address after '=' is empty`,
      );
      return;
    }
    if (arg.label !== undefined) {
      if (labels.has(arg.label)) {
        failCounted(
          arg.flag,
          `${JSON.stringify(arg.text)}: the label ${JSON.stringify(arg.label)} is used twice`,
        );
        return;
      }
      labels.add(arg.label);
    }
    const address = checkHost(host, arg, raw.noResolve, failCounted);
    if (address === undefined) return;
    addresses.push({
      address,
      family: arg.family,
      ...(arg.label === undefined ? {} : { label: arg.label }),
      ...(arg.advertised === undefined ? {} : { advertised: arg.advertised }),
    });
  });

  if (errorCount > 0) return undefined;
  return { addresses, bridge };
}

/** `-A ADV1[/ADV2]`; checked even outside bridge mode, where it is otherwise ignored. */
function parseAdvertisedOption(
  value: string | undefined,
  fail: Fail,
): { internal: string; external?: string } | undefined {
  if (value === undefined) return undefined;
  const slash = value.indexOf('/');
  const internal = slash === -1 ? value : value.slice(0, slash);
  const external = slash === -1 ? undefined : value.slice(slash + 1);
  if (internal === '') {
    return fail('-A', `${JSON.stringify(value)}: the first advertised address is empty`);
  }
  if (external === '') {
    return fail('-A', `${JSON.stringify(value)}: the second advertised address is empty`);
  }
  return external === undefined ? { internal } : { internal, external };
}

/** `-u USER[:GROUP]` or `-u :GROUP`. Whether they exist is checked when privileges are dropped. */
function parseUser(value: string, fail: Fail): { user?: string; group?: string } {
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
function parseDebug(
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
