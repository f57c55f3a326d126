/**
 * The kernel path's transactions (nft/kernel.ts) over a fake `nft -j`: which counters and elements
 * go in and out, in which order, how counters come back to the streams, and the rebuild after a
 * failure. The real kernel is exercised by test/integration/kernel-path.test.ts.
 */
import pino from 'pino';
import t from 'tap';
import type { ForwardDirection } from '../../../src/base/forward.ts';
import {
  KERNEL_MARK_BASE,
  kernelDefinition,
  KernelFlows,
  parseCounters,
} from '../../../src/nft/kernel.ts';
import type { NftJsonResult } from '../../../src/nft/runner.ts';

type Verb = 'add' | 'delete' | 'reset' | 'flush';
/** One JSON command, as the fake reads it. */
type Command = Partial<Record<Verb, Record<string, { name?: string; elem?: unknown[] }>>>;

/** A fake nft: records each transaction; a reset prints and zeroes the counters in `counters`. */
function fakeFlows() {
  const transactions: Command[][] = [];
  const state = { fail: 0, counters: new Map<number, [number, number]>() };
  const flows = new KernelFlows({
    table: 'rtpproxy_test',
    families: [4, 6],
    run: (commands): Promise<NftJsonResult> => {
      const tx = commands as Command[];
      transactions.push(tx);
      if (state.fail > 0) {
        state.fail -= 1;
        return Promise.resolve({ ok: false, message: 'Error: Could not process rule' });
      }
      const lines: string[] = [];
      for (const c of tx) {
        const reset = c.reset;
        if (reset === undefined) continue;
        const one = reset['counter']?.name;
        const ids =
          one === undefined ? [...state.counters.keys()] : [Number.parseInt(one.slice(1), 16)];
        const items = ids.map((id) => {
          const [packets, bytes] = state.counters.get(id) ?? [0, 0];
          state.counters.set(id, [0, 0]);
          return { counter: { name: `k${id.toString(16)}`, packets, bytes } };
        });
        lines.push(JSON.stringify({ nftables: [{ metainfo: {} }, ...items] }));
      }
      return Promise.resolve({ ok: true, output: lines.join('\n') });
    },
    logger: pino({ level: 'silent' }),
    now: () => 0,
  });
  flows.start();
  return { flows, transactions, state };
}

const AB: ForwardDirection = {
  family: 4,
  from: { address: '192.0.2.1', port: 4000 },
  via: { address: '198.51.100.1', port: 35002 },
  out: { address: '198.51.100.1', port: 35000 },
  to: { address: '203.0.113.7', port: 5000 },
};
const ID1 = KERNEL_MARK_BASE + 1;
const K1 = `k${ID1.toString(16)}`;

/** What a transaction does with `verb`, in order: map names, `counter NAME`, `counters` (all). */
function touched(tx: readonly Command[], verb: Verb): string[] {
  return tx.flatMap((c) => {
    const entry = c[verb];
    if (entry === undefined) return [];
    if (entry['element'] !== undefined) return [entry['element'].name ?? ''];
    if (entry['counter'] !== undefined) return [`counter ${entry['counter'].name ?? ''}`];
    if (entry['counters'] !== undefined) return ['counters'];
    return [entry['map']?.name ?? ''];
  });
}

/** The elements of an element command. */
function elems(c: Command | undefined): unknown {
  return (c?.add ?? c?.delete)?.['element']?.elem;
}

t.test('the definition: fixed chains at four hooks, a named counter per direction', async (t) => {
  const lines = kernelDefinition('tos_addr').join('\n');
  t.match(
    lines,
    /map kfwd4 \{ type ipv4_addr \. inet_service \. ipv4_addr \. inet_service : mark; \}/,
  );
  t.match(lines, /map kfwd6 \{ type ipv6_addr/);
  t.match(lines, /map kcnt \{ type mark : counter; \}/);
  for (const hook of ['prerouting priority raw', 'output priority raw', 'postrouting', 'input']) {
    t.match(lines, new RegExp(`hook ${hook}`), `a chain at ${hook}`);
  }
  t.match(lines, /map @kfwd4 counter name meta mark map @kcnt notrack ip daddr set meta mark map/);
  t.match(lines, /meta mark set 0 ip saddr \. udp sport vmap @tos_addr/, 'TOS after the rewrite');
});

t.test(
  'a direction goes in with one transaction: counter and rewrites first, forwarding last',
  async (t) => {
    const { flows, transactions } = fakeFlows();
    const handle = flows.install(AB, () => undefined);
    await flows.settled();
    t.equal(transactions.length, 1);
    const tx = transactions[0] ?? [];
    t.same(touched(tx, 'add'), [
      `counter ${K1}`,
      'kcnt',
      'kdaddr4',
      'kdport',
      'ksaddr4',
      'ksport4',
      'kfwd4',
    ]);
    t.same(touched(tx, 'reset'), [], 'nothing to read yet');
    t.same(elems(tx.at(-1)), [[{ concat: ['192.0.2.1', 4000, '198.51.100.1', 35002] }, ID1]]);
    t.same(elems(tx[1]), [[ID1, K1]]);
    t.same(elems(tx[4]), [[{ concat: [ID1, '203.0.113.7', 5000] }, '198.51.100.1']]);
    t.equal(flows.size, 1);
    t.equal(handle.direction, AB);
  },
);

t.test('a burst of directions costs one transaction', async (t) => {
  const { flows, transactions } = fakeFlows();
  for (let i = 0; i < 50; i += 1) {
    flows.install({ ...AB, from: { address: '192.0.2.1', port: 4000 + 2 * i } }, () => undefined);
  }
  await flows.settled();
  t.equal(transactions.length, 1);
  t.equal((elems(transactions[0]?.at(-1)) as unknown[]).length, 50);
});

t.test(
  'a read resets every counter and hands each direction its packets, payload only',
  async (t) => {
    const { flows, state, transactions } = fakeFlows();
    const seen: [number, number][] = [];
    flows.install(AB, (packets, bytes) => seen.push([packets, bytes]));
    await flows.settled();
    state.counters.set(ID1, [10, 10 * (28 + 160)]);
    await flows.read();
    t.same(touched(transactions.at(-1) ?? [], 'reset'), ['counters'], 'one reset for all');
    state.counters.set(ID1, [5, 5 * (28 + 160)]);
    await flows.read();
    await flows.read();
    t.same(
      seen,
      [
        [10, 1600],
        [5, 800],
      ],
      'what each reset returned, IP and UDP headers taken off; nothing when nothing moved',
    );
    t.equal(flows.reads, 3);
  },
);

t.test(
  'removal: one transaction reads its counter, then deletes it all, forwarding first',
  async (t) => {
    const { flows, transactions, state } = fakeFlows();
    const seen: number[] = [];
    const handle = flows.install(AB, (packets) => seen.push(packets));
    await flows.settled();
    state.counters.set(ID1, [7, 7 * 188]);
    flows.remove(handle);
    t.equal(flows.size, 0, 'no longer counted as forwarded');
    await flows.settled();
    t.equal(transactions.length, 2);
    const tx = transactions[1] ?? [];
    t.same(touched(tx, 'reset'), [`counter ${K1}`], 'only its counter is read');
    t.same(touched(tx, 'delete'), [
      'kfwd4',
      'kcnt',
      'kdaddr4',
      'kdport',
      'ksaddr4',
      'ksport4',
      `counter ${K1}`,
    ]);
    t.same(seen, [7], 'the last packets were counted');
    // The id is free again.
    flows.install(AB, () => undefined);
    await flows.settled();
    t.same(elems(transactions.at(-1)?.at(-1)), [
      [{ concat: ['192.0.2.1', 4000, '198.51.100.1', 35002] }, ID1],
    ]);
  },
);

t.test('a direction removed before it went out costs nothing', async (t) => {
  const { flows, transactions } = fakeFlows();
  flows.remove(flows.install(AB, () => undefined));
  await flows.settled();
  t.equal(transactions.length, 0);
});

t.test('a failed transaction is followed by a rebuild of every map', async (t) => {
  const { flows, transactions, state } = fakeFlows();
  state.fail = 1;
  flows.install(AB, () => undefined);
  await new Promise((resolve) => setTimeout(resolve, 1200));
  await flows.settled();
  t.equal(flows.failed, 1);
  const rebuild = transactions.at(-1) ?? [];
  t.same(touched(rebuild, 'reset'), ['counters'], 'every counter read first');
  t.equal(touched(rebuild, 'flush').length, 10, 'every map emptied');
  t.same(touched(rebuild, 'add'), [
    `counter ${K1}`,
    'kcnt',
    'kdaddr4',
    'kdport',
    'ksaddr4',
    'ksport4',
    'kfwd4',
  ]);
  t.equal(flows.committed, 1);
});

t.test('nothing runs once closed, and reads resolve at once', async (t) => {
  const { flows, transactions } = fakeFlows();
  await flows.close();
  flows.install(AB, () => undefined);
  await flows.read();
  await flows.settled();
  t.equal(transactions.length, 0);
  t.equal(flows.ready, false);
});

t.test('parseCounters reads our counters, one document per line, and skips the rest', async (t) => {
  const doc = (items: unknown[]): string =>
    JSON.stringify({ nftables: [{ metainfo: {} }, ...items] });
  const output = [
    doc([{ counter: { name: 'k72700005', packets: 3, bytes: 99 } }]),
    doc([{ counter: { name: 'other', packets: 1, bytes: 1 } }, { counter: { name: 'k72700006' } }]),
    'garbage',
    '',
  ].join('\n');
  t.same([...parseCounters(output)], [[0x72700005, { packets: 3, bytes: 99 }]]);
  t.same([...parseCounters('not json')], []);
  t.same([...parseCounters('{"nftables": 3}')], []);
});
