/**
 * `z<ms>` re-packetization through the real daemon on loopback, with media on the main thread
 * (`--workers 0`) and on a media worker (`--workers 1`): packets from the SDP owner of the U/L
 * that carried `z` reach the other party re-packetized, with their own contiguous sequence
 * numbers, matching timestamps and the same audio bytes; the other direction, RTCP, and payload
 * types it cannot split pass unchanged (docs/protocol.md 5).
 */
import t, { type Test } from 'tap';
import { startDaemon } from '../helpers/daemon.ts';
import { openRtpRtcpPeers, Peer, portWindow, rtcpPacket, uniqueCall } from '../helpers/udp.ts';

const SSRC = 0x5eed;
const SEQ0 = 65533; // wraps within the call
const TS0 = 0xfffffe00; // wraps within the call

/** 20 ms of PCMU (or another payload type): payload bytes count up from `i * 160`. */
function pcmu20(i: number, pt = 0): Buffer {
  const buf = Buffer.alloc(12 + 160);
  buf[0] = 0x80;
  buf[1] = pt;
  buf.writeUInt16BE((SEQ0 + i) & 0xffff, 2);
  buf.writeUInt32BE((TS0 + i * 160) >>> 0, 4);
  buf.writeUInt32BE(SSRC, 8);
  for (let j = 0; j < 160; j += 1) buf[12 + j] = (i * 160 + j) & 0xff;
  return buf;
}

async function receiveN(peer: Peer, n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i += 1) out.push((await peer.receive(3000)).data);
  return out;
}

/** Checks sequence, timestamps and sizes of what arrived, and that the audio is all there. */
function checkStream(t: Test, got: Buffer[], sizes: number[], sent: Buffer[]): void {
  t.same(
    got.map((p) => p.length - 12),
    sizes,
    'payload sizes',
  );
  t.same(
    got.map((p) => p.readUInt16BE(2)),
    got.map((_, i) => (SEQ0 + i) & 0xffff),
    'contiguous sequence numbers from the first packet, wrapping',
  );
  let ts = TS0;
  const want: number[] = [];
  for (const p of got) {
    want.push(ts);
    ts = (ts + p.length - 12) >>> 0;
  }
  t.same(
    got.map((p) => p.readUInt32BE(4)),
    want,
    'timestamps advance by the samples of each packet',
  );
  t.ok(
    got.every((p) => p.readUInt32BE(8) === SSRC && p[1] === 0),
    'same SSRC and payload type, no marker',
  );
  t.same(
    Buffer.concat(got.map((p) => p.subarray(12))),
    Buffer.concat(sent.map((p) => p.subarray(12))),
    'the same audio bytes, in order',
  );
}

for (const workers of ['0', '1']) {
  const args = ['-l', '127.0.0.1', ...portWindow(67), '-T', '30', '--workers', workers];

  t.test(`z10 splits 20 ms PCMU in two (--workers ${workers})`, async (t) => {
    const d = await startDaemon(t, args);
    const [a, aRtcp] = await openRtpRtcpPeers(t);
    const [b, bRtcp] = await openRtpRtcpPeers(t);
    const call = uniqueCall(t.name);
    const toB = await d.port(`Uz10 ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
    const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
    const sent = [0, 1, 2, 3, 4].map((i) => pcmu20(i));
    for (const p of sent) await a.send(p, toA);
    const got = await receiveN(b, 10);
    checkStream(t, got, Array<number>(10).fill(80), sent);
    await b.expectNothing(150);
    // The other direction and RTCP are not touched.
    const back = pcmu20(9);
    await b.send(back, toB);
    await a.expect(back, toA);
    const rr = rtcpPacket(SSRC);
    await aRtcp.send(rr, toA + 1);
    await bRtcp.expect(rr, toB + 1);
    t.equal(
      await d.command('G npkts_resizer_in npkts_resizer_out npkts_resizer_discard'),
      '5 10 0\n',
    );
  });

  t.test(`z30 joins 20 ms PCMU; the rest leaves on the tick (--workers ${workers})`, async (t) => {
    const d = await startDaemon(t, args);
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const call = uniqueCall(t.name);
    const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
    const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
    // The z is the answer's: its SDP owner (B) is re-packetized, A is not.
    t.equal(
      await d.port(`Lz30 ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`),
      toA,
    );
    const sent = [0, 1, 2, 3, 4].map((i) => pcmu20(i));
    for (const p of sent) await b.send(p, toB);
    // 800 samples: three 30 ms packets as the audio arrives, then the 10 ms rest once it waited.
    const got = await receiveN(a, 4);
    checkStream(t, got, [240, 240, 240, 80], sent);
    t.equal(await d.command('G npkts_resizer_in npkts_resizer_out npkts_relayed'), '5 4 4\n');
    // From A to B nothing changes.
    const fromA = pcmu20(3);
    await a.send(fromA, toA);
    await b.expect(fromA, toB);
  });

  t.test(
    `what z cannot split, and a U without z, pass unchanged (--workers ${workers})`,
    async (t) => {
      const d = await startDaemon(t, args);
      const a = await Peer.open(t);
      const b = await Peer.open(t);
      const call = uniqueCall(t.name);
      const toB = await d.port(`Uz10 ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
      const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
      const dynamic = pcmu20(0, 96);
      await a.send(dynamic, toA);
      await b.expect(dynamic, toB);
      // A re-offer without z stops re-packetizing.
      t.equal(await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`), toB);
      const plain = pcmu20(1);
      await a.send(plain, toA);
      await b.expect(plain, toB);
      t.equal(await d.command('G npkts_resizer_in npkts_resizer_out'), '0 0\n');
    },
  );
}
