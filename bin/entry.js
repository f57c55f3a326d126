// Which code the bin scripts run: the bundles in dist/ (built by `npm run build`, which `npm ci`
// and `npm install` run as `prepare`; see scripts/build.mjs), or the TypeScript sources in src/
// through tsx. The sources run when RTPPROXY_FROM_SOURCE=1 (the tests set it, see package.json's
// tap config), when there is no dist/, and when a file in src/ is newer than the build, so that a
// dist/ left from an older checkout never runs in place of the code beside it. RTPPROXY_DIST
// names another build directory (the build itself uses it to write the code cache).
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { fileURLToPath, URL } from 'node:url';
import { Script } from 'node:vm';

const DIST =
  process.env.RTPPROXY_DIST === undefined
    ? fileURLToPath(new URL('../dist/', import.meta.url))
    : `${process.env.RTPPROXY_DIST}/`;
const SRC = new URL('../src/', import.meta.url);

/**
 * The exports of bundle `file` of dist/ (e.g. `rtpproxy.cjs`) when the compiled code is to run,
 * undefined when the sources are.
 */
export function loadCompiled(file) {
  if (process.env.RTPPROXY_FROM_SOURCE === '1') return undefined;
  const path = `${DIST}${file}`;
  let built;
  try {
    built = statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
  if (existsSync(SRC) && newestMtime(fileURLToPath(SRC), 0) > built) return undefined;
  return runBundle(path);
}

/**
 * Runs a CommonJS bundle as Node's loader would, but compiled with its V8 code cache
 * (`<bundle>.cache`) when there is one: V8 then skips parsing and compiling the code that ran
 * when the cache was made. V8 refuses a cache made for another bundle, V8 version or flags, and
 * compiles from source. With RTPPROXY_WRITE_CODE_CACHE=1 the cache is written as the process
 * exits, holding every function compiled by then.
 */
function runBundle(path) {
  const cacheFile = `${path}.cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache: compile from source
  }
  const script = new Script(Module.wrap(readFileSync(path, 'utf8')), {
    filename: path,
    cachedData,
  });
  if (process.env.RTPPROXY_WRITE_CODE_CACHE === '1') {
    process.once('exit', () => writeFileSync(cacheFile, script.createCachedData()));
  }
  const module = { exports: {}, filename: path, id: path, loaded: false };
  const dir = path.slice(0, path.lastIndexOf('/'));
  script.runInThisContext()(module.exports, createRequire(path), module, path, dir);
  module.loaded = true;
  return module.exports;
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
