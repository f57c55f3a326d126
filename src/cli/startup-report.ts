/**
 * What the daemon says once at start: the options accepted for compatibility but not applied,
 * and how many calls it can hold (the arithmetic is capacity.ts).
 */
import type { Logger } from 'pino';
import type { Config } from '../base/config.ts';
import { computeCapacity } from './capacity.ts';
import { currentFileLimit } from './file-limit.ts';
import type { RawOptions } from './options.ts';

/**
 * Logs once at start how many calls the daemon can really hold: by port range and by open-files
 * limit, warning when the limit is the smaller one (or -L could not be applied).
 */
export function reportCapacity(
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
export function logUnappliedOptions(logger: Logger, raw: RawOptions, config: Config): void {
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
