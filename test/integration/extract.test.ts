/**
 * rtpproxy-extract round trip (docs/recording.md): a relayed call with known PCMU and PCMA
 * payloads is recorded (ad-hoc, and a combined pcap), extracted to WAV and compared sample by
 * sample, with a lost packet as silence and a reordered packet in place; bad inputs fail clearly.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runExtract, type ExtractIo } from '../../src/tools/extract.ts';
import {
  alawToLinear,
  decodeSamples,
  encodeSamples,
  linearToAlaw,
  linearToUlaw,
  ulawToLinear,
} from '../../src/tools/g711.ts';
import { readWav } from '../../src/tools/wav.ts';
import { waitUntil } from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIN = path.join(import.meta.dirname, '../../bin/rtpproxy-extract.js');
const FRAME = 160;
const FRAMES = 8;
/** Sent in this order: 3 is lost, 6 arrives after 7. */
const SEND_ORDER = [1, 2, 4, 5, 7, 6, 8];

function tone(hz: number): Int16Array {
  return Int16Array.from({ length: FRAME * FRAMES }, (_, i) =>
    Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 8000)),
  );
}

/** The G.711 frames of a tone, and what the listener should hear (lost frame 3 silent). */
function media(hz: number, pt: 0 | 8) {
  const encode = pt === 0 ? linearToUlaw : linearToAlaw;
  const decode = pt === 0 ? ulawToLinear : alawToLinear;
  const coded = encodeSamples(tone(hz), encode);
  const expected = decodeSamples(coded, decode);
  expected.fill(0, 2 * FRAME, 3 * FRAME);
  const packet = (seq: number): Buffer => {
    const p = rtpPacket({ seq: 1000 + seq, ts: 5000 + (seq - 1) * FRAME, ssrc: 0x5150 + pt, pt });
    coded.copy(p, 12, (seq - 1) * FRAME, seq * FRAME);
    return p;
  };
  return { packet, expected };
}

function captureIo(): ExtractIo & { outLines: string[]; errLines: string[] } {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return {
    readFile: (p) => Promise.resolve(readFileSync(p)),
    writeFile: (p, data) => {
      writeFileSync(p, data);
      return Promise.resolve();
    },
    rename: async (from, to) => {
      const { rename } = await import('node:fs/promises');
      await rename(from, to);
    },
    unlink: () => Promise.resolve(),
    out: (line) => outLines.push(line),
    err: (line) => errLines.push(line),
    outLines,
    errLines,
  };
}

function wavSamples(t: Test, file: string): Int16Array {
  const wav = readWav(readFileSync(file));
  if (!wav.ok) throw new Error(`${file}: ${wav.errors.join('; ')}`);
  t.equal(wav.format.sampleRate, 8000);
  t.equal(wav.format.channels, 1);
  return wav.samples;
}

/** A call where the caller sends PCMU 400 Hz and the callee PCMA 700 Hz, recorded by `record`. */
async function recordedCall(t: Test, args: string[], record: string, window: number) {
  const dir = tempDir(t, 'extract');
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(window), '-r', dir, ...args]);
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const c = uniqueCall(t.name);
  const toB = await d.port(`U ${c.id} 127.0.0.1 ${String(a.port)} ${c.from}`);
  const toA = await d.port(`L ${c.id} 127.0.0.1 ${String(b.port)} ${c.from} ${c.to}`);
  t.equal(await d.command(`${record} ${c.id} ${c.from} ${c.to}`), '0\n');
  t.equal(await d.command(`${record} ${c.id} ${c.to} ${c.from}`), '0\n');
  const up = media(400, 0);
  const down = media(700, 8);
  for (const seq of SEND_ORDER) {
    await a.send(up.packet(seq), toA);
    await b.receive();
    await b.send(down.packet(seq), toB);
    await a.receive();
  }
  t.equal(await d.command(`D ${c.id} ${c.from} ${c.to}`), '0\n');
  return { dir, c, up, down };
}

t.test('extract: ad-hoc direction files round trip', async (t) => {
  const { dir, c, up, down } = await recordedCall(t, [], 'R', 42);
  const o = path.join(dir, `${c.id}=${c.from}.o.rtp`);
  const a = path.join(dir, `${c.id}=${c.from}.a.rtp`);
  const size = SEND_ORDER.length * (30 + 172);
  await waitUntil(
    () => [o, a].every((f) => existsSync(f) && statSync(f).size === size),
    'both ad-hoc files written',
  );
  const out = tempDir(t, 'extract-out');
  const io = captureIo();
  t.equal(await runExtract(['-o', out, o, a], io), 0, io.errLines.join('\n'));
  t.same(io.errLines, []);
  t.equal(io.outLines.length, 2);
  t.match(io.outLines[0], /7 packets, 0\.160 s, 1 lost, 0 duplicates/);
  t.same(wavSamples(t, path.join(out, `${c.id}=${c.from}.o.wav`)), up.expected, 'caller (PCMU)');
  t.same(wavSamples(t, path.join(out, `${c.id}=${c.from}.a.wav`)), down.expected, 'callee (PCMA)');
});

t.test('extract: a combined pcap gives one WAV per direction', async (t) => {
  const { dir, c, up, down } = await recordedCall(t, ['-P'], 'Rs', 42);
  const pcap = path.join(dir, `${c.id}=${c.from}.pcap`);
  const size = 24 + 2 * SEND_ORDER.length * (16 + 14 + 20 + 8 + 172);
  await waitUntil(() => existsSync(pcap) && statSync(pcap).size === size, 'pcap written');
  const io = captureIo();
  t.equal(await runExtract([pcap], io), 0, io.errLines.join('\n'));
  const first = wavSamples(t, path.join(dir, `${c.id}=${c.from}.1.wav`));
  const second = wavSamples(t, path.join(dir, `${c.id}=${c.from}.2.wav`));
  // The caller's first packet arrived first.
  t.same(first, up.expected, 'caller');
  t.same(second, down.expected, 'callee');
});

t.test('extract: bad inputs get a clear error and a non-zero exit', async (t) => {
  const dir = tempDir(t, 'extract-bad');
  const garbage = path.join(dir, 'garbage.rtp');
  writeFileSync(garbage, Buffer.from('this is not a recording at all, not even close\n'));
  const empty = path.join(dir, 'empty.rtp');
  writeFileSync(empty, Buffer.alloc(0));
  const linktype = path.join(dir, 'wifi.pcap');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(105, 20);
  writeFileSync(linktype, header);
  const cases: [string, RegExp][] = [
    [path.join(dir, 'missing.rtp'), /missing\.rtp: cannot read/],
    [garbage, /garbage\.rtp: not a recording: neither a pcap file nor the ad-hoc format/],
    [empty, /empty\.rtp: empty file/],
    [linktype, /wifi\.pcap: unsupported pcap link type 105/],
  ];
  for (const [file, message] of cases) {
    const io = captureIo();
    t.equal(await runExtract([file], io), 1, file);
    t.match(io.errLines.join('\n'), message);
  }
  // Only non-G.711 audio: a clear message, no WAV.
  const g729 = path.join(dir, 'g729.rtp');
  const rec = Buffer.alloc(30);
  rec.writeUInt16LE(2, 0);
  rec.writeUInt16BE(4000, 2);
  Buffer.from([127, 0, 0, 1]).copy(rec, 4);
  rec.writeDoubleLE(1_700_000_000, 20);
  const pkt = rtpPacket({ seq: 1, ssrc: 1, pt: 18 });
  rec.writeUInt16LE(pkt.length, 28);
  writeFileSync(g729, Buffer.concat([rec, pkt, rec.subarray(0, 10)]));
  const io = captureIo();
  t.equal(await runExtract([g729], io), 1);
  t.match(io.errLines.join('\n'), /warning: 10 bytes at offset 202 are not a complete record/);
  t.match(io.errLines.join('\n'), /skipped 1 packets of payload type 18/);
  t.match(io.errLines.join('\n'), /no G\.711 \(PCMU or PCMA\) RTP packets/);
  t.notOk(existsSync(path.join(dir, 'g729.wav')));

  // The installed command: usage errors exit 2, input errors 1, with the message on stderr.
  const usage = spawnSync(process.execPath, [BIN], { encoding: 'utf8' });
  t.equal(usage.status, 2);
  t.match(usage.stderr, /usage: rtpproxy-extract/);
  const bad = spawnSync(process.execPath, [BIN, garbage], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /not a recording/);
});
