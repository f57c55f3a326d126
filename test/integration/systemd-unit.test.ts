/**
 * packaging/rtpproxy.service and packaging/rtpproxy.default (issue 3): the unit passes
 * `systemd-analyze verify` (skipped, with the reason printed, where that tool is missing), has
 * the settings operations.md promises, and every RTPPROXY_OPTS line of the options file (the
 * active one and the commented recipes) is a valid command line for the daemon.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from '../helpers/tmp.ts';
import { computeCapacity } from '../../src/cli/capacity.ts';
import { buildConfig, DEFAULTS, isConfigErrors } from '../../src/cli/config.ts';
import { parseOptions } from '../../src/cli/options.ts';

const UNIT = new URL('../../packaging/rtpproxy.service', import.meta.url);
const DEFAULTS_FILE = new URL('../../packaging/rtpproxy.default', import.meta.url);
const unit = readFileSync(UNIT, 'utf8');

/** `Key=value` settings of the unit, in order (comments and sections left out). */
const settings = unit
  .split('\n')
  .filter((l) => /^[A-Za-z]+=/.test(l))
  .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const);
const get = (key: string): string[] => settings.filter(([k]) => k === key).map(([, v]) => v);

function which(tool: string): string | undefined {
  try {
    return (
      execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

const analyze = which('systemd-analyze');
const noAnalyze =
  analyze === undefined ? 'systemd-analyze is not installed (apt-get install systemd)' : false;
if (noAnalyze !== false) console.log(`# skipping systemd-analyze verify: ${noAnalyze}`);

t.test('systemd-analyze verify accepts the unit', { skip: noAnalyze }, async (t) => {
  const dir = tempDir(t, 'unit');
  const copy = join(dir, 'rtpproxy.service');
  copyFileSync(UNIT, copy);
  // verify checks that ExecStart's program exists; use this machine's node if it lives elsewhere.
  try {
    accessSync('/usr/bin/node', constants.X_OK);
  } catch {
    writeFileSync(copy, unit.replaceAll('/usr/bin/node', process.execPath));
  }
  const r = spawnSync(analyze ?? 'systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('rtpproxy.service'));
  t.equal(r.status, 0, 'exit status 0', { output: `${r.stdout}${r.stderr}` });
  t.same(ours, [], 'no complaint about the unit');
});

t.test('the unit runs the daemon in the foreground under its own user, hardened', async (t) => {
  t.same(get('Type'), ['exec'], 'foreground process: Type=exec');
  const exec = get('ExecStart')[0] ?? '';
  t.match(exec, / -f /, 'with -f');
  t.match(exec, / -p \/run\/rtpproxy\/rtpproxy\.pid /, 'pid file in the runtime directory');
  t.match(exec, /\$RTPPROXY_OPTS$/, 'options from the environment file');
  t.match(
    get('ExecStartPost')[0] ?? '',
    /\/run\/rtpproxy\/rtpproxy\.pid/,
    'ready once the pid file is written',
  );
  t.same(get('User'), ['rtpproxy']);
  t.same(get('Group'), ['rtpproxy']);
  t.same(get('RuntimeDirectory'), ['rtpproxy']);
  t.same(get('ExecReload'), ['/bin/kill -HUP $MAINPID'], 'reload = drain (SIGHUP)');
  t.same(get('Restart'), ['on-failure']);
  t.same(get('EnvironmentFile'), ['-/etc/default/rtpproxy']);
  t.same(get('ProtectSystem'), ['strict']);
  t.same(get('NoNewPrivileges'), ['yes']);
  t.same(get('CapabilityBoundingSet'), [''], 'no capabilities');
  t.match(get('ReadWritePaths')[0] ?? '', /\/var\/lib\/rtpproxy/, 'recording directories writable');
  const needed = computeCapacity(
    {
      portMin: DEFAULTS.portMin,
      portMax: DEFAULTS.portMax - 2,
      recordAll: false,
      pcap: false,
      noRtcpRecord: false,
    },
    undefined,
  ).filesNeeded;
  t.ok(
    Number(get('LimitNOFILE')[0]) >= needed,
    `LimitNOFILE covers the default port range (${String(needed)})`,
  );
});

t.test('every RTPPROXY_OPTS line of the options file is a valid command line', async (t) => {
  const lines = readFileSync(DEFAULTS_FILE, 'utf8')
    .split('\n')
    .map((l) => /^#?RTPPROXY_OPTS="([^"]*)"$/.exec(l)?.[1])
    .filter((v): v is string => v !== undefined);
  t.ok(lines.length >= 5, 'the active line and the recipes');
  t.equal(
    readFileSync(DEFAULTS_FILE, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('RTPPROXY_OPTS=')).length,
    1,
    'exactly one active line',
  );
  for (const opts of lines) {
    // As systemd expands $RTPPROXY_OPTS: split at whitespace, after the unit's own -f and -p.
    const parsed = parseOptions(['-f', '-p', '/run/rtpproxy/rtpproxy.pid', ...opts.split(/\s+/)]);
    t.ok(parsed.ok, opts);
    if (!parsed.ok) continue;
    const config = buildConfig(parsed.options);
    t.notOk(isConfigErrors(config), `valid: ${opts}`, {
      errors: isConfigErrors(config) ? config : [],
    });
    t.notOk(opts.includes(' -p ') || opts.includes(' -u '), 'no -p or -u in the options');
  }
});
