/**
 * The kernel path's transactions (nft/kernel.ts) over a fake `nft -j`: which elements go in and
 * out, in which kind of transaction, how counters come back to the streams, and the rebuild after
 * a failure. The real kernel is exercised by test/integration/kernel-path.test.ts.
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

interface Element {
  readonly add?: { element: { name: string; elem: unknown[] } };
  readonly delete?: { element: { name: string; elem: unknown[] } };
  readonly list?: { map: { name: string } };
  readonly flush?: { map: { name: string } };
}

/** A fake nft: records each transaction; lists kfwd4 with the counters in `counters`. */
function fakeFlows() {
  const transactions: Element[][] = [];
  const state = { fail: 0, counters: new Map<number, [number, number]>() };
  const flows = new KernelFlows({
    table: 'rtpproxy_test',
    families: [4, 6],
    run: (commands): Promise<NftJsonResult> => {
      const tx = commands as Element[];
      transactions.push(tx);
      if (state.fail > 0) {
        state.fail -= 1;
        return Promise.resolve({ ok: false, message: 'Error: Could not process rule' });
      }
      const listed = tx.find((c) => c.list !== undefined)?.list?.map.name;
      const elem = [...state.counters].map(([id, [packets, bytes]]) => [
        {
          elem: {
            val: { concat: ['192.0.2.1', 4000, '198.51.100.1', 35000] },
            counter: { packets, bytes },
          },
        },
        id,
      ]);
      const output =
        listed === 'kfwd4'
          ? JSON.stringify({ nftables: [{ metainfo: {} }, { map: { name: 'kfwd4', elem } }] })
          : '';
      return Promise.resolve({ ok: true, output });
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

/** The map names a transaction touches with `verb`. */
function maps(tx: readonly Element[], verb: 'add' | 'delete' | 'list' | 'flush'): string[] {
  return tx.flatMap((c) => {
    const entry = c[verb];
    if (entry === undefined) return [];
    return ['element' in entry ? entry.element.name : entry.map.name];
  });
}

t.test(
  'the definition: fixed chains at the four hooks, counters on the forwarding maps',
  async (t) => {
    const lines = kernelDefinition('tos_addr').join('\n');
    t.match(
      lines,
      /map kfwd4 \{ type ipv4_addr \. inet_service \. ipv4_addr \. inet_service : mark; counter; \}/,
    );
    t.match(lines, /map kfwd6 \{ type ipv6_addr/);
    for (const hook of ['prerouting priority raw', 'output priority raw', 'postrouting', 'input']) {
      t.match(lines, new RegExp(`hook ${hook}`), `a chain at ${hook}`);
    }
    t.match(
      lines,
      /notrack ip daddr set meta mark map @kdaddr4 udp dport set meta mark map @kdport/,
    );
    t.match(lines, /meta mark set 0 ip saddr \. udp sport vmap @tos_addr/, 'TOS after the rewrite');
  },
);

t.test(
  'a direction goes in with one change transaction: rewrites first, forwarding last',
  async (t) => {
    const { flows, transactions } = fakeFlows();
    const handle = flows.install(AB, () => undefined);
    await flows.settled();
    t.equal(transactions.length, 1);
    const tx = transactions[0] ?? [];
    t.same(maps(tx, 'add'), ['kdaddr4', 'kdport', 'ksaddr4', 'ksport4', 'kfwd4']);
    t.same(maps(tx, 'list'), [], 'no listing in a change transaction');
    const fwd = tx.at(-1)?.add?.element.elem;
    t.same(fwd, [[{ concat: ['192.0.2.1', 4000, '198.51.100.1', 35002] }, KERNEL_MARK_BASE + 1]]);
    const saddr = tx[2]?.add?.element.elem;
    t.same(saddr, [[{ concat: [KERNEL_MARK_BASE + 1, '203.0.113.7', 5000] }, '198.51.100.1']]);
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
  t.equal((transactions[0]?.at(-1)?.add?.element.elem ?? []).length, 50);
});

t.test('counters: a read hands each direction its new packets, payload bytes only', async (t) => {
  const { flows, state } = fakeFlows();
  const seen: [number, number][] = [];
  flows.install(AB, (packets, bytes) => seen.push([packets, bytes]));
  await flows.settled();
  state.counters.set(KERNEL_MARK_BASE + 1, [10, 10 * (28 + 160)]);
  await flows.read();
  state.counters.set(KERNEL_MARK_BASE + 1, [15, 15 * (28 + 160)]);
  await flows.read();
  await flows.read();
  t.same(
    seen,
    [
      [10, 1600],
      [5, 800],
    ],
    'deltas, IP and UDP headers taken off, nothing when nothing moved',
  );
});

t.test(
  'removal: the read transaction unhooks and counts, the next deletes the rewrites',
  async (t) => {
    const { flows, transactions, state } = fakeFlows();
    const seen: number[] = [];
    const handle = flows.install(AB, (packets) => seen.push(packets));
    await flows.settled();
    state.counters.set(KERNEL_MARK_BASE + 1, [7, 7 * 188]);
    flows.remove(handle);
    t.equal(flows.size, 0, 'no longer counted as forwarded');
    await flows.settled();
    const [, read, change] = transactions;
    t.same(maps(read ?? [], 'list'), ['kfwd4']);
    t.same(maps(read ?? [], 'delete'), ['kfwd4'], 'the read transaction unhooks only');
    t.same(maps(change ?? [], 'delete'), ['kdaddr4', 'kdport', 'ksaddr4', 'ksport4']);
    t.same(seen, [7], 'the last packets were counted');
    // The id is free again.
    flows.install(AB, () => undefined);
    await flows.settled();
    t.same(transactions.at(-1)?.at(-1)?.add?.element.elem, [
      [{ concat: ['192.0.2.1', 4000, '198.51.100.1', 35002] }, KERNEL_MARK_BASE + 1],
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
  t.equal(maps(rebuild, 'flush').length, 9, 'every map flushed');
  t.same(maps(rebuild, 'add'), ['kdaddr4', 'kdport', 'ksaddr4', 'ksport4', 'kfwd4']);
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

t.test('parseCounters reads mark -> counter and skips what it does not know', async (t) => {
  const doc = {
    nftables: [
      { metainfo: { version: '1.0.6' } },
      {
        map: {
          name: 'kfwd4',
          elem: [
            [
              {
                elem: {
                  val: { concat: ['10.0.0.1', 1, '10.0.0.2', 2] },
                  counter: { packets: 3, bytes: 99 },
                },
              },
              5,
            ],
            [{ concat: ['10.0.0.1', 1, '10.0.0.2', 4] }, 6],
            'garbage',
          ],
        },
      },
    ],
  };
  t.same([...parseCounters(JSON.stringify(doc))], [[5, { packets: 3, bytes: 99 }]]);
  t.same([...parseCounters('not json')], []);
  t.same([...parseCounters('{"nftables": 3}')], []);
});
