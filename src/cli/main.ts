import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import {
  accessSync,
  constants as fsConstants,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { constants as osConstants, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { BASE_VERSION, supportedCapabilities } from '../control/capabilities.ts';
import { formatSocketSpec } from '../control/socket-spec.ts';
import type { DaemonHandle } from '../daemon-types.ts';
import { createLogger } from '../util/logger.ts';
import { computeCapacity } from './capacity.ts';
import { buildConfig, isConfigErrors, needsResolution } from './config.ts';
import type { Config, LocalAddress } from '../base/config.ts';
import { parseOptions, USAGE, type RawOptions } from './options.ts';
import { errorMessage } from '../util/error-message.ts';
import type { Family } from '../base/net.ts';

/**
 * Entry point: the only module that touches `process` (argv, env, signals, exit, uid, cwd).
 * Exit statuses follow the reference: 0 clean stop or -v/-V/-C, 1 usage/config/start-up/runtime
 * failure, 128+signal when a second stop signal arrives while stopping.
 */

/** Set in the environment of the re-spawned background process (Node cannot fork). */
const DAEMON_CHILD_ENV = 'RTPPROXY_DAEMON_CHILD';
/** How long the foreground parent waits for the background process to serve. */
const READY_DEADLINE_MS = 10_000;
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

/** Name of the monotonic clock printed by `-C` (Node's timers and performance.now() use it). */
const CLOCK_NAME = 'CLOCK_MONOTONIC';

/** Messages from the background process to the parent waiting for it, over the IPC channel. */
type ChildMessage =
  { readonly type: 'ready' } | { readonly type: 'error'; readonly message: string };

/** Runs rtpproxy with the arguments after the program name; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseOptions(argv);
  if (!parsed.ok) {
    await writeStderr(`rtpproxy: ${parsed.message}\n${USAGE}\n`);
    return 1;
  }
  const raw = parsed.options;
  if (raw.info !== undefined) return printInfo(raw);

  const built = buildConfig(raw);
  if (isConfigErrors(built)) {
    await writeStderr(built.map((e) => `rtpproxy: ${e.flag}: ${e.message}\n`).join(''));
    return 1;
  }

  const isDaemonChild = process.env[DAEMON_CHILD_ENV] === '1' && typeof process.send === 'function';
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a constant key; delete is how Node unsets an env var
  delete process.env[DAEMON_CHILD_ENV];

  const root = checkRoot(built, process.getuid?.());
  if (root.refuse !== undefined) {
    await writeStderr(`rtpproxy: ${root.refuse}\n`);
    return 1;
  }
  if (root.warn !== undefined && !isDaemonChild) {
    await writeStderr(`rtpproxy: WARNING: ${root.warn}\n`);
  }

  const withCreds = resolveCredentials(built);
  if (typeof withCreds === 'string') {
    await writeStderr(`rtpproxy: -u: ${withCreds}\n`);
    return 1;
  }

  const resolved = await resolveAddresses(withCreds);
  if (typeof resolved === 'string') {
    await writeStderr(`rtpproxy: ${resolved}\n`);
    return 1;
  }

  const notLocal = await checkLocalAddresses(resolved);
  if (notLocal !== undefined) {
    await writeStderr(`rtpproxy: ${notLocal}\n`);
    return 1;
  }

  const tooFewFiles = checkFileLimit(resolved);
  if (tooFewFiles !== undefined) {
    await writeStderr(`rtpproxy: -L: ${tooFewFiles}\n`);
    return 1;
  }

  if (!resolved.foreground && !isDaemonChild) return daemonize(argv, resolved);
  return runDaemon(resolved, raw, isDaemonChild);
}

async function printInfo(raw: RawOptions): Promise<number> {
  switch (raw.info) {
    case 'capabilities': {
      const built = buildConfig(raw);
      const caps = supportedCapabilities(isConfigErrors(built) ? undefined : built);
      await writeStdout(
        `Basic version: ${BASE_VERSION}\n` +
          caps.map((c) => `Extension ${c.date}: ${c.description}\n`).join(''),
      );
      return 0;
    }
    case 'version':
      await writeStdout(`rtpproxy ${packageVersion()}\n`);
      return 0;
    case 'clock':
      await writeStdout(`${CLOCK_NAME}\n`);
      return 0;
    case undefined:
      return 1;
  }
  return 1;
}

/** The package's version, fixed by the build in a bundle (scripts/build.mjs). */
declare const RTPPROXY_BUNDLED_VERSION: string | undefined;

function packageVersion(): string {
  if (typeof RTPPROXY_BUNDLED_VERSION === 'string') return RTPPROXY_BUNDLED_VERSION;
  try {
    const pkg: unknown = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    );
    if (
      typeof pkg === 'object' &&
      pkg !== null &&
      'version' in pkg &&
      typeof pkg.version === 'string'
    ) {
      return pkg.version;
    }
  } catch {
    // fall through
  }
  return 'unknown';
}

/**
 * The reference's superuser check: as root without `-u USER` (a group alone does not count) it
 * refuses a udp:/udp6: control socket and warns otherwise, unless `-F`. The rule is about remote
 * control, not the transport, so a tcp:/tcp6: control socket is refused as well.
 */
function checkRoot(config: Config, uid: number | undefined): { refuse?: string; warn?: string } {
  if (config.allowRoot || uid !== 0 || config.user !== undefined) return {};
  const remote = config.controlSockets.find(
    (s) => s.kind === 'udp' || s.kind === 'udp6' || s.kind === 'tcp' || s.kind === 'tcp6',
  );
  if (remote !== undefined) {
    return {
      refuse:
        `refusing to run as root with a network control socket (${formatSocketSpec(remote)}): anybody who can reach it could control the ` +
        'daemon. Use -u USER[:GROUP] to run as an unprivileged user, or -F to run as root anyway.',
    };
  }
  return {
    warn: 'running as root is not recommended. Use -u USER[:GROUP] to run as an unprivileged user, or -F to silence this warning.',
  };
}

/**
 * -u: looks the user and group up now, as the reference does while parsing its options, so an
 * unknown name stops the start before anything is bound. Names go through NSS (`getent`), like
 * getpwnam()/getgrnam(); without getent, /etc/passwd and /etc/group are read.
 */
function resolveCredentials(config: Config): Config | string {
  if (config.user === undefined && config.group === undefined) return config;
  let uid: number | undefined;
  let gid: number | undefined;
  if (config.user !== undefined) {
    const entry = lookupDatabase('passwd', config.user);
    const id = Number(entry?.[2]);
    if (entry === undefined || !Number.isInteger(id)) {
      return `cannot find the user ${JSON.stringify(config.user)}`;
    }
    uid = id;
    // Without a group, the user's primary group.
    if (config.group === undefined) gid = Number(entry[3]);
  }
  if (config.group !== undefined) {
    const entry = lookupDatabase('group', config.group);
    const id = Number(entry?.[2]);
    if (entry === undefined || !Number.isInteger(id)) {
      return `cannot find the group ${JSON.stringify(config.group)}`;
    }
    gid = id;
  }
  return Object.freeze({
    ...config,
    ...(uid === undefined ? {} : { uid }),
    ...(gid === undefined || !Number.isInteger(gid) ? {} : { gid }),
  });
}

/** One passwd or group entry split at ':', or undefined when there is none. */
function lookupDatabase(database: 'passwd' | 'group', name: string): string[] | undefined {
  if (name.includes(':') || name.includes('\n')) return undefined;
  try {
    const line = execFileSync('getent', [database, name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return line.split('\n')[0]?.split(':');
  } catch (err) {
    // getent exits 2 for "not found"; only a missing getent falls back to the files.
    if (!isErrnoException(err) || err.code !== 'ENOENT') return undefined;
  }
  try {
    const file = readFileSync(database === 'passwd' ? '/etc/passwd' : '/etc/group', 'utf8');
    return file
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[0] === name || (/^[0-9]+$/.test(name) && f[2] === name));
  } catch {
    return undefined;
  }
}

/** Resolves host names given with -l/-6 (dns.lookup in the option's family); message on failure. */
async function resolveAddresses(config: Config): Promise<Config | string> {
  if (!config.addresses.some(needsResolution)) return config;
  const addresses: LocalAddress[] = [];
  for (const a of config.addresses) {
    if (!needsResolution(a)) {
      addresses.push(a);
      continue;
    }
    const flag = a.family === 4 ? '-l' : '-6';
    if (config.noResolve) {
      return `${flag}: ${JSON.stringify(a.address)} is not numeric and --no_resolve is set`;
    }
    try {
      const found = await lookup(a.address, { family: a.family });
      addresses.push(Object.freeze({ ...a, address: found.address }));
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : String(err);
      return `${flag}: cannot resolve ${JSON.stringify(a.address)} to an IPv${String(a.family)} address (${code})`;
    }
  }
  return Object.freeze({ ...config, addresses: Object.freeze(addresses) });
}

/**
 * -l/-6 addresses must be addresses of this host: media ports are bound on them for every call,
 * and on any other address each bind fails (every U would answer E72). A test bind on port 0
 * now tells; an address that only comes up later (a floating address) binds when the kernel
 * allows non-local binds (net.ipv4.ip_nonlocal_bind, net.ipv6.ip_nonlocal_bind). A message on
 * failure.
 */
async function checkLocalAddresses(config: Config): Promise<string | undefined> {
  for (const a of config.addresses) {
    if (a.address === '0.0.0.0' || a.address === '::') continue;
    const code = await tryBind(a.address, a.family);
    if (code === undefined) continue;
    const flag = a.family === 4 ? '-l' : '-6';
    const why =
      code === 'EADDRNOTAVAIL'
        ? 'it is not an address of this host'
        : 'media sockets cannot be bound on it';
    return `${flag}: ${JSON.stringify(a.address)}: ${why} (${code})`;
  }
  return undefined;
}

/** Binds a UDP socket on `address`, port 0, and closes it: undefined, or the error code. */
function tryBind(address: string, family: Family): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      resolve(err.code ?? err.message);
    });
    socket.bind(0, address, () => {
      socket.close(() => {
        resolve(undefined);
      });
    });
  });
}

/**
 * Goes to the background. Node cannot fork, so the same program is started again, detached (its
 * own session), with an IPC channel; it runs the foreground code path, and says 'ready' once its
 * control sockets serve (the reference's parent also waits for that: `rtpp_daemon_rel_parent`).
 * It is started in the current directory so that relative -s/-r paths and the loader (tsx) resolve
 * as they did here; it changes to / itself after binding its control sockets, like the reference.
 */
function daemonize(argv: readonly string[], config: Config): Promise<number> {
  const script = process.argv[1] ?? fileURLToPath(import.meta.url);
  const output = config.noRedirect ? 'inherit' : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    detached: true,
    stdio: ['ignore', output, output, 'ipc'],
    env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
  });
  return new Promise<number>((resolve) => {
    let childError: string | undefined;
    let settled = false;
    const finish = (code: number, message?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      if (message === undefined) {
        resolve(code);
      } else {
        writeStderr(`rtpproxy: ${message}\n`).then(
          () => resolve(code),
          () => resolve(code),
        );
      }
    };
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      finish(
        1,
        `the background process did not become ready within ${String(READY_DEADLINE_MS / 1000)} s; stopped it`,
      );
    }, READY_DEADLINE_MS);
    child.on('message', (msg: unknown) => {
      if (!isChildMessage(msg)) return;
      if (msg.type === 'ready') finish(0);
      else childError = msg.message;
    });
    child.on('error', (err) => {
      finish(1, `cannot start the background process: ${err.message}`);
    });
    // 'close' comes after 'exit' and after the IPC channel is drained, so an error message sent
    // just before exiting has arrived by then.
    child.on('close', (code, signal) => {
      const how = signal === null ? `exit status ${String(code)}` : `signal ${signal}`;
      finish(1, childError ?? `the background process ended during start-up (${how})`);
    });
  });
}

function isChildMessage(msg: unknown): msg is ChildMessage {
  if (typeof msg !== 'object' || msg === null || !('type' in msg)) return false;
  if (msg.type === 'ready') return true;
  return msg.type === 'error' && 'message' in msg && typeof msg.message === 'string';
}

function sendToParent(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) {
      resolve();
      return;
    }
    process.send(msg, undefined, {}, () => {
      resolve();
    });
  });
}

/**
 * The foreground code path (also run by the background process): start the daemon, write the pid
 * file, serve until a signal or the end of a graceful drain.
 */
async function runDaemon(config: Config, raw: RawOptions, isDaemonChild: boolean): Promise<number> {
  const logger = createLogger(config.logLevel);
  let pidFileWritten = false;
  const removePidFile = (): void => {
    if (!pidFileWritten || config.pidFile === undefined) return;
    pidFileWritten = false;
    try {
      unlinkSync(config.pidFile);
    } catch (err) {
      if (!isErrnoException(err) || err.code !== 'ENOENT') {
        logger.warn({ err, pidFile: config.pidFile }, 'cannot remove the pid file');
      }
    }
  };

  const fatalExit = (err: unknown, msg: string): never => {
    logger.fatal({ err }, msg);
    removePidFile();
    process.exit(1);
  };
  process.on('uncaughtException', (err) => fatalExit(err, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => fatalExit(reason, 'unhandled promise rejection'));
  process.on('SIGPIPE', () => undefined);
  // A write past the file-size limit then fails with EFBIG (see STOP_SIGNALS).
  process.on('SIGXFSZ', () => undefined);

  logUnappliedOptions(logger, raw, config);
  // The daemon's modules are loaded before -L applies: loading opens each source file.
  const { createDaemon } = await import('../daemon.ts');
  const fileLimitProblem =
    config.fileLimit === undefined ? undefined : setFileLimit(config.fileLimit);

  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });

  let daemon: DaemonHandle | undefined;
  let stopping = false;
  let draining = false;

  const stop = async (reason: string, failed = false): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'stopping');
    const deadline = setTimeout(() => {
      logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed, exiting');
      removePidFile();
      finish(1);
    }, SHUTDOWN_DEADLINE_MS);
    let code = failed ? 1 : 0;
    try {
      await daemon?.close();
    } catch (err) {
      code = 1;
      logger.error({ err }, 'error while stopping');
    }
    clearTimeout(deadline);
    removePidFile();
    logger.info('stopped');
    finish(code);
  };
  const drain = (reason: string): void => {
    if (stopping || draining) return;
    draining = true;
    logger.info(
      { reason },
      'graceful shutdown: refusing new sessions, exiting when the last one is gone',
    );
    daemon?.drain();
  };

  for (const signal of stopSignals()) {
    process.on(signal, () => {
      if (stopping) {
        logger.warn({ signal }, 'second stop signal while stopping, exiting at once');
        removePidFile();
        process.exit(128 + osConstants.signals[signal]);
      }
      logger.info({ signal }, 'got signal');
      void stop(signal);
    });
  }
  process.on('SIGHUP', () => {
    drain('SIGHUP');
  });

  const handle: DaemonHandle = createDaemon(config, logger, {
    onDrained: () => {
      logger.info('the last session is gone');
      // Called from inside the command that removed the last session (D, or an expiry): let its
      // reply leave before the control sockets close, as the reference checks only in its main loop.
      setImmediate(() => void stop('drained'));
    },
    onStdioEof: () => {
      drain('end of input on the stdio control socket');
    },
    onFatal: (err) => {
      logger.fatal({ err }, 'media relay failed, stopping');
      void stop('media worker failure', true);
    },
  });

  daemon = handle;
  try {
    await handle.start();
  } catch (err) {
    logger.fatal({ err }, 'cannot start');
    // The reason in plain words too, as the reference's err(3) prints it; a background process
    // hands it to the waiting parent, which prints it.
    const hint =
      config.fileLimit !== undefined && errorMessage(err).includes('EMFILE')
        ? ` (the open-files limit -L ${String(config.fileLimit)} is too small)`
        : '';
    const message = `cannot start: ${errorMessage(err)}${hint}`;
    if (isDaemonChild) {
      await sendToParent({ type: 'error', message });
    } else {
      await writeStderr(`rtpproxy: ${message}\n`);
    }
    await handle.close().catch(() => undefined);
    return 1;
  }
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a signal handler may have set it during start()
  if (stopping) return finished;
  // A SIGHUP that came while the daemon was being created.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- SIGHUP's handler may have set it
  if (draining) handle.drain();

  if (isDaemonChild && !config.noChdir) {
    try {
      process.chdir('/');
    } catch (err) {
      logger.warn({ err }, 'cannot change directory to /');
    }
  }

  if (config.nice !== undefined) {
    try {
      setPriority(config.nice);
    } catch (err) {
      // The reference exits when it cannot set the priority.
      return failStart(
        `cannot set the process priority to ${String(config.nice)}: ${errorMessage(err)}`,
      );
    }
  }

  if (config.pidFile !== undefined) {
    try {
      writeFileSync(config.pidFile, `${String(process.pid)}\n`);
      pidFileWritten = true;
    } catch (err) {
      logger.warn({ err, pidFile: config.pidFile }, 'cannot write the pid file');
    }
  }

  const dropped = dropPrivileges(config);
  if (dropped !== undefined) return failStart(dropped);
  // Checked as the user that writes the recordings, from the directory the daemon runs in.
  const badDir = checkRecordDirs(config);
  if (badDir !== undefined) return failStart(badDir);

  reportCapacity(logger, config, fileLimitProblem);

  logger.info(
    {
      controlSockets: config.controlSockets.map(formatSocketSpec),
      addresses: config.addresses,
      bridge: config.bridge,
      portMin: config.portMin,
      portMax: config.portMax,
    },
    'ready',
  );
  if (isDaemonChild) {
    await sendToParent({ type: 'ready' });
    if (process.connected) process.disconnect();
  }
  return finished;

  async function failStart(message: string): Promise<number> {
    logger.fatal(message);
    if (isDaemonChild) await sendToParent({ type: 'error', message });
    else await writeStderr(`rtpproxy: ${message}\n`);
    await daemon?.close().catch(() => undefined);
    removePidFile();
    return 1;
  }
}

/**
 * -u: switch group then user, after binding the control sockets and writing the pid file; a
 * message on failure. The ids were looked up before the start (resolveCredentials). As root the
 * supplementary groups are dropped too, so none of root's groups is kept.
 */
function dropPrivileges(config: Config): string | undefined {
  if (config.uid === undefined && config.gid === undefined) return undefined;
  try {
    if (config.gid !== undefined) {
      if (process.getuid?.() === 0) process.setgroups?.([config.gid]);
      process.setgid?.(config.gid);
    }
    if (config.uid !== undefined) process.setuid?.(config.uid);
  } catch (err) {
    return `cannot switch to user ${JSON.stringify(config.user ?? '')} group ${JSON.stringify(config.group ?? '')}: ${errorMessage(err)}`;
  }
  return undefined;
}

/**
 * -r and -S must name directories this process can create files in: otherwise every R would
 * answer E50 and every -a call record nothing, with nothing said at start. A message, or
 * undefined when both are usable.
 */
function checkRecordDirs(config: Config): string | undefined {
  const dirs = [
    ['-r', 'recording', config.recordDir],
    ['-S', 'spool', config.spoolDir],
  ] as const;
  for (const [flag, what, dir] of dirs) {
    if (dir === undefined) continue;
    const problem = directoryProblem(dir);
    if (problem !== undefined) {
      return `${flag}: the ${what} directory ${JSON.stringify(dir)} ${problem}`;
    }
  }
  return undefined;
}

/** Why files cannot be created in `dir`, or undefined when they can. */
function directoryProblem(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return 'is not a directory';
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
    return undefined;
  } catch (err) {
    const code = isErrnoException(err) ? err.code : undefined;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
      return `is not writable by this process (${code})`;
    }
    return `cannot be used: ${errorMessage(err)}`;
  }
}

/**
 * -L: Node has no setrlimit(), so the limit is set with prlimit(1) on this process, soft and hard
 * to N as the reference does (raising the hard limit needs root, so this runs before -u). Returns
 * a problem to log, or undefined.
 */
function setFileLimit(limit: number): string | undefined {
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
function checkFileLimit(config: Config): string | undefined {
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
function currentFileLimit(): number | undefined {
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

/**
 * Logs once at start how many calls the daemon can really hold: by port range and by open-files
 * limit, warning when the limit is the smaller one (or -L could not be applied).
 */
function reportCapacity(
  logger: Logger,
  config: Config,
  fileLimitProblem: string | undefined,
): void {
  const fileLimit = currentFileLimit();
  const c = computeCapacity(config, fileLimit);
  if (config.fileLimit !== undefined && fileLimitProblem !== undefined) {
    logger.warn(
      { wanted: config.fileLimit, current: fileLimit, problem: fileLimitProblem },
      '-L: cannot set the open-files limit; set it with LimitNOFILE= or ulimit -n',
    );
  } else if (
    config.fileLimit !== undefined &&
    fileLimit !== undefined &&
    fileLimit < config.fileLimit
  ) {
    logger.warn(
      { wanted: config.fileLimit, current: fileLimit },
      '-L: the open-files limit is lower than asked',
    );
  }
  logger.info(
    {
      portPairs: c.portPairs,
      sessionsByPorts: c.sessionsByPorts,
      fileLimit: c.fileLimit ?? 'unknown',
      filesPerSession: c.filesPerSession,
      sessionsByFiles: c.sessionsByFiles ?? 'unknown',
    },
    'capacity',
  );
  if (c.sessionsByFiles !== undefined && c.sessionsByFiles < c.sessionsByPorts) {
    logger.warn(
      {
        sessionsByFiles: c.sessionsByFiles,
        sessionsByPorts: c.sessionsByPorts,
        filesNeeded: c.filesNeeded,
      },
      `the open-files limit allows ${String(c.sessionsByFiles)} sessions but the port range ${String(c.sessionsByPorts)}; raise it to ${String(c.filesNeeded)} (-L, LimitNOFILE= or ulimit -n) or narrow -m/-M`,
    );
  }
}

/** One line for each option that is accepted for compatibility but has no effect here. */
function logUnappliedOptions(logger: Logger, raw: RawOptions, config: Config): void {
  if (raw.schedPolicy !== undefined) {
    logger.warn(
      { policy: raw.schedPolicy },
      '-c: real-time scheduling is accepted but not applied',
    );
  }
  if (raw.advertised !== undefined && !config.bridge) {
    logger.warn(
      { advertised: raw.advertised },
      '-A: ignored outside bridge mode (as in the reference); give the advertised address as -l ADDR=ADV',
    );
  }
  if (raw.configFile !== undefined) {
    logger.warn(
      { file: raw.configFile },
      '--config: module configuration is accepted but not applied',
    );
  }
  for (const file of raw.dso) {
    logger.warn({ file }, '--dso: module loading is accepted but not applied');
  }
}

function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && 'code' in err;
}

function writeStream(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    stream.write(text, () => {
      resolve();
    });
  });
}

function writeStdout(text: string): Promise<void> {
  return writeStream(process.stdout, text);
}

function writeStderr(text: string): Promise<void> {
  return writeStream(process.stderr, text);
}

/** Runs {@link main} on this process's arguments and exits with its status. */
export async function run(): Promise<never> {
  let code: number;
  try {
    code = await main(process.argv.slice(2));
  } catch (err) {
    await writeStderr(
      `rtpproxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    code = 1;
  }
  process.exit(code);
}

/** True when this module is the program being run (bin/rtpproxy.js calls {@link run} itself). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  let real: string;
  try {
    real = realpathSync(script);
  } catch {
    return false;
  }
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === real;
  } catch {
    return false;
  }
}

if (isEntryPoint()) void run();
