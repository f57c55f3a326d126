/**
 * Prompt playback through the real daemon on loopback (docs/protocol.md 3.6, 3.7, 7): P and S as
 * Kamailio's stream2uac/stream2uas send them, the RTP the player generates compared byte for byte
 * with the prompt file, muting of the other party, count and looping, E-codes, prompt file changes.
 */
import { promises as fsp, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { readRtpHeader } from '../../src/media/rtp.ts';
import { MAX_PROMPT_BYTES } from '../../src/play/prompts.ts';
import { runMakeann } from '../../src/tools/makeann.ts';
import { writeWav } from '../../src/tools/wav.ts';
import { waitUntil } from '../helpers/control.ts';
import { startDaemon, type RunningDaemon, type Teardown } from '../helpers/daemon.ts';
import { Peer, type Received, rtpPacket, uniqueCall } from '../helpers/udp.ts';
import { tempDir } from '../helpers/tmp.ts';

// Port window index 20 (44000..44099); play-load.test.ts uses the rest of indices 20-24.
const ARGS = ['-l', '127.0.0.1', '-m', '44000', '-M', '44039', '-T', '30'];
/** PCMA at the default 10 ms: 80 payload bytes per packet. */
const PACKET = 80;

/** `packets` distinct 80-byte payloads, so every packet's position in the file is recognizable. */
function promptBytes(packets: number, seed = 1): Buffer {
  const buf = Buffer.alloc(packets * PACKET);
  for (let i = 0; i < buf.length; i += 1) {
    buf[i] = (i * 7 + seed * 31 + Math.floor(i / PACKET) * 13) & 0xff;
  }
  return buf;
}

/** The next `n` datagrams `peer` receives. */
async function collect(peer: Peer, n: number, timeoutMs = 3000): Promise<Received[]> {
  const got: Received[] = [];
  while (got.length < n) got.push(await peer.receive(timeoutMs));
  return got;
}

/** Everything that arrives within `ms`. */
async function drain(peer: Peer, ms: number): Promise<Received[]> {
  const got: Received[] = [];
  const end = Date.now() + ms;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) return got;
    try {
      got.push(await peer.receive(left));
    } catch {
      return got;
    }
  }
}

/** A call A (caller, tag from;1) <-> B (callee, tag to;1), both latched. */
async function call(
  t: Teardown & { name: string },
  d: RunningDaemon,
  mods: { u?: string; l?: string } = {},
): Promise<{ a: Peer; b: Peer; toA: number; toB: number; id: string; from: string; to: string }> {
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const c = uniqueCall(t.name);
  const from = `${c.from};1`;
  const to = `${c.to};1`;
  const toB = await d.port(`U${mods.u ?? 'c0,8'} ${c.id} 127.0.0.1 ${String(a.port)} ${from}`);
  const toA = await d.port(`L${mods.l ?? 'c8'} ${c.id} 127.0.0.1 ${String(b.port)} ${from} ${to}`);
  const pa = rtpPacket({ seq: 1, ssrc: 0xaaaa });
  await a.send(pa, toA);
  await b.expect(pa, toB);
  const pb = rtpPacket({ seq: 1, ssrc: 0xbbbb, fill: 0x55 });
  await b.send(pb, toB);
  await a.expect(pb, toA);
  return { a, b, toA, toB, id: c.id, from, to };
}

/**
 * Checks that `packets` are the player's RTP for `file` starting at packet `first` of the file
 * (wrapping around), from `fromPort`: one SSRC, consecutive sequence numbers, timestamps 8 per ms,
 * marker on the first packet of the playback only, and the payload bytes of the file.
 */
function checkPlayed(
  t: Test,
  packets: readonly Received[],
  file: Buffer,
  opts: { fromPort: number; pt: number; payload?: number; markerFirst?: boolean; first?: number },
): void {
  const payload = opts.payload ?? PACKET;
  const perFile = Math.floor(file.length / payload);
  const head0 = readRtpHeader(packets[0]?.data ?? Buffer.alloc(0));
  if (head0 === undefined) {
    t.fail('not RTP');
    return;
  }
  let bad = 0;
  packets.forEach((p, i) => {
    const h = readRtpHeader(p.data);
    const k = ((opts.first ?? 0) + i) % perFile;
    const ok =
      h !== undefined &&
      p.port === opts.fromPort &&
      p.address === '127.0.0.1' &&
      p.data.length === 12 + payload &&
      h.payloadOffset === 12 &&
      h.payloadType === opts.pt &&
      h.marker === (i === 0 && opts.markerFirst !== false) &&
      h.ssrc === head0.ssrc &&
      h.sequence === ((head0.sequence + i) & 0xffff) &&
      h.timestamp === (head0.timestamp + i * (payload / 8) * 8) >>> 0 &&
      p.data.subarray(12).equals(file.subarray(k * payload, (k + 1) * payload));
    if (!ok) bad += 1;
  });
  t.equal(bad, 0, `${String(packets.length)} packets match the prompt file and the RTP rules`);
}

t.test(
  'play: stream2uac plays the prompt to the caller with correct RTP, muting the callee',
  async (t) => {
    const d = await startDaemon(t, ARGS);
    const dir = tempDir(t, 'play');
    const file = promptBytes(5);
    writeFileSync(path.join(dir, 'hello.8'), file);
    const c = await call(t, d);
    // Kamailio's rtpproxy_stream2uac(): codecs "session" = the caller's c list 0,8; hello.0 is missing.
    t.equal(await d.command(`P ${c.id} ${dir}/hello session ${c.from} ${c.to}`), '0\n');
    const played = await collect(c.a, 5);
    checkPlayed(t, played, file, { fromPort: c.toA, pt: 8 });
    t.equal(readRtpHeader(played[0]?.data ?? Buffer.alloc(0))?.timestamp !== undefined, true);
    t.equal(
      (readRtpHeader(played[0]?.data ?? Buffer.alloc(0))?.timestamp ?? 1) % 2,
      0,
      'initial timestamp is even',
    );
    // The prompt ended by itself: relaying towards the caller resumes.
    await waitUntil(() => d.daemon.stats.nplrsDestroyed === 1, 'player ended');
    await c.a.expectNothing(50);
    const pb = rtpPacket({ seq: 2, ssrc: 0xbbbb, fill: 0x55 });
    await c.b.send(pb, c.toB);
    await c.a.expect(pb, c.toA);
    t.equal(await d.command('G nplrs_created nplrs_destroyed npkts_played'), '1 1 5\n');
  },
);

t.test('play: stream2uas plays to the callee; the caller hears nothing of it', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  const file = promptBytes(4, 3);
  writeFileSync(path.join(dir, 'moh.8'), file);
  const c = await call(t, d);
  t.equal(await d.command(`P ${c.id} ${dir}/moh session ${c.to} ${c.from}`), '0\n');
  checkPlayed(t, await collect(c.b, 4), file, { fromPort: c.toB, pt: 8 });
  await c.a.expectNothing(100);
});

t.test('play: P-1 loops until S; the other party is muted meanwhile, not the target', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  const file = promptBytes(3);
  writeFileSync(path.join(dir, 'loop.8'), file);
  const c = await call(t, d);
  t.equal(await d.command(`P-1 ${c.id} ${dir}/loop 8 ${c.from} ${c.to}`), '0\n');
  const first = await collect(c.a, 8);
  checkPlayed(t, first, file, { fromPort: c.toA, pt: 8 });
  const ssrc = readRtpHeader(first[0]?.data ?? Buffer.alloc(0))?.ssrc;
  // B -> A is muted (dropped, counted); A -> B still flows.
  await c.b.send(rtpPacket({ seq: 3, ssrc: 0xbbbb, fill: 0x55 }), c.toB);
  const pa = rtpPacket({ seq: 2, ssrc: 0xaaaa });
  await c.a.send(pa, c.toA);
  await c.b.expect(pa, c.toB);
  const during = await drain(c.a, 150);
  t.ok(during.length > 5, 'the prompt keeps coming');
  t.ok(
    during.every((p) => readRtpHeader(p.data)?.ssrc === ssrc),
    'only prompt packets reach the caller while it plays',
  );
  t.equal(await d.command(`S ${c.id} ${c.from} ${c.to}`), '0\n');
  await drain(c.a, 50);
  await c.a.expectNothing(100);
  const pb = rtpPacket({ seq: 4, ssrc: 0xbbbb, fill: 0x55 });
  await c.b.send(pb, c.toB);
  await c.a.expect(pb, c.toA);
  // A new loop, stopped by P0 this time.
  t.equal(await d.command(`P-1 ${c.id} ${dir}/loop 8 ${c.from} ${c.to}`), '0\n');
  await collect(c.a, 2);
  t.equal(await d.command(`P0 ${c.id} ${dir}/loop 8 ${c.from} ${c.to}`), '0\n');
  await drain(c.a, 50);
  await c.a.expectNothing(100);
  t.equal(await d.command('G nplrs_created nplrs_destroyed'), '2 2\n');
  t.equal(await d.command(`S ${c.id} ${c.from} ${c.to}`), '0\n', 'S with nothing playing');
});

t.test('play: P3 plays the file three times back to back, then stops', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  // 2.5 packets: the trailing half packet is never sent, as in the reference.
  const file = Buffer.concat([promptBytes(2, 5), Buffer.alloc(40, 0x11)]);
  writeFileSync(path.join(dir, 'three.8'), file);
  const c = await call(t, d);
  t.equal(await d.command(`P3 ${c.id} ${dir}/three 8 ${c.from} ${c.to}`), '0\n');
  checkPlayed(t, await collect(c.a, 6), file, { fromPort: c.toA, pt: 8 });
  await waitUntil(() => d.daemon.stats.nplrsDestroyed === 1, 'player ended');
  await c.a.expectNothing(100);
  t.equal(await d.command('G npkts_played'), '6\n');
});

t.test('play: a new P replaces the running player with a new SSRC', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  const one = promptBytes(3, 1);
  const two = promptBytes(3, 2);
  writeFileSync(path.join(dir, 'one.0'), one);
  writeFileSync(path.join(dir, 'two.0'), two);
  const c = await call(t, d);
  t.equal(await d.command(`P-1 ${c.id} ${dir}/one 0 ${c.from} ${c.to}`), '0\n');
  const before = await collect(c.a, 2);
  t.equal(await d.command(`P1 ${c.id} ${dir}/two 0 ${c.from} ${c.to}`), '0\n');
  const after = (await drain(c.a, 300)).filter(
    (p) => readRtpHeader(p.data)?.ssrc !== readRtpHeader(before[0]?.data ?? Buffer.alloc(0))?.ssrc,
  );
  checkPlayed(t, after, two, { fromPort: c.toA, pt: 0 });
  t.equal(after.length, 3);
  t.equal(await d.command('G nplrs_created nplrs_destroyed'), '2 2\n');
});

t.test('play: E-codes, and the call goes on after a refused P', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  writeFileSync(path.join(dir, 'p.8'), promptBytes(2));
  writeFileSync(path.join(dir, 'odd.96'), promptBytes(2));
  writeFileSync(path.join(dir, 'tiny.8'), Buffer.alloc(10));
  const c = await call(t, d);
  const p = (rest: string, verb = 'P'): Promise<string> =>
    d.command(`${verb} ${c.id} ${rest} ${c.from} ${c.to}`);
  t.equal(await p(`${dir}/missing session`), 'E60\n', 'no file for any codec of the session');
  t.equal(
    await p(`${dir}/p 0,18`),
    'E60\n',
    'p.8 exists, but 8 is not in the list (as the reference answers)',
  );
  t.equal(await p(`${dir}/p x,8`), 'E60\n', 'a non-numeric item ends the scan');
  t.equal(await p(`${dir}/odd 96`), 'E60\n', 'a payload type the player cannot frame');
  t.equal(await p(`${dir}/tiny 8`), 'E60\n', 'a file shorter than one packet');
  t.equal(await p(`${dir}/missing 8`, 'P0'), '0\n', 'P0 only stops');
  t.equal(await d.command(`P nosuchcall ${dir}/p 8 ${c.from}`), 'E50\n');
  t.equal(await d.command(`S nosuchcall ${c.from}`), 'E50\n');
  t.equal(await d.command(`Px ${c.id} ${dir}/p 8 ${c.from}`), 'E17\n');
  t.equal(await d.command('G nplrs_created'), '0\n');
  // The call goes on.
  const pb = rtpPacket({ seq: 9, ssrc: 0xbbbb, fill: 0x55 });
  await c.b.send(pb, c.toB);
  await c.a.expect(pb, c.toA);
  const pa = rtpPacket({ seq: 9, ssrc: 0xaaaa });
  await c.a.send(pa, c.toA);
  await c.b.expect(pa, c.toB);
  // `8,x` tries 8 first and plays it.
  t.equal(await p(`${dir}/p 8,x`), '0\n');
  t.equal((await collect(c.a, 2)).length, 2);
});

t.test('play: P session without a stored codec list answers E35', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  writeFileSync(path.join(dir, 'p.8'), promptBytes(2));
  const c = await call(t, d, { u: '', l: '' });
  t.equal(await d.command(`P ${c.id} ${dir}/p session ${c.from} ${c.to}`), 'E35\n');
  t.equal(await d.command(`P ${c.id} ${dir}/p 8 ${c.from} ${c.to}`), '0\n');
});

t.test('play: the stored z packet time sizes the packets of P ... session', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  const file = promptBytes(8);
  writeFileSync(path.join(dir, 'z.8'), file);
  // z20 in the callee's answer is remembered on the caller's leg (docs/protocol.md 5).
  const c = await call(t, d, { u: 'c8', l: 'z20c8' });
  t.equal(await d.command(`P ${c.id} ${dir}/z session ${c.from} ${c.to}`), '0\n');
  checkPlayed(t, await collect(c.a, 4), file, { fromPort: c.toA, pt: 8, payload: 160 });
  await waitUntil(() => d.daemon.stats.nplrsDestroyed === 1, 'player ended');
});

t.test('play: a changed prompt file is read again on the next P', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  const file = path.join(dir, 'news.8');
  const v1 = promptBytes(2, 1);
  writeFileSync(file, v1);
  const c = await call(t, d);
  const play = async (): Promise<Received[]> => {
    t.equal(await d.command(`P ${c.id} ${dir}/news 8 ${c.from} ${c.to}`), '0\n');
    const got = await collect(c.a, 2);
    await waitUntil(
      () => d.daemon.stats.nplrsDestroyed === d.daemon.stats.nplrsCreated,
      'player ended',
    );
    return got;
  };
  checkPlayed(t, await play(), v1, { fromPort: c.toA, pt: 8 });
  checkPlayed(t, await play(), v1, { fromPort: c.toA, pt: 8 });
  // Same size, new content and modification time.
  const v2 = promptBytes(2, 2);
  writeFileSync(file, v2);
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  checkPlayed(t, await play(), v2, { fromPort: c.toA, pt: 8 });
  // Another size.
  const v3 = promptBytes(3, 3);
  writeFileSync(file, v3);
  t.equal(await d.command(`P ${c.id} ${dir}/news 8 ${c.from} ${c.to}`), '0\n');
  checkPlayed(t, await collect(c.a, 3), v3, { fromPort: c.toA, pt: 8 });
  t.same(readFileSync(file), v3);
});

t.test(
  'play: a prompt asked for before the answer starts once the leg has an address',
  async (t) => {
    const d = await startDaemon(t, ARGS);
    const dir = tempDir(t, 'play');
    const file = promptBytes(3);
    writeFileSync(path.join(dir, 'early.8'), file);
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const c = uniqueCall(t.name);
    await d.port(`Uc8 ${c.id} 127.0.0.1 ${String(a.port)} ${c.from};1`);
    // Kamailio without a To tag: P<count> cid prompt session ft;1 (trailing space).
    t.equal(await d.command(`P ${c.id} ${dir}/early session ${c.from};1 `), '0\n');
    await a.expectNothing(100);
    const toA = await d.port(`Lc8 ${c.id} 127.0.0.1 ${String(b.port)} ${c.from};1 ${c.to};1`);
    checkPlayed(t, await collect(a, 3), file, { fromPort: toA, pt: 8 });
  },
);

t.test('play: D stops the player; a re-INVITE moves it to the new address', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  const file = promptBytes(4);
  writeFileSync(path.join(dir, 'moh.8'), file);
  const c = await call(t, d);
  const a2 = await Peer.open(t);
  t.equal(await d.command(`P-1 ${c.id} ${dir}/moh 8 ${c.from} ${c.to}`), '0\n');
  await collect(c.a, 2);
  // Re-INVITE from the caller with a new media port: the prompt follows, its sequence goes on.
  t.equal(await d.port(`Uc8 ${c.id} 127.0.0.1 ${String(a2.port)} ${c.from} ${c.to}`), c.toB);
  const moved = await collect(a2, 3);
  t.ok(
    moved.every((p) => p.port === c.toA),
    'sent from the same leg port',
  );
  t.equal(d.daemon.stats.nplrsCreated, 1, 'the re-INVITE did not restart the player');
  t.equal(await d.command(`D ${c.id} ${c.from} ${c.to}`), '0\n');
  t.equal(await d.command('G nplrs_created nplrs_destroyed'), '1 1\n');
  await drain(a2, 50);
  await a2.expectNothing(100);
});

t.test('play: a looping prompt keeps the session alive; after S it expires', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', '-m', '44000', '-M', '44039', '-T', '1']);
  const dir = tempDir(t, 'play');
  writeFileSync(path.join(dir, 'moh.8'), promptBytes(3));
  const c = await call(t, d);
  t.equal(await d.command(`P-1 ${c.id} ${dir}/moh 8 ${c.from} ${c.to}`), '0\n');
  await new Promise((resolve) => setTimeout(resolve, 2600));
  t.equal(d.daemon.manager.size, 1, 'no RTP from either party for 2.6 s, yet alive');
  t.equal(await d.command(`S ${c.id} ${c.from} ${c.to}`), '0\n');
  await waitUntil(() => d.daemon.manager.size === 0, 'session expired', 5000);
  t.equal(await d.command('G nplrs_destroyed nsess_timeout'), '1 1\n');
});

t.test('play: a prompt made by rtpproxy-makeann plays as PCMU, byte for byte', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play');
  const samples = Int16Array.from({ length: 400 }, (_, i) => Math.round(8000 * Math.sin(i / 3)));
  writeFileSync(path.join(dir, 'welcome.wav'), writeWav(samples));
  const io = {
    readFile: (p: string) => fsp.readFile(p),
    writeFile: (p: string, data: Buffer) => fsp.writeFile(p, data),
    rename: (from: string, to: string) => fsp.rename(from, to),
    unlink: (p: string) => fsp.unlink(p),
    out: () => undefined,
    err: () => undefined,
  };
  t.equal(await runMakeann([path.join(dir, 'welcome.wav')], io), 0);
  const file = readFileSync(path.join(dir, 'welcome.0'));
  t.equal(file.length, 400);
  const c = await call(t, d, { u: 'c0,101', l: 'c0' });
  t.equal(await d.command(`P ${c.id} ${dir}/welcome session ${c.from} ${c.to}`), '0\n');
  checkPlayed(t, await collect(c.a, 5), file, { fromPort: c.toA, pt: 0 });
});

t.test('play: a prompt file over the size limit is not read; P answers E61', async (t) => {
  const d = await startDaemon(t, ARGS, { captureLogs: true });
  const dir = tempDir(t, 'play');
  // A sparse 300 MB file: the size the daemon sees, without writing 300 MB.
  const huge = path.join(dir, 'huge.8');
  writeFileSync(huge, '');
  await fsp.truncate(huge, 300 * 1024 * 1024);
  writeFileSync(path.join(dir, 'huge.0'), promptBytes(2));
  const c = await call(t, d);
  const p = (rest: string): Promise<string> => d.command(`P ${c.id} ${rest} ${c.from} ${c.to}`);
  t.equal(await p(`${huge.slice(0, -2)} 8`), 'E61\n');
  const line = d.logs.find((l) => l.msg === 'prompt file over the size limit: not played');
  t.match(line, { prompt: huge, size: 300 * 1024 * 1024, limit: MAX_PROMPT_BYTES, callId: c.id });
  t.equal(await d.command('G nplrs_created'), '0\n');
  // Another payload type of the list still plays.
  t.equal(await p(`${huge.slice(0, -2)} 8,0`), '0\n');
  t.equal((await collect(c.a, 2)).length, 2);
  // The call goes on.
  const pa = rtpPacket({ seq: 9, ssrc: 0xaaaa });
  await c.a.send(pa, c.toA);
  await c.b.expect(pa, c.toB);
});
