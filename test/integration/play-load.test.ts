/**
 * Many prompts at once through the real daemon (docs/protocol.md 7): 200 players (both sides of 100
 * calls) driven by the one scheduler timer for a few seconds. A functional count: every listener
 * gets every packet of its prompt exactly once, in order, with its own SSRC; nothing is timed.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { tempDir } from '../helpers/tmp.ts';
import { readRtpHeader } from '../../src/media/rtp.ts';
import { waitUntil } from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { Peer, type Received, uniqueCall } from '../helpers/udp.ts';

// Port window indices 20-24 (44000..44499): play.test.ts has 44000..44039, this file the rest
// (230 port pairs for the 200 legs of 100 calls).
const ARGS = ['-l', '127.0.0.1', '-m', '44040', '-M', '44499', '-T', '60'];
const CALLS = 100;
/** 3 s of PCMA at 10 ms per packet. */
const PACKETS = 300;
const PAYLOAD = 80;

t.test('play: 200 concurrent prompts each deliver every packet once, in order', async (t) => {
  const d = await startDaemon(t, ARGS);
  const dir = tempDir(t, 'play-load');
  const file = Buffer.alloc(PACKETS * PAYLOAD);
  for (let i = 0; i < file.length; i += 1) file[i] = (i * 13 + Math.floor(i / PAYLOAD)) & 0xff;
  writeFileSync(path.join(dir, 'moh.8'), file);

  const listeners: { peer: Peer; fromPort: number }[] = [];
  const commands: string[] = [];
  for (let i = 0; i < CALLS; i += 1) {
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const c = uniqueCall(t.name);
    const toB = await d.port(`Uc8 ${c.id} 127.0.0.1 ${String(a.port)} ${c.from};1`);
    const toA = await d.port(`Lc8 ${c.id} 127.0.0.1 ${String(b.port)} ${c.from};1 ${c.to};1`);
    listeners.push({ peer: a, fromPort: toA }, { peer: b, fromPort: toB });
    commands.push(
      `P1 ${c.id} ${dir}/moh session ${c.from};1 ${c.to};1`,
      `P1 ${c.id} ${dir}/moh session ${c.to};1 ${c.from};1`,
    );
  }
  const refused: string[] = [];
  for (const command of commands) {
    const reply = await d.command(command);
    if (reply !== '0\n') refused.push(`${command} -> ${reply}`);
  }
  t.same(refused, [], 'every P answers 0');
  t.equal(d.daemon.stats.nplrsCreated, 2 * CALLS);

  const results = await Promise.all(
    listeners.map(async ({ peer, fromPort }) => {
      const got: Received[] = [];
      while (got.length < PACKETS) got.push(await peer.receive(10_000));
      return { got, fromPort };
    }),
  );
  await waitUntil(() => d.daemon.stats.nplrsDestroyed === 2 * CALLS, 'every player ended', 10_000);

  const ssrcs = new Set<number>();
  let broken = 0;
  for (const { got, fromPort } of results) {
    const first = readRtpHeader(got[0]?.data ?? Buffer.alloc(0));
    if (first === undefined) {
      broken += 1;
      continue;
    }
    ssrcs.add(first.ssrc);
    const inOrder = got.every((p, k) => {
      const h = readRtpHeader(p.data);
      return (
        h !== undefined &&
        p.port === fromPort &&
        h.ssrc === first.ssrc &&
        h.sequence === ((first.sequence + k) & 0xffff) &&
        h.timestamp === (first.timestamp + k * PAYLOAD) >>> 0 &&
        h.marker === (k === 0) &&
        p.data.subarray(12).equals(file.subarray(k * PAYLOAD, (k + 1) * PAYLOAD))
      );
    });
    if (!inOrder) broken += 1;
  }
  t.equal(broken, 0, 'every listener got its whole prompt in order');
  t.equal(ssrcs.size, 2 * CALLS, 'one SSRC per playback');
  for (const { peer } of listeners.slice(0, 10)) await peer.expectNothing(20);
  t.equal(
    await d.command('G nplrs_created nplrs_destroyed npkts_played'),
    `${String(2 * CALLS)} ${String(2 * CALLS)} ${String(2 * CALLS * PACKETS)}\n`,
  );
});
