/**
 * The `C CALLID T1 T2` sub-command of U (capability 20260309; docs/protocol.md 3.15; sippy/rtpproxy
 * src/commands/rpcpv1_ul_subc_copy.c): both streams of the source session, RTP and RTCP, leave
 * out of the target session's legs to the target's parties, and the target's own parties are no
 * longer relayed. Real peers on loopback; waits are bounded.
 */
import t, { type Test } from 'tap';
import { LAYOUTS, startDaemon } from '../helpers/daemon.ts';
import {
  openRtpRtcpPeers,
  Peer,
  portWindow,
  rtcpPacket,
  rtpPacket,
  uniqueCall,
} from '../helpers/udp.ts';

/** Every test of this file, with the daemon in `workers`' layout (see LAYOUTS). */
function suite(t: Test, workers: string): void {
  t.test('U ... && C forks both streams of another session into this one', async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(172), '--workers', workers]);
    t.equal(await d.command('VF 20260309'), '1\n');
    // The source call: caller A (its tag is the session tag), callee B.
    const [a, aRtcp] = await openRtpRtcpPeers(t);
    const b = await Peer.open(t);
    const src = uniqueCall('source');
    const toB = await d.port(`U ${src.id} 127.0.0.1 ${String(a.port)} ${src.from}`);
    const toA = await d.port(`L ${src.id} 127.0.0.1 ${String(b.port)} ${src.from} ${src.to}`);
    // The target call: X (T1 of the U) and Y (T2), Y with an RTCP port.
    const x = await Peer.open(t);
    const [y, yRtcp] = await openRtpRtcpPeers(t);
    const tgt = uniqueCall('target');
    const towardsY = await d.port(`U ${tgt.id} 127.0.0.1 ${String(x.port)} ${tgt.from}`);
    const towardsX = await d.port(`L ${tgt.id} 127.0.0.1 ${String(y.port)} ${tgt.from} ${tgt.to}`);
    t.equal(
      await d.command(
        `U ${tgt.id} 127.0.0.1 ${String(x.port)} ${tgt.from} ${tgt.to} && C ${src.id} ${src.from} ${src.to}`,
      ),
      `${String(towardsY)} 127.0.0.1\n`,
      'a bare port: the sub-command succeeded',
    );

    // What the source's T1 party (A) sends reaches B as before, and Y (the target's T2 party) out
    // of the target's port towards Y.
    const fromA = rtpPacket({ seq: 1, ssrc: 0xa });
    await a.send(fromA, toA);
    await b.expect(fromA, toB);
    await y.expect(fromA, towardsY);
    await x.expectNothing(150);
    // What B sends reaches X (the target's T1 party) out of the target's port towards X.
    const fromB = rtpPacket({ seq: 7, ssrc: 0xb });
    await b.send(fromB, toB);
    await a.expect(fromB, toA);
    await x.expect(fromB, towardsX);
    await y.expectNothing(150);
    // RTCP follows the same route, out of the odd ports.
    const rr = rtcpPacket(0xa);
    await aRtcp.send(rr, toA + 1);
    await yRtcp.expect(rr, towardsY + 1);
    // The target's own parties are not relayed to each other.
    await x.send(rtpPacket({ seq: 3, ssrc: 0xc }), towardsX);
    await y.expectNothing(200);

    // Once the target ends, the source relays alone again.
    t.equal(await d.command(`D ${tgt.id} ${tgt.from} ${tgt.to}`), '0\n');
    const later = rtpPacket({ seq: 2, ssrc: 0xa });
    await a.send(later, toA);
    await b.expect(later, toB);
    await y.expectNothing(200);
  });

  t.test('C sub-command failures answer -1 after the port, as the reference does', async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(172), '--workers', workers]);
    const call = uniqueCall(t.name);
    const port = await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
    await d.port(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`);
    t.equal(
      await d.command(`U ${call.id} 127.0.0.1 40000 ${call.from} ${call.to} && C nosuch a b`),
      `${String(port)} 127.0.0.1 && -1\n`,
      'unknown source session',
    );
    t.equal(
      await d.command(
        `U ${call.id} 127.0.0.1 40000 ${call.from} ${call.to} && C ${call.id} ${call.from} ${call.to}`,
      ),
      `${String(port)} 127.0.0.1 && -1\n`,
      'a session cannot be forked into itself',
    );
    t.equal(
      await d.command(`U ${call.id} 127.0.0.1 40000 ${call.from} && C ${call.id} ${call.from} x`),
      'E3\n',
      'C needs both tags on the U',
    );
  });
}

for (const workers of LAYOUTS) {
  t.test(`--workers ${workers}`, async (t) => {
    suite(t, workers);
  });
}
