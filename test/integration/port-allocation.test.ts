/**
 * Port allocation over real sockets (docs/architecture.md "Port allocation"): a full range is
 * refused at once, without probing the range; freed pairs are handed out again, with media on the
 * main thread and on a media worker; a pair another process holds is skipped, then used once free.
 */
import dgram from 'node:dgram';
import t from 'tap';
import { startDaemon, type Teardown } from '../helpers/daemon.ts';
import { portWindow, uniqueCall } from '../helpers/udp.ts';
import { BUSY_RETRY_MS } from '../../src/media/port-allocator.ts';

/** Four pairs: RTP ports W, W+2, W+4, W+6 of this file's window. */
function fourPairs(index: number): { args: string[]; ports: number[] } {
  const [, min] = portWindow(index);
  const low = Number(min);
  return {
    args: ['-m', String(low), '-M', String(low + 7)],
    ports: [low, low + 2, low + 4, low + 6],
  };
}

/**
 * Binds one UDP port on 127.0.0.1 the way another program would; resolves with a function that
 * lets it go (also run at teardown).
 */
async function holdPort(t: Teardown, port: number): Promise<() => Promise<void>> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => {
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  const release = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => socket.close(() => resolve())));
  t.teardown(release);
  return release;
}

for (const [offset, workers] of [0, 1].entries()) {
  const window = 70 + offset;

  t.test(`--workers ${String(workers)}: full range refused, freed pairs reused`, async (t) => {
    const { args, ports } = fourPairs(window);
    const d = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...args,
      '-b',
      '--workers',
      String(workers),
    ]);
    const calls = ports.map(() => uniqueCall('ports'));
    const got: number[] = [];
    for (const c of calls) got.push(await d.port(`U ${c.id} 127.0.0.1 9000 ${c.from}`));
    t.same(got, ports, 'ascending with -b');

    const extra = uniqueCall('ports');
    t.equal(await d.command(`U ${extra.id} 127.0.0.1 9000 ${extra.from}`), 'E72\n');
    const [c0, c1, c2] = calls;
    if (c0 === undefined || c1 === undefined || c2 === undefined) throw new Error('no calls');
    t.equal(
      await d.command(`L ${c0.id} 127.0.0.1 9002 ${c0.from} ${c0.to}`),
      'E71\n',
      'the reply leg of an existing session is refused too',
    );

    // Each freed pair is handed out again, however often.
    for (let round = 0; round < 20; round += 1) {
      t.equal(await d.command(`D ${c1.id} ${c1.from}`), '0\n');
      const again = await d.port(`U ${c1.id} 127.0.0.1 9000 ${c1.from}`);
      if (again !== ports[1]) t.fail(`round ${String(round)}: got ${String(again)}`);
      t.equal(await d.command(`U ${extra.id} 127.0.0.1 9000 ${extra.from}`), 'E72\n');
    }

    // A fresh pair for an existing leg (`n`) frees the old one once the new one is bound.
    t.equal(await d.command(`D ${c2.id} ${c2.from}`), '0\n');
    const fresh = await d.port(`Un ${c0.id} 127.0.0.1 9000 ${c0.from}`);
    t.equal(fresh, ports[2], 'the only free pair');
    t.equal(
      await d.port(`U ${extra.id} 127.0.0.1 9000 ${extra.from}`),
      ports[0],
      'the pair the leg left is free again',
    );
  });
}

t.test('a refused U binds nothing when the range is full', async (t) => {
  const { args, ports } = fourPairs(72);
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...args, '--workers', '0']);
  const filled: number[] = [];
  for (const c of ports.map(() => uniqueCall('full'))) {
    filled.push(await d.port(`U ${c.id} 127.0.0.1 9000 ${c.from}`));
  }
  t.same(
    [...filled].sort((a, b) => a - b),
    ports,
    'every pair in use',
  );
  // Media sockets bind on the main thread with --workers 0: count the binds a refused U makes.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- tap calls it with its `this`
  const binds = t.capture(dgram.Socket.prototype, 'bind', dgram.Socket.prototype.bind);
  for (let i = 0; i < 5; i += 1) {
    const c = uniqueCall('full');
    t.equal(await d.command(`U ${c.id} 127.0.0.1 9000 ${c.from}`), 'E72\n');
  }
  t.equal(binds().length, 0, 'no bind attempt: the free list is empty');
});

t.test('a pair held by another process is skipped, then used once free', async (t) => {
  const { args, ports } = fourPairs(73);
  const [p0, p1, p2, p3] = ports;
  if (p0 === undefined || p1 === undefined || p2 === undefined || p3 === undefined) {
    throw new Error('no ports');
  }
  const letGo = await holdPort(t, p1 + 1); // the RTCP port of the second pair
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...args, '-b']);
  const got: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    const c = uniqueCall('held');
    got.push(await d.port(`U ${c.id} 127.0.0.1 9000 ${c.from}`));
  }
  t.same(got, [p0, p2, p3], 'the held pair is skipped');
  const c = uniqueCall('held');
  t.equal(await d.command(`U ${c.id} 127.0.0.1 9000 ${c.from}`), 'E72\n', 'the held pair waits');
  await letGo();
  // The pair rejoins the free list after BUSY_RETRY_MS; poll for it with a deadline.
  const deadline = performance.now() + BUSY_RETRY_MS + 10_000;
  let reply = '';
  for (let i = 0; i < 200 && performance.now() < deadline; i += 1) {
    reply = await d.command(`U ${c.id} 127.0.0.1 9000 ${c.from}`);
    if (reply !== 'E72\n') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(reply, `${String(p1)} 127.0.0.1\n`, 'the pair is used once the other program let it go');
});
