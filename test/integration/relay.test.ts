/**
 * Offer, answer and relay through the real daemon on loopback (docs/protocol.md 4): both directions,
 * RTP and RTCP, latching, NAT, third parties, re-INVITE, two media streams, delete.
 */
import t, { type Test } from 'tap';
import { CONNECTION_CHECK_MS } from '../../src/media/relay.ts';
import { LAYOUTS, startDaemon } from '../helpers/daemon.ts';
import {
  openRtpRtcpPeers,
  Peer,
  portFree,
  portWindow,
  rtcpPacket,
  rtpPacket,
  uniqueCall,
} from '../helpers/udp.ts';

const ARGS = ['-l', '127.0.0.1', ...portWindow(1), '-T', '30'];

/** Every test of this file, with the daemon in `workers`' layout (see LAYOUTS). */
function suite(t: Test, workers: string): void {
  t.test(
    'relay: offer/answer relays RTP and RTCP both ways from the signalled ports',
    async (t) => {
      const d = await startDaemon(t, [...ARGS, '--workers', workers]);
      const [a, aRtcp] = await openRtpRtcpPeers(t);
      const b = await Peer.open(t);
      const call = uniqueCall(t.name);
      const toB = await d.port(`Uc0,8,101 ${call.id} 127.0.0.1 ${String(a.port)} ${call.from};1`);
      const toA = await d.port(
        `Lc0,101 ${call.id} 127.0.0.1 ${String(b.port)} ${call.from};1 ${call.to};1`,
      );
      t.equal(toB % 2, 0, 'RTP port is even');
      t.not(toA, toB);
      for (let seq = 1; seq <= 5; seq += 1) {
        const pa = rtpPacket({ seq, ssrc: 0xaaaa });
        await a.send(pa, toA);
        await b.expect(pa, toB);
        const pb = rtpPacket({ seq, ssrc: 0xbbbb, fill: 0x55 });
        await b.send(pb, toB);
        await a.expect(pb, toA);
      }
      t.equal(
        await d.command(`Qv ${call.id} ${call.from};1 ${call.to};1`),
        'ttl=30 npkts_ina=5 npkts_ino=5 nrelayed=10 ndropped=0\n',
      );
      // RTCP: B's RTCP goes to the odd port and reaches A's signalled RTCP port (A_port + 1).
      const rr = rtcpPacket(0xbbbb);
      await b.send(rr, toB + 1);
      await aRtcp.expect(rr, toA + 1);
      t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0\n');
      t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), 'E50\n');
    },
  );

  t.test('relay: packets before the answer are discarded, not relayed', async (t) => {
    const d = await startDaemon(t, [...ARGS, '--workers', workers]);
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const call = uniqueCall(t.name);
    const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
    await b.send(rtpPacket({ seq: 1, ssrc: 1 }), toB);
    await a.expectNothing(150);
    t.equal(await d.command('G npkts_discard npkts_relayed'), '1 0\n');
  });

  t.test(
    'relay: latches on the real source when a party sends from another port (NAT)',
    async (t) => {
      const d = await startDaemon(t, [...ARGS, '--workers', workers]);
      const a = await Peer.open(t);
      const natA = await Peer.open(t); // the address A's packets really come from
      const b = await Peer.open(t);
      const call = uniqueCall(t.name);
      const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
      const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
      const p1 = rtpPacket({ seq: 10, ssrc: 0x1111 });
      await natA.send(p1, toA);
      await b.expect(p1, toB);
      const back = rtpPacket({ seq: 1, ssrc: 0x2222 });
      await b.send(back, toB);
      await natA.expect(back, toA);
      await a.expectNothing(100);
    },
  );

  t.test('relay: after latching, a third party is not relayed', async (t) => {
    const d = await startDaemon(t, [...ARGS, '--workers', workers]);
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const intruder = await Peer.open(t);
    const call = uniqueCall(t.name);
    const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
    const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
    const p = rtpPacket({ seq: 1, ssrc: 0xaaaa });
    await a.send(p, toA);
    await b.expect(p, toB);
    // New SSRC from a new port, outside any re-latch window: dropped.
    await intruder.send(rtpPacket({ seq: 500, ssrc: 0xdead }), toA);
    await b.expectNothing(150);
    const reply = rtpPacket({ seq: 1, ssrc: 0xbbbb });
    await b.send(reply, toB);
    await a.expect(reply, toA);
    await intruder.expectNothing(50);
    t.equal(await d.command(`Q ${call.id} ${call.from} ${call.to}`), '30 1 1 2 0\n');
  });

  /** A call whose caller A will move to A2 (same SSRC), with B answering. */
  async function movingCall(t: Test, args: readonly string[]) {
    const d = await startDaemon(t, [...args, '--workers', workers]);
    const a = await Peer.open(t);
    const a2 = await Peer.open(t);
    const b = await Peer.open(t);
    const call = uniqueCall(t.name);
    const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
    const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
    /** A2's next packet reaches B, and B's answer reaches A2: the leg moved. */
    const expectMoved = async (seq: number): Promise<void> => {
      const moved = rtpPacket({ seq, ssrc: 0xaaaa });
      await a2.send(moved, toA);
      await b.expect(moved, toB);
      const back = rtpPacket({ seq: 7, ssrc: 0xbbbb });
      await b.send(back, toB);
      await a2.expect(back, toA);
    };
    return { d, a, a2, b, toA, toB, expectMoved };
  }

  t.test(
    'relay: the latched party moving with the same SSRC and a close sequence re-latches at once (--no_connect_media)',
    async (t) => {
      const { a, b, toA, expectMoved } = await movingCall(t, [...ARGS, '--no_connect_media']);
      await a.send(rtpPacket({ seq: 100, ssrc: 0xaaaa }), toA);
      await b.receive();
      await expectMoved(101);
    },
  );

  t.test(
    'relay: with connected sockets the moved party re-latches once the old source went silent',
    async (t) => {
      const { d, a, a2, b, toA, toB, expectMoved } = await movingCall(t, ARGS);
      // Two packets: the first latches, the second (same source) connects the socket.
      for (const seq of [100, 101]) {
        const p = rtpPacket({ seq, ssrc: 0xaaaa });
        await a.send(p, toA);
        await b.expect(p, toB);
      }
      const rcvd = await d.command('G npkts_rcvd');
      // While A's source is the connected one, the kernel keeps any other source out.
      await a2.send(rtpPacket({ seq: 102, ssrc: 0xaaaa }), toA);
      await b.expectNothing(50);
      t.equal(await d.command('G npkts_rcvd'), rcvd, 'the other source never reached the relay');
      // A goes silent (its NAT rebinds): after a connection check interval the leg listens to
      // every source again, and the reference's rule moves it to the new one.
      await new Promise((resolve) => setTimeout(resolve, 3 * CONNECTION_CHECK_MS));
      await expectMoved(103);
    },
  );

  t.test(
    'relay: an asymmetric leg keeps its signalled port and accepts any port of that IP',
    async (t) => {
      const d = await startDaemon(t, [...ARGS, '--workers', workers]);
      const c = await Peer.open(t);
      const cOther = await Peer.open(t);
      const dd = await Peer.open(t);
      const call = uniqueCall(t.name);
      const toD = await d.port(`Ua ${call.id} 127.0.0.1 ${String(c.port)} ${call.from}`);
      const toC = await d.port(`L ${call.id} 127.0.0.1 ${String(dd.port)} ${call.from} ${call.to}`);
      const p = rtpPacket({ seq: 1, ssrc: 0xcccc });
      await cOther.send(p, toC);
      await dd.expect(p, toD);
      const back = rtpPacket({ seq: 1, ssrc: 0xdddd });
      await dd.send(back, toD);
      await c.expect(back, toC);
      await cOther.expectNothing(100);
    },
  );

  t.test('relay: a re-INVITE keeps the ports and moves media to the new address', async (t) => {
    const d = await startDaemon(t, [...ARGS, '--workers', workers]);
    const a = await Peer.open(t);
    const a2 = await Peer.open(t);
    const b = await Peer.open(t);
    const call = uniqueCall(t.name);
    const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from};1`);
    const toA = await d.port(
      `L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from};1 ${call.to};1`,
    );
    await a.send(rtpPacket({ seq: 1, ssrc: 0xaaaa }), toA);
    await b.receive();
    // Re-INVITE from the caller with a new media port, then from the callee: same ports back.
    t.equal(
      await d.port(`U ${call.id} 127.0.0.1 ${String(a2.port)} ${call.from};1 ${call.to};1`),
      toB,
    );
    t.equal(
      await d.port(`U ${call.id} 127.0.0.1 ${String(b.port)} ${call.to};1 ${call.from};1`),
      toA,
    );
    const back = rtpPacket({ seq: 2, ssrc: 0xbbbb });
    await b.send(back, toB);
    await a2.expect(back, toA);
    await a.expectNothing(100);
    // Within the re-latch window the new source is accepted even with a new SSRC.
    const fromA2 = rtpPacket({ seq: 900, ssrc: 0xa2a2 });
    await a2.send(fromA2, toA);
    await b.expect(fromA2, toB);
  });

  t.test(
    'relay: two media streams of one call are two sessions with their own ports',
    async (t) => {
      const d = await startDaemon(t, [...ARGS, '--workers', workers]);
      const [a1, a2, b1, b2] = [
        await Peer.open(t),
        await Peer.open(t),
        await Peer.open(t),
        await Peer.open(t),
      ];
      const call = uniqueCall(t.name);
      const audioToB = await d.port(`U ${call.id} 127.0.0.1 ${String(a1.port)} ${call.from};1`);
      const videoToB = await d.port(`U ${call.id} 127.0.0.1 ${String(a2.port)} ${call.from};2`);
      const audioToA = await d.port(
        `L ${call.id} 127.0.0.1 ${String(b1.port)} ${call.from};1 ${call.to};1`,
      );
      const videoToA = await d.port(
        `L ${call.id} 127.0.0.1 ${String(b2.port)} ${call.from};2 ${call.to};2`,
      );
      t.equal(new Set([audioToB, videoToB, audioToA, videoToA]).size, 4);
      const audio = rtpPacket({ seq: 1, ssrc: 1, pt: 0 });
      const video = rtpPacket({ seq: 1, ssrc: 2, pt: 96 });
      await a1.send(audio, audioToA);
      await a2.send(video, videoToA);
      await b1.expect(audio, audioToB);
      await b2.expect(video, videoToB);
      t.equal(
        await d.command(`I`),
        'sessions created: 2\nactive sessions: 2\nactive streams: 4\npackets received: 2\npackets transmitted: 2\n',
      );
      // D without media numbers reaches both streams (prefix rule).
      t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0\n');
      t.equal(d.daemon.manager.size, 0);
    },
  );

  t.test('relay: D and X free the ports at once', async (t) => {
    const d = await startDaemon(t, [...ARGS, '--workers', workers]);
    const call = uniqueCall(t.name);
    const port = await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
    t.equal(await d.command(`D ${call.id} ${call.from}`), '0\n');
    t.ok(await portFree(port), 'the RTP port can be bound at once after D');
    const other = uniqueCall(t.name);
    const port2 = await d.port(`U ${other.id} 127.0.0.1 40000 ${other.from}`);
    t.equal(await d.command('X'), '0\n');
    t.equal(d.daemon.manager.size, 0);
    t.ok(await portFree(port2 + 1), 'the RTCP port can be bound at once after X');
  });

  t.test(
    'relay: a retransmitted cookie is answered from the cache and executed once',
    async (t) => {
      const d = await startDaemon(t, [...ARGS, '--workers', workers]);
      const sock = await Peer.open(t);
      const call = uniqueCall(t.name);
      const cmd = Buffer.from(`k1 U ${call.id} 127.0.0.1 40000 ${call.from}`);
      await sock.send(cmd, d.controlPort);
      const first = await sock.receive();
      await sock.send(cmd, d.controlPort);
      const second = await sock.receive();
      t.match(first.data.toString(), /^k1 [0-9]+ 127\.0\.0\.1\n$/);
      t.same(second.data, first.data);
      t.equal(await d.command('G nsess_created ncmds_rcvd_ndups'), '1 1\n');
    },
  );
}

for (const workers of LAYOUTS) {
  t.test(`--workers ${workers}`, async (t) => {
    suite(t, workers);
  });
}
