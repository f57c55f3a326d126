// Which code the bin scripts run: the compiled JavaScript in dist/ (built by `npm run build`, which
// `npm ci` and `npm install` run as `prepare`), or the TypeScript sources in src/ through tsx.
// The sources run when RTPPROXY_FROM_SOURCE=1 (the tests set it, see package.json's tap config),
// when there is no dist/, and when a file in src/ is newer than the build, so that a dist/ left
// from an older checkout never runs in place of the code beside it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const DIST = new URL('../dist/', import.meta.url);
const SRC = new URL('../src/', import.meta.url);

/**
 * The URL of `file` in dist/ (e.g. `cli/main.js`) when the compiled code is to run, undefined
 * when the sources are.
 */
export function compiledEntry(file) {
  if (process.env.RTPPROXY_FROM_SOURCE === '1') return undefined;
  const entry = new URL(file, DIST);
  let built;
  try {
    built = statSync(entry).mtimeMs;
  } catch {
    return undefined;
  }
  if (existsSync(SRC) && newestMtime(fileURLToPath(SRC), 0) > built) return undefined;
  return entry;
}

/** The newest modification time of the files under `dir` (depth bounded, as src/ is shallow). */
function newestMtime(dir, depth) {
  let newest = 0;
  if (depth > 8) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, depth + 1));
    else if (entry.isFile()) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}
