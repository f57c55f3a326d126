/**
 * The options that print something and exit (`-v`, `-V`, `-C`): the capabilities, the version
 * and the clock name, as the reference prints them.
 */
import { BASE_VERSION, supportedCapabilities } from '../control/capabilities.ts';
import { buildConfig, isConfigErrors } from './config.ts';
import type { RawOptions } from './options.ts';
import { packageVersion } from '../util/version.ts';
import { writeStdout } from './process-io.ts';

/** Name of the monotonic clock printed by `-C` (Node's timers and performance.now() use it). */
const CLOCK_NAME = 'CLOCK_MONOTONIC';

/** Prints what `raw.info` asks for; resolves with the exit status. */
export async function printInfo(raw: RawOptions): Promise<number> {
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
