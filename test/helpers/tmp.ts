/** Temporary directories for tests, removed with everything in them when the test ends. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The part of tap's Test this helper uses. */
export interface WithTeardown {
  teardown(fn: () => unknown): void;
}

/**
 * A fresh directory `rtpp-NAME-XXXXXX` under `base`, the system's temporary directory unless given
 * (e.g. /dev/shm for another file system).
 */
export function tempDir(t: WithTeardown, name: string, base = tmpdir()): string {
  const dir = mkdtempSync(path.join(base, `rtpp-${name}-`));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
