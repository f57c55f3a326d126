/**
 * The daemon behaves the same whatever the number of media workers (`--workers`,
 * docs/architecture.md "Media workers"): relaying, latching and re-latching, Q and G counters,
 * ports free as soon as D is answered, recording, and idle expiry, with media on the main thread
 * (0), on one worker, and spread over three.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { waitUntil } from '../helpers/control.ts';
import { type Call, newCall } from '../helpers/calls.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { CONNECTION_CHECK_MS } from '../../src/media/relay.ts';
import { pcapRecordsSoFar, readPcapFile } from '../helpers/pcap-reader.ts';
import { Peer, portFree, portWindow, rtpPacket } from '../helpers/udp.ts';
import { tempDir } from '../helpers/tmp.ts';

const WORKER_COUNTS = [0, 1, 3] as const;
/** Sessions of the multi-session case: more than the most workers, so every worker gets some. */
const SESSIONS = 4;

for (const [index, workers] of WORKER_COUNTS.entries()) {
  const args = [
    '-l',
    '127.0.0.1',
    ...portWindow(50 + index),
    '-T',
    '30',
    '--workers',
    String(workers),
  ];

  t.test(
    `--workers ${String(workers)}: sessions relay both ways with exact Q and G counters`,
    async (t) => {
      const d = await startDaemon(t, args);
      const calls: Call[] = [];
      for (let i = 0; i < SESSIONS; i += 1) calls.push(await newCall(t, d, 'workers'));
      for (const [i, c] of calls.entries()) {
        for (let seq = 1; seq <= 3; seq += 1) {
          const pa = rtpPacket({ seq, ssrc: 0x1000 + i });
          await c.a.send(pa, c.toA);
          await c.b.expect(pa, c.toB);
        }
        const pb = rtpPacket({ seq: 1, ssrc: 0x2000 + i, fill: 0x55 });
        await c.b.send(pb, c.toB);
        await c.a.expect(pb, c.toA);
      }
      for (const c of calls) {
        t.equal(
          await d.command(`Qv ${c.call.id} ${c.call.from} ${c.call.to}`),
          'ttl=30 npkts_ina=3 npkts_ino=1 nrelayed=4 ndropped=0\n',
        );
        t.equal(
          await d.command(
            `Q ${c.call.id} ${c.call.from} ${c.call.to} rtpa_nsent rtpa_nrcvd rtpa_nlost`,
          ),
          '3 3 0\n',
          'RTP analysis of the caller',
        );
      }
      t.equal(
        await d.command('G npkts_rcvd npkts_relayed npkts_discard nsess_created'),
        `${String(4 * SESSIONS)} ${String(4 * SESSIONS)} 0 ${String(SESSIONS)}\n`,
      );
      // Each D is answered once its ports are closed: they can be bound at once.
      for (const c of calls) {
        t.equal(await d.command(`D ${c.call.id} ${c.call.from} ${c.call.to}`), '0\n');
        t.ok(await portFree(c.toA), `port ${String(c.toA)} free after D`);
        t.ok(await portFree(c.toB + 1), `port ${String(c.toB + 1)} free after D`);
      }
      t.equal(await d.command('G nsess_destroyed'), `${String(SESSIONS)}\n`);
    },
  );

  t.test(
    `--workers ${String(workers)}: latching follows the real source, then a moved one`,
    async (t) => {
      const d = await startDaemon(t, args);
      const { call, a, b, toA, toB } = await newCall(t, d, 'workers');
      // A's packets come from another port than it signalled (NAT): B's answer must go there.
      // The first packet latches the leg, the second connects its socket to that source.
      const natA = await Peer.open(t);
      for (const seq of [1, 2]) {
        await natA.send(rtpPacket({ seq, ssrc: 0xa }), toA);
        await b.expect(rtpPacket({ seq, ssrc: 0xa }), toB);
      }
      const pb = rtpPacket({ seq: 1, ssrc: 0xb });
      await b.send(pb, toB);
      await natA.expect(pb, toA);
      await a.expectNothing(100);
      // A stranger never reaches the relay while the leg is connected. A's next packet comes
      // first: a silence of a connection check interval would open the leg again.
      await natA.send(rtpPacket({ seq: 3, ssrc: 0xa }), toA);
      await b.expect(rtpPacket({ seq: 3, ssrc: 0xa }), toB);
      const rcvd = await d.command('G npkts_rcvd');
      // Another host: strict sources take any port of the signalled address (NAT).
      const stranger = await Peer.open(t, '127.0.0.66');
      await stranger.send(rtpPacket({ seq: 900, ssrc: 0xdead }), toA, '127.0.0.1');
      await b.expectNothing(100);
      t.equal(await d.command('G npkts_rcvd'), rcvd, 'the stranger was kept out');
      // A silence of a connection check interval opens the leg to every source again; then the
      // same SSRC from a new port with the next sequence number moves the leg (re-latch).
      await new Promise((resolve) => setTimeout(resolve, 3 * CONNECTION_CHECK_MS));
      const moved = await Peer.open(t);
      await moved.send(rtpPacket({ seq: 4, ssrc: 0xa }), toA);
      await b.expect(rtpPacket({ seq: 4, ssrc: 0xa }), toB);
      const pb2 = rtpPacket({ seq: 2, ssrc: 0xb });
      await b.send(pb2, toB);
      await moved.expect(pb2, toA);
      // Not connected yet to the new source (that takes its second packet): a stranger reaches
      // the relay and is ignored and counted, as in the reference.
      await stranger.send(rtpPacket({ seq: 901, ssrc: 0xdead }), toA, '127.0.0.1');
      await b.expectNothing(100);
      t.equal(await d.command(`Q ${call.id} ${call.from} ${call.to} npkts_ino`), '2\n');
      t.equal(await d.command('G npkts_discard'), '1\n');
    },
  );

  t.test(`--workers ${String(workers)}: R records every packet of the leg`, async (t) => {
    const dir = tempDir(t, 'workers');
    const d = await startDaemon(t, [...args, '-r', dir, '-P']);
    const { call, a, b, toA, toB } = await newCall(t, d, 'workers');
    t.equal(await d.command(`R ${call.id} ${call.from} ${call.to}`), '0\n');
    const sent: Buffer[] = [];
    for (let seq = 1; seq <= 5; seq += 1) {
      const p = rtpPacket({ seq, ssrc: 0x77 });
      sent.push(p);
      await a.send(p, toA);
      await b.expect(p, toB);
    }
    t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0\n');
    const file = path.join(dir, `${call.id}=${call.from}.o.rtp`);
    await waitUntil(() => pcapRecordsSoFar(file) === sent.length, 'every packet recorded');
    const { records } = readPcapFile(readFileSync(file));
    records.forEach((r, i) => {
      t.same(r.payload, sent[i]);
      t.equal(r.srcPort, a.port);
      t.equal(r.dstPort, toA);
    });
  });

  t.test(
    `--workers ${String(workers)}: a session with media stays, one without expires`,
    async (t) => {
      const d = await startDaemon(t, [
        '-l',
        '127.0.0.1',
        ...portWindow(50 + index),
        '-T',
        '2',
        '-W',
        '2',
        '--workers',
        String(workers),
      ]);
      const live = await newCall(t, d, 'workers');
      const idle = await newCall(t, d, 'workers');
      // 4 s of packets every 200 ms on one call: well past its 2 s timer, bounded by count.
      for (let seq = 1; seq <= 20; seq += 1) {
        const p = rtpPacket({ seq, ssrc: 0x99 });
        await live.a.send(p, live.toA);
        await live.b.expect(p, live.toB);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      t.match(
        await d.command(`Q ${live.call.id} ${live.call.from} ${live.call.to}`),
        /^[0-9]+ 20 0 20 0\n$/,
        'the call with media is alive',
      );
      t.equal(
        await d.command(`Q ${idle.call.id} ${idle.call.from} ${idle.call.to}`),
        'E50\n',
        'the idle call expired',
      );
      t.equal(await d.command('G nsess_timeout'), '1\n');
    },
  );
}
