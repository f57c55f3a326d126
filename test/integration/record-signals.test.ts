/**
 * Recording and the process's life (issue 13 item 6), with the daemon as a real child process and
 * a media worker: SIGTERM while a party streams loses no packet the other party received, and a
 * file-size limit (`ulimit -f`, SIGXFSZ) stops the one recording that reached it, with one log
 * line, while the daemon keeps answering and relaying.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { udpCommand, waitUntil } from '../helpers/control.ts';
import { freeUdpPort, spawnDaemon, waitReady } from '../helpers/child-daemon.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';
import { tempDir } from '../helpers/tmp.ts';
import { readRecording } from '../../src/tools/recording-reader.ts';

const SSRC = 0x5151;

/** Sequence numbers of the RTP packets from `source` (`address:port`) in the `.rtp` files of `dir`. */
function recordedSeqs(dir: string, source: string): number[] {
  const seqs: number[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.rtp'))) {
    const bytes = readFileSync(path.join(dir, name));
    // The other direction's file: nothing was sent that way.
    if (bytes.length === 0) continue;
    const read = readRecording(bytes);
    if (!read.ok) throw new Error(`${name}: ${read.error}`);
    for (const p of read.packets) {
      if (p.source === source && p.payload.length >= 4) seqs.push(p.payload.readUInt16BE(2));
    }
  }
  return seqs.sort((x, y) => x - y);
}

/** Sends RTP from `a` to `port`, `burst` packets every millisecond, until `stop()` or `max` packets. */
async function stream(
  a: Peer,
  port: number,
  max: number,
  stop: () => boolean,
  burst = 10,
): Promise<number> {
  let seq = 0;
  while (seq < max && !stop()) {
    const sends: Promise<void>[] = [];
    for (let i = 0; i < burst && seq < max; i += 1) {
      seq += 1;
      sends.push(a.send(rtpPacket({ seq, ssrc: SSRC }), port).catch(() => undefined));
    }
    await Promise.all(sends);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return seq;
}

/** A daemon with a media worker and `-r dir`, started and answering. */
async function startRecording(t: Test, dir: string, window: number, wrapper?: string[]) {
  const port = await freeUdpPort();
  const d = spawnDaemon(
    t,
    [
      '-f',
      '-F',
      '-p',
      '/dev/null',
      '-s',
      `udp:127.0.0.1:${String(port)}`,
      '-l',
      '127.0.0.1',
      ...portWindow(window),
      '-r',
      dir,
      '--workers',
      '1',
      '-d',
      'INFO',
    ],
    wrapper === undefined ? {} : { wrapper },
  );
  await waitReady(d, port);
  const command = (line: string): Promise<string> => udpCommand(port, '127.0.0.1', line);
  return { d, command };
}

/** A call between two peers A and B, recorded both ways; `received` holds what B got from A. */
async function recordedCall(t: Test, command: (line: string) => Promise<string>) {
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const c = uniqueCall(t.name);
  const toB = Number(
    (await command(`U ${c.id} 127.0.0.1 ${String(a.port)} ${c.from}`)).split(' ')[0],
  );
  const toA = Number(
    (await command(`L ${c.id} 127.0.0.1 ${String(b.port)} ${c.from} ${c.to}`)).split(' ')[0],
  );
  t.equal(await command(`R ${c.id} ${c.from} ${c.to}`), '0\n');
  t.equal(await command(`R ${c.id} ${c.to} ${c.from}`), '0\n');
  // Sequence numbers of A's packets; a large buffer, as B reads in the test's own event loop.
  b.socket.setRecvBufferSize(4 * 1024 * 1024);
  const received = new Set<number>();
  b.socket.on('message', (msg, rinfo) => {
    if (rinfo.port === toB && msg.length >= 4) received.add(msg.readUInt16BE(2));
  });
  return { a, toA, received };
}

t.test('SIGTERM while parties stream: the recordings hold every packet relayed', async (t) => {
  const dir = tempDir(t, 'sigterm');
  const { d, command } = await startRecording(t, dir, 57);
  const calls: Awaited<ReturnType<typeof recordedCall>>[] = [];
  for (let i = 0; i < 4; i += 1) calls.push(await recordedCall(t, command));
  // Four streams of 15 packets/ms: many recorded packets are on their way when SIGTERM comes.
  const sending = calls.map((c) => stream(c.a, c.toA, 60_000, d.gone, 15));
  await waitUntil(
    () => calls.every((c) => c.received.size >= 1000),
    'every B received 1000 packets',
    15_000,
  );
  d.kill('SIGTERM');
  const code = await d.exited;
  const sent = await Promise.all(sending);
  t.equal(code, 0, 'stopped with status 0', { stderr: d.stderr() });
  // Datagrams already on their way to B.
  await new Promise((resolve) => setTimeout(resolve, 200));
  calls.forEach((c, i) => {
    const recorded = recordedSeqs(dir, `127.0.0.1:${String(c.a.port)}`);
    const got = [...c.received].sort((x, y) => x - y);
    const missing = got.filter((s) => !recorded.includes(s));
    t.ok((sent[i] ?? 0) > got.length, `call ${String(i)}: still sending when the daemon stopped`);
    t.same(missing, [], `call ${String(i)}: every packet B received is in the recording`);
    t.equal(recorded.length, got.length, `call ${String(i)}: as many packets as B received`);
  });
});

t.test(
  'a file-size limit stops that recording with one log line; the daemon goes on',
  async (t) => {
    const dir = tempDir(t, 'fsize');
    const limit = 256 * 1024;
    const { d, command } = await startRecording(t, dir, 58, [
      'prlimit',
      `--fsize=${String(limit)}`,
      '--',
    ]);
    const { a, toA, received } = await recordedCall(t, command);
    // 202 recorded bytes per packet: the limit is reached after about 1300 packets.
    const sent = await stream(a, toA, 3000, d.gone);
    t.equal(sent, 3000);
    await waitUntil(
      () => d.gone() || d.logs().some((l) => l['msg'] === 'recording stopped'),
      'the recording stopped',
      15_000,
    );
    t.notOk(d.gone(), 'the daemon is running', { stderr: d.stderr() });
    const stopped = d.logs().filter((l) => l['msg'] === 'recording stopped');
    t.equal(stopped.length, 1, 'one log line');
    t.match(stopped[0], { code: 'ERR_RECORD_WRITE', level: 40 });
    t.match(JSON.stringify(stopped[0]?.['err']), /EFBIG/);
    const file = readdirSync(dir)
      .map((n) => path.join(dir, n))
      .find((p) => statSync(p).size > 0 && p.endsWith('.rtp'));
    t.ok(file !== undefined && statSync(file).size <= limit, 'the file stays within the limit');
    t.equal(await command('V'), '20040107\n', 'commands are answered');
    await a.send(rtpPacket({ seq: 4000, ssrc: SSRC }), toA);
    await waitUntil(() => received.has(4000), 'a packet sent after the failure is relayed');
    d.kill('SIGTERM');
    t.equal(await d.exited, 0, 'stops cleanly afterwards', { stderr: d.stderr() });
    t.notMatch(d.stderr(), /SIGXFSZ/, 'no signal stopped it');
  },
);
