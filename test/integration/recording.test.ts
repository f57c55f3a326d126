/**
 * Recording of real relayed calls (docs/protocol.md 6): R, C to a file name, N, -a, the spool move, and
 * files read back packet by packet.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { readAdhocHeader } from '../../src/record/adhoc.ts';
import { waitUntil } from '../helpers/control.ts';
import { LAYOUTS, startDaemon } from '../helpers/daemon.ts';
import { pcapRecordsSoFar, readPcapFile } from '../helpers/pcap-reader.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Sets up a call and relays `n` packets from the caller, returning what was sent. */
async function callWithPackets(
  t: Test,
  d: Awaited<ReturnType<typeof startDaemon>>,
  before: (call: ReturnType<typeof uniqueCall>) => Promise<void>,
  n = 5,
) {
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const call = uniqueCall(t.name);
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  await before(call);
  const sent: Buffer[] = [];
  for (let seq = 1; seq <= n; seq += 1) {
    const p = rtpPacket({ seq, ssrc: 0xabcd });
    sent.push(p);
    await a.send(p, toA);
    await b.expect(p, toB);
  }
  return { call, sent, a, toA };
}

/** Splits an ad-hoc file into its packets. */
function adhocPackets(file: Buffer): { port: number; packet: Buffer }[] {
  const out: { port: number; packet: Buffer }[] = [];
  let offset = 0;
  while (offset < file.length) {
    const h = readAdhocHeader(file, offset);
    if (h === undefined) throw new Error(`bad ad-hoc record at ${String(offset)}`);
    out.push({ port: h.port, packet: file.subarray(h.packetOffset, h.packetOffset + h.length) });
    offset = h.packetOffset + h.length;
  }
  return out;
}

/** Every test of this file, with the daemon in `workers`' layout (see LAYOUTS). */
function suite(t: Test, workers: string): void {
  t.test('recording: R then N writes every packet from the caller to a pcap file', async (t) => {
    const dir = tempDir(t, 'rec');
    const d = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(3),
      '-r',
      dir,
      '-P',
      '--workers',
      workers,
    ]);
    const { call, sent, a, toA } = await callWithPackets(t, d, async (call) => {
      t.equal(await d.command(`R ${call.id} ${call.from} ${call.to}`), '0\n');
    });
    t.equal(await d.command(`N ${call.id} ${call.from} ${call.to}`), '0\n');
    t.equal(
      await d.command(`N ${call.id} ${call.from} ${call.to}`),
      'E50\n',
      'nothing records any more',
    );
    const file = path.join(dir, `${call.id}=${call.from}.o.rtp`);
    await waitUntil(
      () => existsSync(file) && readFileSync(file).length > 24,
      'the pcap file is written',
    );
    const { records } = readPcapFile(readFileSync(file));
    t.equal(records.length, sent.length);
    records.forEach((r, i) => {
      t.same(r.payload, sent[i], `packet ${String(i + 1)} recorded as received`);
      t.equal(r.srcPort, a.port);
      t.equal(r.dstPort, toA);
      t.ok(r.ipChecksumOk && r.udpChecksumOk);
    });
    t.ok(existsSync(path.join(dir, `${call.id}=${call.from}.o.rtcp`)), 'RTCP file created too');
  });

  t.test('recording: the spool directory holds files until the session ends', async (t) => {
    const dir = tempDir(t, 'rec');
    const spool = tempDir(t, 'spool');
    const d = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(3),
      '-r',
      dir,
      '-S',
      spool,
      '--workers',
      workers,
    ]);
    const { call, sent } = await callWithPackets(t, d, async (call) => {
      t.equal(
        await d.command(`R ${call.id} ${call.to} ${call.from}`),
        '0\n',
        'reply form: leg facing the callee',
      );
      t.equal(await d.command(`R ${call.id} ${call.from} ${call.to}`), '0\n');
    });
    t.same(readdirSync(dir), [], 'nothing in the record directory while recording');
    t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0\n');
    const file = path.join(dir, `${call.id}=${call.from}.o.rtp`);
    await waitUntil(() => existsSync(file), 'moved out of the spool');
    t.same(
      adhocPackets(readFileSync(file)).map((r) => r.packet),
      sent,
      'ad-hoc records hold the packets in order',
    );
    t.ok(
      existsSync(path.join(dir, `${call.id}=${call.from}.a.rtp`)),
      'the callee leg was recorded (empty)',
    );
    await waitUntil(() => readdirSync(spool).length === 0, 'spool emptied');
  });

  t.test('recording: C NAME records into the named file; -a records every session', async (t) => {
    const dir = tempDir(t, 'rec');
    const d = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(3),
      '-r',
      dir,
      '--workers',
      workers,
    ]);
    const { sent } = await callWithPackets(t, d, async (call) => {
      t.equal(await d.command(`C ${call.id} mycopy ${call.from} ${call.to}`), '0\n');
      t.equal(
        await d.command(`C ${call.id} ../escape ${call.from} ${call.to}`),
        '0\n',
        'the leg already records: ignored',
      );
    });
    t.equal(await d.command(`X`), '0\n');
    const file = path.join(dir, 'mycopy.rtp');
    await waitUntil(() => existsSync(file) && readFileSync(file).length > 0, 'copy written');
    t.equal(adhocPackets(readFileSync(file)).length, sent.length);
    t.notOk(existsSync(path.join(dir, '..', 'escape.rtp')));

    const dirAll = tempDir(t, 'recall');
    const all = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(4),
      '-r',
      dirAll,
      '-a',
      '-P',
      '--workers',
      workers,
    ]);
    const second = await callWithPackets(t, all, async () => undefined, 3);
    t.equal(await all.command(`D ${second.call.id} ${second.call.from}`), '0\n');
    const pcap = path.join(dirAll, `${second.call.id}=${second.call.from}.pcap`);
    await waitUntil(() => pcapRecordsSoFar(pcap) === 3, 'combined pcap written');
  });

  t.test(
    'recording: R without -r, and C to a bad target, answer the reference codes',
    async (t) => {
      const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(3), '--workers', workers]);
      const call = uniqueCall(t.name);
      await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
      t.equal(await d.command(`R ${call.id} ${call.from}`), 'E50\n');
      t.equal(await d.command(`C ${call.id} name ${call.from}`), 'E65\n');
      t.equal(await d.command(`Cp ${call.id} udp:127.0.0.1 ${call.from}`), 'E65\n');
    },
  );
}

for (const workers of LAYOUTS) {
  t.test(`--workers ${workers}`, async (t) => {
    suite(t, workers);
  });
}
