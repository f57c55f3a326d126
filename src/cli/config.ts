/**
 * The command line's decisions: a pure function from the raw options to a frozen Config, with the
 * reference's defaults and cross-option rules (sippy/rtpproxy src/main.c, the checks after
 * getopt_long). The single-option checks are in config-fields.ts, the addresses in
 * config-addresses.ts.
 */
import { parseNotifyTargets } from '../notify/targets.ts';
import type { Config } from '../base/config.ts';
import { buildAddresses } from './config-addresses.ts';
import { DEFAULTS, defaultWorkers, MAX_WORKERS, type ConfigError } from './config-defaults.ts';
import {
  buildControlSockets,
  buildPortRange,
  nonEmpty,
  parseDebug,
  parseHttpListen,
  parseUser,
} from './config-fields.ts';
import type { RawOptions } from './options.ts';

export { DEFAULTS, defaultWorkers, type ConfigError } from './config-defaults.ts';
export { needsResolution } from './config-addresses.ts';

/** Type guard for the error branch of {@link buildConfig}. */
export function isConfigErrors(
  result: Config | readonly ConfigError[],
): result is readonly ConfigError[] {
  return Array.isArray(result);
}

/**
 * Turns the raw command line into a frozen Config, applying the reference's defaults and
 * cross-option rules (docs/protocol.md 4.3, 4.6, 13). Pure: no I/O, no DNS, no `process`. Returns every
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

  const kernel = raw.kernel ?? 'auto';
  if (kernel !== 'auto' && kernel !== 'on' && kernel !== 'off') {
    fail('--kernel', `the kernel path mode must be auto, on or off, got ${JSON.stringify(kernel)}`);
  } else if (kernel === 'on' && nft === 'off') {
    fail('--kernel', '--kernel on needs the nftables table: drop --nft off');
  }

  const http = raw.http === undefined ? undefined : parseHttpListen(raw.http);
  if (typeof http === 'string') fail('--http', http);

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
    // The kernel path lives in the nftables table: without the table, no kernel path.
    kernel: nft === 'off' ? 'off' : kernel === 'on' || kernel === 'off' ? kernel : 'auto',
    strictSource: !raw.noStrictSource,
    ...(http === undefined || typeof http === 'string' ? {} : { http }),
  };
  return Object.freeze(config);
}
