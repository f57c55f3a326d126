/**
 * Exposure of control sockets at start: a warning for a network control socket that other hosts
 * can reach (the protocol has no authentication), none for loopback; unix socket files get mode
 * 0660 (or -w) whatever the umask, and are owner-only between bind and chmod.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { controlSocketExposure } from '../../src/control/exposure.ts';
import { unixCommand } from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { tempDir } from '../helpers/tmp.ts';

const MEDIA = ['-l', '127.0.0.1', '-m', '47200', '-M', '47219'];

function exposureWarnings(logs: readonly { msg: string }[]): string[] {
  return logs.map((l) => l.msg).filter((m) => m.includes('no authentication'));
}

t.test('a control socket on the wildcard address logs a warning at start', async (t) => {
  const d = await startDaemon(t, [...MEDIA, '-s', 'tcp:0.0.0.0:0', '-s', 'udp:*:0'], {
    captureLogs: true,
  });
  const warnings = exposureWarnings(d.logs);
  t.equal(warnings.length, 2, 'one per exposed socket');
  t.match(warnings[0], /tcp:0\.0\.0\.0:0 listens on every interface/);
  t.match(warnings[1], /udp:.*listens on every interface/);
  t.match(warnings[0], /127\.0\.0\.1/, 'says how to fix it');
  t.equal(await d.command('V'), '20040107\n', 'the daemon still starts');
});

t.test('loopback and unix control sockets log no such warning', async (t) => {
  const dir = tempDir(t, 'expo');
  const d = await startDaemon(
    t,
    [...MEDIA, '-s', 'tcp:127.0.0.2:0', '-s', `unix:${path.join(dir, 'c.sock')}`],
    { captureLogs: true },
  );
  t.strictSame(exposureWarnings(d.logs), []);
});

t.test('which bound addresses count as exposed', async (t) => {
  t.equal(controlSocketExposure('0.0.0.0'), 'wildcard');
  t.equal(controlSocketExposure('::'), 'wildcard');
  t.equal(controlSocketExposure('0:0:0:0:0:0:0:0'), 'wildcard');
  t.equal(controlSocketExposure('10.0.0.5'), 'remote');
  t.equal(controlSocketExposure('2001:db8::1'), 'remote');
  t.equal(controlSocketExposure('::ffff:192.0.2.1'), 'remote');
  t.equal(controlSocketExposure('127.0.0.1'), undefined);
  t.equal(controlSocketExposure('127.3.2.1'), undefined);
  t.equal(controlSocketExposure('::1'), undefined);
  t.equal(controlSocketExposure('::ffff:127.0.0.1'), undefined);
});

t.test('unix control sockets get mode 0660 whatever the umask', async (t) => {
  const dir = tempDir(t, 'mode');
  const open = path.join(dir, 'open.sock');
  const strict = path.join(dir, 'strict.sock');
  const w = path.join(dir, 'w.sock');
  const previous = process.umask(0o000);
  try {
    await startDaemon(t, [...MEDIA, '-s', `unix:${open}`]);
  } finally {
    process.umask(previous);
  }
  t.equal(statSync(open).mode & 0o777, 0o660, 'umask 000: not world-writable');
  t.equal(await unixCommand(open, 'V'), '20040107\n');
  process.umask(0o077);
  try {
    await startDaemon(t, [...MEDIA, '-s', `cunix:${strict}`]);
    await startDaemon(t, [...MEDIA, '-s', `unix:${w}`, '-w', String(0o600)]);
  } finally {
    process.umask(previous);
  }
  t.equal(statSync(strict).mode & 0o777, 0o660, 'umask 077: the group may still connect');
  t.equal(statSync(w).mode & 0o777, 0o600, '-w is applied');
  t.equal(process.umask(previous), previous, 'the process umask is left as it was');
});
