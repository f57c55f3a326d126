/**
 * The installed daemon runs compiled JavaScript: `npm run build` (run by `npm ci` and
 * `npm install` as `prepare`) bundles src/ into dist/ with a code cache (scripts/build.mjs), and
 * bin/rtpproxy.js runs dist/ when it is up to date. The other tests run the sources (package.json's
 * tap config sets RTPPROXY_FROM_SOURCE=1), so this one builds its own copy, in a directory that
 * holds the bin scripts, package.json and dist/ but no src/: only the compiled code can run there.
 * It checks the daemon (pid file, V, -v, a session relayed by a media worker, SIGTERM) and the three
 * tools.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { udpCommand, waitUntil, withTimeout } from '../helpers/control.ts';
import { NgClient, sdpOf } from '../helpers/ng.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freeUdpPort, Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILD = join(ROOT, 'scripts', 'build.mjs');
const BUILD_DEADLINE_MS = 180_000;
const DEADLINE_MS = 20_000;
const run = promisify(execFile);

/** The environment of a program run as installed: no RTPPROXY_FROM_SOURCE. */
function installedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['RTPPROXY_FROM_SOURCE'];
  return env;
}

/** A copy of the package with the compiled code only: bin/, package.json, dist/, node_modules. */
async function buildCopy(t: Test): Promise<string> {
  const dir = tempDir(t, 'compiled');
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  await run(process.execPath, [BUILD, '--out', join(dir, 'dist')], {
    cwd: ROOT,
    timeout: BUILD_DEADLINE_MS,
  });
  return dir;
}

t.test('the compiled daemon and tools run without the sources', async (t) => {
  const dir = await buildCopy(t);
  t.ok(existsSync(join(dir, 'dist', 'rtpproxy.cjs')), 'dist/rtpproxy.cjs built');
  t.ok(existsSync(join(dir, 'dist', 'rtpproxy.cjs.cache')), 'with its code cache');
  t.ok(existsSync(join(dir, 'dist', 'media-worker.cjs')), 'the media worker built');
  t.notOk(existsSync(join(dir, 'src')), 'no sources beside it');

  const pidFile = join(dir, 'rtpproxy.pid');
  const port = await freeUdpPort();
  const ngPort = await freeUdpPort();
  const child = spawn(
    process.execPath,
    [
      join(dir, 'bin', 'rtpproxy.js'),
      // No test creates an nftables table in the host's network namespace.
      '--nft',
      'off',
      '-f',
      '-F',
      '-s',
      `udp:127.0.0.1:${String(port)}`,
      '-s',
      `ng:udp:127.0.0.1:${String(ngPort)}`,
      '-l',
      '127.0.0.1',
      ...portWindow(60),
      '-p',
      pidFile,
      '--workers',
      '1',
      '-d',
      'INFO',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: installedEnv() },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : 1)));
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  await waitUntil(
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'),
    'pid file written',
    DEADLINE_MS,
  );
  t.equal(readFileSync(pidFile, 'utf8'), `${String(child.pid)}\n`, 'pid file');
  t.equal(await udpCommand(port, '127.0.0.1', 'V'), '20040107\n', 'V answered');

  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const call = uniqueCall('compiled');
  const offer = await udpCommand(
    port,
    '127.0.0.1',
    `U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`,
  );
  const answer = await udpCommand(
    port,
    '127.0.0.1',
    `L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`,
  );
  const toB = Number(offer.split(' ')[0]);
  const toA = Number(answer.split(' ')[0]);
  t.ok(toA > 0 && toB > 0, `U and L answered ports (${offer.trim()}, ${answer.trim()})`);
  const packet = rtpPacket({ seq: 1, ssrc: 0xc0 });
  await a.send(packet, toA);
  await b.expect(packet, toB);
  t.pass('a packet relayed by the compiled media worker');
  await waitUntil(
    () => stderr.includes('"msg":"media workers running"'),
    'the media worker logged its start',
    DEADLINE_MS,
  );
  t.pass('the media worker started');

  // The ng protocol's libraries (bencode, sdp-transform) are in the bundle.
  const ng = await NgClient.open(t, ngPort);
  const ngCall = uniqueCall('compiledng');
  const ngOffer = await ng.request({
    command: 'offer',
    'call-id': ngCall.id,
    'from-tag': ngCall.from,
    sdp: sdpOf(
      'v=0',
      'o=- 1 1 IN IP4 127.0.0.1',
      's=-',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      `m=audio ${String(a.port)} RTP/AVP 0`,
    ),
  });
  t.equal(ngOffer['result'], 'ok', 'an ng offer answered by the compiled daemon');
  t.match(ngOffer['sdp'], /^m=audio 4[0-9]{4} RTP\/AVP 0\r$/m, 'with the relay port in the SDP');

  child.kill('SIGTERM');
  t.equal(await withTimeout(exited, DEADLINE_MS, 'exit after SIGTERM'), 0, 'exit status 0');
  t.notOk(existsSync(pidFile), 'pid file removed');

  const version = await run(process.execPath, [join(dir, 'bin', 'rtpproxy.js'), '-V'], {
    env: installedEnv(),
    timeout: DEADLINE_MS,
  });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.equal(version.stdout, `rtpproxy ${pkg.version}\n`, '-V gives the package version');
  const capabilities = await run(process.execPath, [join(dir, 'bin', 'rtpproxy.js'), '-v'], {
    env: installedEnv(),
    timeout: DEADLINE_MS,
  });
  t.match(capabilities.stdout, /^Basic version: 20040107\n/, '-v runs compiled');

  for (const tool of ['rtpproxy-makeann', 'rtpproxy-extract', 'rtpproxyctl']) {
    const { stdout } = await run(process.execPath, [join(dir, 'bin', `${tool}.js`), '-h'], {
      env: installedEnv(),
      timeout: DEADLINE_MS,
    });
    t.match(stdout, new RegExp(`^Usage: ${tool} `), `${tool} runs compiled`);
  }
});
