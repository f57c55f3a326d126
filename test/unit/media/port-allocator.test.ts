import t from 'tap';
import {
  BUSY_RETRY_MS,
  MAX_BIND_ATTEMPTS,
  PortAllocator,
  type BindOutcome,
  type PortLease,
  PortTable,
} from '../../../src/media/port-allocator.ts';

/** A small deterministic PRNG (mulberry32), so random-order runs repeat. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

const range = (min: number, max: number): number[] => {
  const out: number[] = [];
  for (let p = min; p <= max; p += 2) out.push(p);
  return out;
};

t.test('sequential table hands out ascending ports, then the longest-free ones', async (t) => {
  const table = new PortTable({ min: 40000, max: 40006, sequential: true });
  t.equal(table.capacity, 4);
  t.same([table.take(), table.take()], [40000, 40002]);
  table.release(40000);
  t.same([table.take(), table.take(), table.take()], [40004, 40006, 40000]);
  t.equal(table.take(), undefined, 'full');
  t.equal(table.inUse, 4);
  table.release(40004);
  table.release(40002);
  t.same([table.take(), table.take()], [40004, 40002], 'in the order they were freed');
});

t.test('random table hands out every port once, not in ascending order', async (t) => {
  const table = new PortTable({ min: 30000, max: 30198, sequential: false, random: seeded(7) });
  const got: number[] = [];
  for (let i = 0; i < 200; i += 1) {
    const port = table.take();
    if (port === undefined) break;
    got.push(port);
  }
  t.equal(got.length, 100);
  t.same(
    [...got].sort((a, b) => a - b),
    range(30000, 30198),
  );
  t.not(got.join(), range(30000, 30198).join(), 'shuffled');
  t.equal(table.take(), undefined);
  table.release(30100);
  t.equal(table.take(), 30100, 'the one free pair');
});

t.test('release ignores ports that are not in use', async (t) => {
  const table = new PortTable({ min: 40000, max: 40002, sequential: true });
  const port = table.take();
  t.equal(port, 40000);
  table.release(40002); // free already
  table.release(40001); // odd
  table.release(39998); // outside the range
  table.release(40004);
  t.equal(table.free, 1);
  table.release(40000);
  table.release(40000); // twice
  t.equal(table.free, 2);
  t.same([table.take(), table.take(), table.take()], [40002, 40000, undefined]);
});

t.test('a parked pair rejoins the free list after BUSY_RETRY_MS', async (t) => {
  const c = clock();
  const table = new PortTable({ min: 40000, max: 40002, sequential: true, now: c.now });
  t.equal(table.take(), 40000);
  table.park(40000);
  t.equal(table.parked, 1);
  t.equal(table.take(), 40002);
  t.equal(table.take(), undefined, 'the parked pair is not handed out yet');
  c.advance(BUSY_RETRY_MS - 1);
  t.equal(table.take(), undefined);
  c.advance(1);
  t.equal(table.take(), 40000, 'back');
  t.equal(table.parked, 0);
});

t.test('untake puts a sequential pair back at the head', async (t) => {
  const table = new PortTable({ min: 40000, max: 40004, sequential: true });
  t.equal(table.take(), 40000);
  t.equal(table.take(), 40002);
  table.untake(40002);
  t.equal(table.take(), 40002);
});

t.test('allocate: a full range is refused without a bind', async (t) => {
  const ports = new PortAllocator({ min: 40000, max: 40002, sequential: true });
  const tried: number[] = [];
  const bind = (lease: PortLease): Promise<BindOutcome> => {
    tried.push(lease.port);
    return Promise.resolve('ok');
  };
  const a = await ports.allocate('127.0.0.1', bind);
  const b = await ports.allocate('127.0.0.1', bind);
  t.same([a?.port, b?.port], [40000, 40002]);
  t.equal(await ports.allocate('127.0.0.1', bind), undefined);
  t.same(tried, [40000, 40002], 'no bind for the refused allocation');
  a?.release();
  a?.release(); // idempotent
  t.equal((await ports.allocate('127.0.0.1', bind))?.port, 40000, 'released pair reused');
  t.equal(ports.table('127.0.0.1')?.inUse, 2);
});

t.test('allocate: each local address has its own table', async (t) => {
  const ports = new PortAllocator({ min: 40000, max: 40000, sequential: true });
  const ok = (): Promise<BindOutcome> => Promise.resolve('ok');
  t.equal((await ports.allocate('127.0.0.1', ok))?.port, 40000);
  t.equal((await ports.allocate('127.0.0.2', ok))?.port, 40000);
  t.equal(await ports.allocate('127.0.0.1', ok), undefined);
  t.equal(ports.addresses, 2);
});

t.test('allocate: busy pairs are parked and the attempts are bounded', async (t) => {
  const c = clock();
  const ports = new PortAllocator({ min: 40000, max: 40198, sequential: true, now: c.now });
  let calls = 0;
  const busy = (): Promise<BindOutcome> => {
    calls += 1;
    return Promise.resolve('busy');
  };
  t.equal(await ports.allocate('127.0.0.1', busy), undefined);
  t.equal(calls, MAX_BIND_ATTEMPTS, 'one allocation tries a bounded number of pairs');
  const table = ports.table('127.0.0.1');
  t.equal(table?.parked, MAX_BIND_ATTEMPTS);
  t.equal(table?.inUse, 0);
  // The next allocation starts after the parked pairs.
  const lease = await ports.allocate('127.0.0.1', () => Promise.resolve('ok'));
  t.equal(lease?.port, 40000 + 2 * MAX_BIND_ATTEMPTS);
  c.advance(BUSY_RETRY_MS);
  t.equal(table?.parked, MAX_BIND_ATTEMPTS, 'parked until a table operation looks');
  t.equal(table?.free, 100 - 1, 'every pair but the one in use is free again');
  t.equal(table?.parked, 0);
});

t.test('allocate: a fatal failure stops at once and loses no pair', async (t) => {
  const ports = new PortAllocator({ min: 40000, max: 40004, sequential: true });
  let calls = 0;
  const failed: PortLease[] = [];
  const fatal = (lease: PortLease): Promise<BindOutcome> => {
    calls += 1;
    failed.push(lease);
    return Promise.resolve('fatal');
  };
  t.equal(await ports.allocate('192.0.2.1', fatal), undefined);
  t.equal(calls, 1);
  t.equal(ports.table('192.0.2.1'), undefined, 'no table is kept for an address that never bound');
  t.equal(ports.addresses, 0);
  const ok = (): Promise<BindOutcome> => Promise.resolve('ok');
  t.equal((await ports.allocate('127.0.0.1', ok))?.port, 40000);
  t.equal(await ports.allocate('127.0.0.1', fatal), undefined);
  for (const lease of failed) lease.release(); // void leases: nothing happens
  t.equal(ports.table('127.0.0.1')?.inUse, 1);
  t.equal((await ports.allocate('127.0.0.1', ok))?.port, 40002, 'the pair went back at the head');
});

t.test('allocate: a bind that throws gives its pair back', async (t) => {
  const ports = new PortAllocator({ min: 40000, max: 40002, sequential: true });
  const ok = (): Promise<BindOutcome> => Promise.resolve('ok');
  const first = await ports.allocate('127.0.0.1', ok);
  await t.rejects(
    ports.allocate('127.0.0.1', () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  t.equal((await ports.allocate('127.0.0.1', ok))?.port, 40002);
  first?.release();
  t.equal(ports.table('127.0.0.1')?.inUse, 1);
});

t.test('allocate: random order over many cycles keeps the table consistent', async (t) => {
  const ports = new PortAllocator({ min: 20000, max: 20398, sequential: false, random: seeded(3) });
  const rnd = seeded(11);
  const held: PortLease[] = [];
  const seen = new Set<number>();
  let duplicates = 0;
  for (let i = 0; i < 5000; i += 1) {
    if (held.length > 0 && (held.length === 200 || rnd() < 0.45)) {
      const j = Math.floor(rnd() * held.length);
      const [lease] = held.splice(j, 1);
      lease?.release();
      continue;
    }
    const lease = await ports.allocate('127.0.0.1', () => Promise.resolve('ok'));
    if (lease === undefined) {
      t.fail(`refused with ${String(held.length)} of 200 in use`);
      break;
    }
    if (held.some((h) => h.port === lease.port)) duplicates += 1;
    held.push(lease);
    seen.add(lease.port);
  }
  t.equal(ports.table('127.0.0.1')?.inUse, held.length);
  t.equal(duplicates, 0, 'no pair handed out while in use');
  t.equal(seen.size, 200, 'every pair was used');
});
