/** Temporary directories for tests, removed with everything in them when the test ends. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The part of tap's Test this helper uses. */
export interface WithTeardown {
  teardown(fn: () => unknown): void;
}

/** A fresh directory `rtpp-NAME-XXXXXX` under the system's temporary directory. */
export function tempDir(t: WithTeardown, name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `rtpp-${name}-`));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
