/**
 * Entry point: the orchestration of a run. Parses and validates the command line, answers the
 * info options, checks the host, goes to the background or runs the daemon in the foreground.
 * Exit statuses follow the reference: 0 clean stop or -v/-V/-C, 1 usage/config/start-up/runtime
 * failure, 128+signal when a second stop signal arrives while stopping (lifecycle.ts).
 */
import { setPriority } from 'node:os';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../base/config.ts';
import type { DaemonHandle } from '../daemon-types.ts';
import { formatSocketSpec } from '../control/socket-spec.ts';
import { createLogger } from '../util/logger.ts';
import { errorMessage } from '../util/error-message.ts';
import { buildConfig, isConfigErrors } from './config.ts';
import { daemonize, sendToParent, takeDaemonChildMarker } from './daemonize.ts';
import { checkFileLimit, setFileLimit } from './file-limit.ts';
import { checkLocalAddresses, checkRecordDirs, resolveAddresses } from './host-checks.ts';
import { printInfo } from './info.ts';
import { ProcessLifecycle } from './lifecycle.ts';
import { parseOptions, USAGE, type RawOptions } from './options.ts';
import { checkRoot, dropPrivileges, resolveCredentials } from './privileges.ts';
import { writeStderr } from './process-io.ts';
import { logUnappliedOptions, reportCapacity } from './startup-report.ts';

export { stopSignals } from './lifecycle.ts';

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

  const isDaemonChild = takeDaemonChildMarker();

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

  if (!resolved.foreground && !isDaemonChild) {
    return daemonize(process.argv[1] ?? fileURLToPath(import.meta.url), argv, resolved);
  }
  return runDaemon(resolved, raw, isDaemonChild);
}

/**
 * The foreground code path (also run by the background process): start the daemon, write the pid
 * file, serve until a signal or the end of a graceful drain.
 */
async function runDaemon(config: Config, raw: RawOptions, isDaemonChild: boolean): Promise<number> {
  const logger = createLogger(config.logLevel);
  const life = new ProcessLifecycle(logger, config.pidFile);
  life.installFatalHandlers();

  logUnappliedOptions(logger, raw, config);
  // The daemon's modules are loaded before -L applies: loading opens each source file.
  const { createDaemon } = await import('../daemon.ts');
  const fileLimitProblem =
    config.fileLimit === undefined ? undefined : setFileLimit(config.fileLimit);

  life.installSignalHandlers();

  const handle: DaemonHandle = createDaemon(config, logger, {
    onDrained: () => {
      logger.info('the last session is gone');
      // Called from inside the command that removed the last session (D, or an expiry): let its
      // reply leave before the control sockets close, as the reference checks only in its main loop.
      setImmediate(() => void life.stop('drained'));
    },
    onStdioEof: () => {
      life.drain('end of input on the stdio control socket');
    },
    onDrainRequested: (reason) => {
      life.drain(reason);
    },
    onFatal: (err) => {
      logger.fatal({ err }, 'media relay failed, stopping');
      void life.stop('media worker failure', true);
    },
  });

  life.attach(handle);
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
  // A signal handler may have stopped it during start().
  if (life.stopping) return life.finished;
  // A SIGHUP that came while the daemon was being created.
  if (life.draining) handle.drain();

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

  life.writePidFile();

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
      ...(handle.httpPort === undefined ? {} : { httpPort: handle.httpPort }),
    },
    'ready',
  );
  if (isDaemonChild) {
    await sendToParent({ type: 'ready' });
    if (process.connected) process.disconnect();
  }
  return life.finished;

  async function failStart(message: string): Promise<number> {
    logger.fatal(message);
    if (isDaemonChild) await sendToParent({ type: 'error', message });
    else await writeStderr(`rtpproxy: ${message}\n`);
    await handle.close().catch(() => undefined);
    life.removePidFile();
    return 1;
  }
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
