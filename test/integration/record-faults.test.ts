/**
 * Recording faults in a running daemon (issue 4, docs/protocol.md 6): a full disk stops the recording
 * with one log line while media keeps flowing, and no recording file is left open or spooled
 * after X.
 */
import { existsSync, readdirSync, readlinkSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { waitUntil } from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Descriptors of this process that point into `dir`. */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // Closed meanwhile.
    }
  }
  return open;
}

const noDevFull = existsSync('/dev/full') ? false : '/dev/full is not available';
t.test(
  'a full disk stops the recording with one log line; media keeps flowing',
  { skip: noDevFull },
  async (t) => {
    const dir = tempDir(t, 'full');
    const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(44), '-r', dir], {
      captureLogs: true,
    });
    // The named copy's RTP file is /dev/full: every write fails with ENOSPC.
    symlinkSync('/dev/full', path.join(dir, 'full.rtp'));
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const c = uniqueCall(t.name);
    const toB = await d.port(`U ${c.id} 127.0.0.1 ${String(a.port)} ${c.from}`);
    const toA = await d.port(`L ${c.id} 127.0.0.1 ${String(b.port)} ${c.from} ${c.to}`);
    t.equal(await d.command(`C ${c.id} full ${c.from} ${c.to}`), '0\n');
    // 200 packets of 202 recorded bytes: several 16 KiB writes, all failing.
    for (let seq = 1; seq <= 200; seq += 1) {
      const p = rtpPacket({ seq, ssrc: 0x77 });
      await a.send(p, toA);
      await b.expect(p, toB);
    }
    await waitUntil(
      () => d.logs.some((l) => l.msg === 'recording stopped'),
      'the failure is logged',
    );
    const p = rtpPacket({ seq: 201, ssrc: 0x77 });
    await a.send(p, toA);
    await b.expect(p, toB);
    const stopped = d.logs.filter((l) => l.msg === 'recording stopped');
    t.equal(stopped.length, 1, 'one log line');
    t.match(stopped[0], { code: 'ERR_RECORD_WRITE', level: 40 });
    t.match((stopped[0]?.['err'] as { message?: string } | undefined)?.message ?? '', /ENOSPC/);
    t.equal(await d.command(`N ${c.id} ${c.from} ${c.to}`), '0\n', 'N still stops it');
    // The recorder closes asynchronously after N: its descriptors go away shortly after.
    await waitUntil(
      () => openFilesUnder(dir).length === 0 && openFilesUnder('/dev/full').length === 0,
      'the failed recording released its files',
    );
  },
);

t.test('no file is left open or in the spool after X', async (t) => {
  const dir = tempDir(t, 'leak');
  const spool = tempDir(t, 'leak-spool');
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(44), '-r', dir, '-S', spool], {
    captureLogs: true,
  });
  const calls = [];
  for (let i = 0; i < 3; i += 1) {
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const c = uniqueCall(t.name);
    const toB = await d.port(`U ${c.id} 127.0.0.1 ${String(a.port)} ${c.from}`);
    const toA = await d.port(`L ${c.id} 127.0.0.1 ${String(b.port)} ${c.from} ${c.to}`);
    t.equal(await d.command(`R ${c.id} ${c.from} ${c.to}`), '0\n');
    t.equal(await d.command(`R ${c.id} ${c.to} ${c.from}`), '0\n');
    const p = rtpPacket({ seq: 1, ssrc: i });
    await a.send(p, toA);
    await b.expect(p, toB);
    calls.push(c);
  }
  t.equal(readdirSync(spool).length, 12, 'four files per call written in the spool');
  t.ok(openFilesUnder(spool).length > 0);
  t.equal(await d.command('X'), '0\n');
  await waitUntil(() => readdirSync(dir).length === 12, 'every file moved into -r');
  t.same(readdirSync(spool), [], 'nothing left in the spool');
  await waitUntil(
    () => openFilesUnder(spool).length === 0 && openFilesUnder(dir).length === 0,
    'no descriptor left in the spool or the record directory',
  );
  for (const c of calls) t.ok(existsSync(path.join(dir, `${c.id}=${c.from}.o.rtp`)));
});
