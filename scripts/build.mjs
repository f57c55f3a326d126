#!/usr/bin/env node
// `npm run build` (run by `npm ci` and `npm install` as `prepare`): the installed programs' code.
//
// Each program is bundled by esbuild into one CommonJS file in dist/ (the daemon, its media
// worker, the three tools): one file to read and compile at start instead of some eighty modules and
// their dependencies. Type checking is `npm run typecheck`'s job; esbuild only strips the types.
//
// The daemon's bundle then gets a V8 code cache (dist/rtpproxy.cjs.cache): the build starts the
// daemon once on a loopback port, asks it `V`, stops it, and keeps the compiled code of everything
// that ran. bin/entry.js hands the cache to V8 when it loads the bundle; V8 checks that it matches
// the bundle and its own version and flags, and compiles from source when it does not. Start-up
// figures are in docs/performance.md.
//
// usage: node scripts/build.mjs [--out DIR]    (default: dist/ in the package)
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({ options: { out: { type: 'string' } } });
const OUT = resolve(values.out ?? join(ROOT, 'dist'));

/** The programs: entry point in src/, bundle name in dist/. */
const PROGRAMS = [
  { entry: 'src/cli/main.ts', out: 'rtpproxy.cjs' },
  { entry: 'src/media/worker/media-worker.ts', out: 'media-worker.cjs' },
  { entry: 'src/tools/makeann.ts', out: 'makeann.cjs' },
  { entry: 'src/tools/extract.ts', out: 'extract.cjs' },
  { entry: 'src/tools/ctl.ts', out: 'ctl.cjs' },
];

/** How long the cache-writing daemon may take to answer and to exit. */
const CACHE_DEADLINE_MS = 30_000;

const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;

rmSync(OUT, { recursive: true, force: true });
await build({
  entryPoints: PROGRAMS.map((p) => ({ in: join(ROOT, p.entry), out: p.out.replace(/\.cjs$/, '') })),
  outdir: OUT,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // A bundle has no import.meta: its URL is the bundle's own file, and the version is fixed here.
  banner: { js: "var __bundle_url = require('node:url').pathToFileURL(__filename).href;" },
  define: {
    'import.meta.url': '__bundle_url',
    RTPPROXY_BUNDLED_VERSION: JSON.stringify(version),
  },
  logLevel: 'warning',
});

await writeCodeCache();

/**
 * Starts the bundled daemon with RTPPROXY_WRITE_CODE_CACHE=1 (bin/entry.js writes the cache as it
 * exits), waits for its answer to `V`, and stops it. A build without a cache still runs, only
 * slower to start, so a failure here is a warning.
 */
async function writeCodeCache() {
  const socket = dgram.createSocket('udp4');
  await new Promise((done, fail) => {
    socket.once('error', fail);
    socket.bind(0, '127.0.0.1', done);
  });
  const port = await freeUdpPort();
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'rtpproxy.js'),
      '-f',
      '-F',
      '--nft',
      'off',
      '--workers',
      '0',
      '-s',
      `udp:127.0.0.1:${String(port)}`,
      '-l',
      '127.0.0.1',
      '-p',
      '/dev/null',
      '-d',
      'ERR',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: cacheEnv() },
  );
  const exited = new Promise((done) => child.once('exit', done));
  const answered = new Promise((done) => socket.once('message', done));
  const probe = setInterval(() => socket.send('1 V', port, '127.0.0.1'), 20);
  let timer;
  const deadline = new Promise((done) => {
    timer = setTimeout(done, CACHE_DEADLINE_MS, 'timeout');
  });
  const first = await Promise.race([answered, exited, deadline]);
  clearInterval(probe);
  socket.close();
  if (first === 'timeout' || child.exitCode !== null) {
    clearTimeout(timer);
    child.kill('SIGKILL');
    console.warn('build: the daemon did not answer; no code cache (start-up is slower)');
    return;
  }
  child.kill('SIGTERM');
  await Promise.race([exited, deadline]);
  clearTimeout(timer);
  if (child.exitCode === null) child.kill('SIGKILL');
  if (!existsSync(join(OUT, 'rtpproxy.cjs.cache'))) {
    console.warn('build: no code cache was written (start-up is slower)');
  }
}

function cacheEnv() {
  const env = { ...process.env, RTPPROXY_DIST: OUT, RTPPROXY_WRITE_CODE_CACHE: '1' };
  delete env.RTPPROXY_FROM_SOURCE;
  return env;
}

/** A free UDP port on 127.0.0.1 (bound on port 0, then released). */
async function freeUdpPort() {
  const probe = dgram.createSocket('udp4');
  await new Promise((done, fail) => {
    probe.once('error', fail);
    probe.bind(0, '127.0.0.1', done);
  });
  const { port } = probe.address();
  await new Promise((done) => probe.close(done));
  return port;
}
