import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { tempDir } from '../helpers/tmp.ts';
import { readAdhocHeader } from '../../src/record/adhoc.ts';
import {
  RecorderFactory,
  RecordingError,
  RecordingFile,
  type RecorderFactoryOptions,
} from '../../src/record/recorder.ts';
import { readPcapFile } from '../helpers/pcap-reader.ts';

const execFileP = promisify(execFile);

const SHM = '/dev/shm';
/** Why the cross-device test is skipped, or false to run it. */
const crossDeviceSkip: string | false =
  !fs.existsSync(SHM) || fs.statSync(SHM).dev === fs.statSync(os.tmpdir()).dev
    ? `${SHM} is missing or on the same file system as ${os.tmpdir()}`
    : false;

/** Path of tshark, or '' when it is not installed (we never install it). */
const TSHARK = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v tshark'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
})();
if (TSHARK === '') t.comment('tshark is not installed: skipping the external pcap check');

/** A fresh temporary directory removed at teardown. */
function tmpDir(t: Test, base = os.tmpdir()): string {
  return tempDir(t, 'rec', base);
}

/** A recognisable RTP packet: sequence `seq`, `size` bytes in all. */
function rtp(seq: number, size = 172): Buffer {
  const buf = Buffer.alloc(size, seq & 0xff);
  buf.writeUInt8(0x80, 0);
  buf.writeUInt8(0, 1);
  buf.writeUInt16BE(seq, 2);
  buf.writeUInt32BE(seq * 160, 4);
  buf.writeUInt32BE(0x1234, 8);
  return buf;
}

/** A minimal RTCP receiver report (8 bytes). */
const RTCP = Buffer.from('81c90001 00001234'.replace(/\s/g, ''), 'hex');

const ALICE = { address: '127.0.0.1', port: 46548 };
const BOB = { address: '127.0.0.2', port: 40000 };
const RELAY_A = { address: '127.0.0.1', port: 35000 };
const RELAY_B = { address: '127.0.0.1', port: 35002 };
const T0 = 1_700_000_000_000;

/** Parses a whole ad-hoc file into its records. */
function readAdhocFile(
  file: Buffer,
): { port: number; address: string; time: number; packet: Buffer }[] {
  const out: { port: number; address: string; time: number; packet: Buffer }[] = [];
  let at = 0;
  while (at < file.length) {
    const view = readAdhocHeader(file, at);
    if (view === undefined) throw new Error(`bad record at ${at}`);
    out.push({
      port: view.port,
      address: [...view.address].join('.'),
      time: view.time,
      packet: file.subarray(view.packetOffset, view.packetOffset + view.length),
    });
    at = view.packetOffset + view.length;
  }
  return out;
}

function factory(
  t: Test,
  opts: Partial<RecorderFactoryOptions> & { recordDir: string },
): RecorderFactory {
  const f = new RecorderFactory({ pcap: false, noRtcp: false, ...opts });
  t.teardown(() => f.close());
  return f;
}

t.test('recorder writes ad-hoc RTP and RTCP files named after call-id, tag and leg', async (t) => {
  const dir = tmpDir(t);
  const errors: RecordingError[] = [];
  const f = factory(t, { recordDir: dir, onError: (e) => errors.push(e) });
  const rec = f.forLeg('cid', 'from_tag_1;1', 1, false);
  t.equal(rec.combined, false);
  t.same(rec.paths, [
    path.join(dir, 'cid=from_tag_1.o.rtp'),
    path.join(dir, 'cid=from_tag_1.o.rtcp'),
  ]);
  for (let i = 0; i < 3; i++) rec.record(rtp(i), true, ALICE, RELAY_A, 4, T0 + 20 * i);
  rec.record(RTCP, false, { address: '127.0.0.1', port: 46549 }, RELAY_A, 4, T0 + 100);
  t.match(rec.stats(), { records: 4, dropped: 0, failed: 0 });
  await rec.close();
  t.same(errors, []);

  const rtpRecords = readAdhocFile(fs.readFileSync(path.join(dir, 'cid=from_tag_1.o.rtp')));
  t.equal(rtpRecords.length, 3);
  rtpRecords.forEach((r, i) => {
    t.same(r.packet, rtp(i));
    t.equal(r.port, 46548);
    t.equal(r.address, '127.0.0.1');
    t.equal(r.time, (T0 + 20 * i) / 1000);
  });
  const rtcpRecords = readAdhocFile(fs.readFileSync(path.join(dir, 'cid=from_tag_1.o.rtcp')));
  t.equal(rtcpRecords.length, 1);
  t.same(rtcpRecords[0]?.packet, RTCP);
  t.equal(rtcpRecords[0]?.port, 46549);
  t.match(rec.stats(), { records: 4, bytesWritten: 3 * (30 + 172) + 30 + 8 });
});

t.test('recorder with -R creates no RTCP file and ignores RTCP', async (t) => {
  const dir = tmpDir(t);
  const f = factory(t, { recordDir: dir, noRtcp: true });
  const rec = f.forLeg('cid', 'tag', 0, false);
  rec.record(RTCP, false, ALICE, RELAY_A, 4, T0);
  rec.record(rtp(1), true, ALICE, RELAY_A, 4, T0);
  await rec.close();
  t.same(fs.readdirSync(dir), ['cid=tag.a.rtp']);
  t.equal(readAdhocFile(fs.readFileSync(path.join(dir, 'cid=tag.a.rtp'))).length, 1);
});

t.test('combined pcap file is shared by both legs and closes with the last one', async (t) => {
  const dir = tmpDir(t);
  const f = factory(t, { recordDir: dir, pcap: true });
  const o = f.forLeg('cid', 'ft;1', 1, true);
  const a = f.forLeg('cid', 'ft;2', 0, true);
  t.equal(f.openFiles, 1);
  t.same(o.paths, [path.join(dir, 'cid=ft.pcap')]);
  t.same(a.paths, o.paths);
  o.record(rtp(1), true, ALICE, RELAY_A, 4, T0);
  a.record(rtp(2), true, BOB, RELAY_B, 4, T0 + 1);
  // 6.5: RTCP in a combined file is written as the relay sends it on (caller passes those addresses).
  o.record(RTCP, false, RELAY_B, BOB, 4, T0 + 2);
  a.record(rtp(3, 33), true, BOB, RELAY_B, 4, T0 + 3);
  await o.close();
  t.equal(f.openFiles, 1, 'still open for the other leg');
  a.record(rtp(4), true, BOB, RELAY_B, 4, T0 + 4);
  await a.close();
  await a.close();
  t.equal(f.openFiles, 0);

  const { global, records } = readPcapFile(fs.readFileSync(path.join(dir, 'cid=ft.pcap')));
  t.match(global, {
    magic: 0xa1b2c3d4,
    major: 2,
    minor: 4,
    zone: 0,
    sigfigs: 0,
    snaplen: 65535,
    linktype: 1,
  });
  t.equal(records.length, 5);
  const ports = records.map((r) => [r.srcPort, r.dstPort]);
  t.same(ports, [
    [46548, 35000],
    [40000, 35002],
    [35002, 40000],
    [40000, 35002],
    [40000, 35002],
  ]);
  t.same(
    records.map((r) => r.payload.length),
    [172, 172, 8, 33, 172],
  );
  for (const r of records) {
    t.ok(r.ipChecksumOk && r.udpChecksumOk, 'checksums verify');
    t.equal(r.ttl, 127);
  }
  const ids = records.map((r) => r.ipId);
  for (let i = 1; i < ids.length; i++) {
    t.equal(ids[i], ((ids[i - 1] ?? 0) + 1) & 0xffff, 'one global id counter');
  }
  t.same(
    records.map((r) => r.sec * 1000 + r.usec / 1000),
    [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4],
  );
});

t.test('separate pcap files carry IPv6 records', async (t) => {
  const dir = tmpDir(t);
  const f = factory(t, { recordDir: dir, pcap: true });
  const rec = f.forName('named', false);
  t.same(rec.paths, [path.join(dir, 'named.rtp'), path.join(dir, 'named.rtcp')]);
  rec.record(rtp(7), true, { address: '::1', port: 5000 }, { address: '::1', port: 35000 }, 6, T0);
  await rec.close();
  const { records } = readPcapFile(fs.readFileSync(path.join(dir, 'named.rtp')));
  t.equal(records.length, 1);
  t.equal(records[0]?.family, 6);
  t.ok(records[0]?.udpChecksumOk);
  t.same(readPcapFile(fs.readFileSync(path.join(dir, 'named.rtcp'))).records, [], 'header only');
});

t.test('spooled files move into the record directory on close', async (t) => {
  const dir = tmpDir(t);
  const spool = tmpDir(t);
  const f = factory(t, { recordDir: dir, spoolDir: spool, pcap: true });
  const rec = f.forLeg('cid', 'tag', 1, true);
  rec.record(rtp(1), true, ALICE, RELAY_A, 4, T0);
  t.same(fs.readdirSync(spool), ['cid=tag.pcap'], 'written in the spool dir');
  t.same(fs.readdirSync(dir), [], 'not yet in the record dir');
  await rec.close();
  t.same(fs.readdirSync(spool), []);
  t.same(fs.readdirSync(dir), ['cid=tag.pcap']);
  t.equal(readPcapFile(fs.readFileSync(path.join(dir, 'cid=tag.pcap'))).records.length, 1);
});

t.test(
  'spooled files move across file systems by copy and unlink',
  { skip: crossDeviceSkip },
  async (t) => {
    const dir = tmpDir(t);
    const spool = tmpDir(t, SHM);
    const errors: RecordingError[] = [];
    const f = factory(t, { recordDir: dir, spoolDir: spool, onError: (e) => errors.push(e) });
    const rec = f.forName('x', false);
    rec.record(rtp(1), true, ALICE, RELAY_A, 4, T0);
    await rec.close();
    t.same(errors, []);
    t.same(fs.readdirSync(spool), []);
    t.same(fs.readdirSync(dir).sort(), ['x.rtcp', 'x.rtp']);
    t.equal(readAdhocFile(fs.readFileSync(path.join(dir, 'x.rtp'))).length, 1);
  },
);

t.test('a directory that cannot hold files gives a clear error and no crash', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'file.txt');
  fs.writeFileSync(file, 'not a directory');
  // chmod 0500 would not stop root (CI runs as root): a path under a regular file always fails.
  const f = factory(t, { recordDir: path.join(file, 'sub') });
  const err = t.throws(() => f.forLeg('cid', 'tag', 1, false));
  t.ok(err instanceof RecordingError);
  t.match(err, {
    code: 'ERR_RECORD_OPEN',
    message: /cannot create recording file .*cid=tag\.o\.rtp: ENOTDIR/,
  });
  t.equal(f.openFiles, 0);

  const spooled = factory(t, { recordDir: dir, spoolDir: path.join(file, 'spool') });
  t.throws(() => spooled.forName('n', true), { code: 'ERR_RECORD_OPEN' });
  t.equal(spooled.openFiles, 0);
});

t.test('unsafe names are refused before touching the file system', async (t) => {
  const dir = tmpDir(t);
  const f = factory(t, { recordDir: dir, pcap: true });
  for (const name of ['../x', '/etc/passwd', 'a\0b', 'x'.repeat(300), '']) {
    t.throws(
      () => f.forName(name, true),
      { code: 'ERR_RECORD_NAME' },
      JSON.stringify(name.slice(0, 20)),
    );
  }
  t.throws(() => f.forLeg('a\0', 't', 0, false), { code: 'ERR_RECORD_NAME' });
  const slash = f.forLeg('../../etc/x', 't/u', 0, true);
  t.same(slash.paths, [path.join(dir, '.._.._etc_x=t_u.pcap')], 'call-id "/" replaced by "_"');
  await slash.close();
  fs.mkdirSync(path.join(dir, 'sub'));
  const nested = f.forName('sub/call', true);
  await nested.close();
  t.ok(fs.existsSync(path.join(dir, 'sub', 'call')), 'C NAME may use an existing subdirectory');
  t.same(fs.readdirSync(dir).sort(), ['.._.._etc_x=t_u.pcap', 'sub']);
});

const noDevFull = fs.existsSync('/dev/full') ? false : '/dev/full is not available';
t.test(
  'a write error stops the file, is reported once and never throws',
  { skip: noDevFull },
  async (t) => {
    const errors: RecordingError[] = [];
    const file = RecordingFile.open({
      path: '/dev/full',
      format: 'pcap',
      flushBytes: 0,
      onError: (e) => errors.push(e),
    });
    file.write(rtp(1), ALICE, RELAY_A, 4, T0);
    file.write(rtp(2), ALICE, RELAY_A, 4, T0);
    await file.close();
    t.equal(errors.length, 1);
    t.match(errors[0], { code: 'ERR_RECORD_WRITE', path: '/dev/full', message: /ENOSPC/ });
    t.equal(file.failed, true);
    t.doesNotThrow(() => file.write(rtp(3), ALICE, RELAY_A, 4, T0));
    t.match(file.stats, { failed: 1, bytesWritten: 0 });
    t.ok(file.stats.dropped >= 1, 'writes after the failure are dropped and counted');
    await file.close();
    t.equal(errors.length, 1, 'still reported once');
  },
);

t.test('a full queue drops records and counts them', async (t) => {
  const dir = tmpDir(t);
  const target = path.join(dir, 'q');
  // Nothing is written before close (huge flush threshold); the queue holds at most 1000 bytes.
  const file = RecordingFile.open({
    path: target,
    format: 'adhoc',
    maxQueueBytes: 1000,
    flushBytes: 1 << 30,
  });
  for (let i = 0; i < 20; i++) file.write(rtp(i, 170), ALICE, RELAY_A, 4, T0 + i);
  t.match(file.stats, { records: 5, dropped: 15 }, '5 x (30 + 170) bytes fit in 1000');
  t.equal(fs.statSync(target).size, 0, 'nothing written yet');
  await file.close();
  const records = readAdhocFile(fs.readFileSync(target));
  t.same(
    records.map((r) => r.packet.readUInt16BE(2)),
    [0, 1, 2, 3, 4],
  );
  file.write(rtp(99), ALICE, RELAY_A, 4, T0);
  t.match(
    file.stats,
    { records: 5, dropped: 16, bytesWritten: 1000 },
    'writes after close are dropped',
  );
});

t.test('large volumes are written in order across many writev calls', async (t) => {
  const dir = tmpDir(t);
  const target = path.join(dir, 'big');
  const file = RecordingFile.open({ path: target, format: 'adhoc', flushBytes: 0 });
  for (let i = 0; i < 3000; i++) {
    file.write(rtp(i & 0xffff, 100 + (i % 50)), ALICE, RELAY_A, 4, T0 + i);
  }
  await file.close();
  const records = readAdhocFile(fs.readFileSync(target));
  t.equal(records.length, 3000);
  t.ok(
    records.every((r, i) => r.packet.readUInt16BE(2) === i && r.packet.length === 100 + (i % 50)),
  );
  t.match(file.stats, { records: 3000, dropped: 0 });
});

t.test(
  'a recorder restarted while the old file is still finishing does not corrupt it',
  async (t) => {
    const dir = tmpDir(t);
    const spool = tmpDir(t);
    const errors: RecordingError[] = [];
    const f = factory(t, {
      recordDir: dir,
      spoolDir: spool,
      pcap: true,
      onError: (e) => errors.push(e),
    });
    const first = f.forLeg('cid', 'tag', 1, true);
    for (let i = 0; i < 50; i++) first.record(rtp(i), true, ALICE, RELAY_A, 4, T0 + i);
    const closing = first.close(); // N ...
    const second = f.forLeg('cid', 'tag', 1, true); // ... then R again at once: truncates again (6.7)
    second.record(rtp(1000), true, ALICE, RELAY_A, 4, T0 + 1000);
    second.record(rtp(1001), true, ALICE, RELAY_A, 4, T0 + 1001);
    await closing;
    await second.close();
    t.same(errors, []);
    t.same(fs.readdirSync(spool), []);
    const { records } = readPcapFile(fs.readFileSync(path.join(dir, 'cid=tag.pcap')));
    t.same(
      records.map((r) => r.payload.readUInt16BE(2)),
      [1000, 1001],
    );
  },
);

t.test(
  'recorder.close() and factory.close() are idempotent; a closed factory refuses',
  async (t) => {
    const dir = tmpDir(t);
    const f = new RecorderFactory({ recordDir: dir, pcap: false, noRtcp: false });
    const rec = f.forName('n', false);
    rec.record(rtp(1), true, ALICE, RELAY_A, 4, T0);
    const p = f.close();
    t.equal(f.close(), p);
    await p;
    t.equal(f.openFiles, 0);
    t.doesNotThrow(
      () => rec.record(rtp(2), true, ALICE, RELAY_A, 4, T0),
      'recording after shutdown is a no-op',
    );
    const c1 = rec.close();
    t.equal(rec.close(), c1);
    await c1;
    t.equal(readAdhocFile(fs.readFileSync(path.join(dir, 'n.rtp'))).length, 1);
    t.throws(() => f.forName('m', false), { code: 'ERR_RECORD_CLOSED' });
  },
);

t.test(
  'tshark reads the pcap file back',
  { skip: TSHARK === '' ? 'tshark is not installed' : false },
  async (t) => {
    const dir = tmpDir(t);
    const f = factory(t, { recordDir: dir, pcap: true });
    const rec = f.forLeg('cid', 'tag', 1, true);
    rec.record(rtp(1), true, ALICE, RELAY_A, 4, T0);
    rec.record(
      rtp(2),
      true,
      { address: '::1', port: 6000 },
      { address: '::1', port: 35002 },
      6,
      T0 + 20,
    );
    rec.record(RTCP, false, RELAY_B, BOB, 4, T0 + 40);
    await rec.close();
    const { stdout } = await execFileP(TSHARK, [
      '-r',
      path.join(dir, 'cid=tag.pcap'),
      '-T',
      'fields',
      '-e',
      'udp.srcport',
      '-e',
      'udp.dstport',
    ]);
    t.same(
      stdout
        .trim()
        .split('\n')
        .map((line) => line.trim().split(/\s+/)),
      [
        ['46548', '35000'],
        ['6000', '35002'],
        ['35002', '40000'],
      ],
    );
  },
);
