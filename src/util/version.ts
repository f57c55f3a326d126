/** The package's version, for `-v` and the metrics. */
import { readFileSync } from 'node:fs';

/** Fixed by the build in a bundle (scripts/build.mjs). */
declare const RTPPROXY_BUNDLED_VERSION: string | undefined;

/** The version in package.json, or the one the bundle was built with. */
export function packageVersion(): string {
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
