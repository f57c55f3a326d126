import t from 'tap';
import { waitUntil } from '../../helpers/control.ts';
import {
  REPLY_CACHE_ENTRY_OVERHEAD,
  REPLY_CACHE_TTL_MS,
  ReplyCache,
} from '../../../src/control/reply-cache.ts';

interface WithTeardown {
  teardown(fn: () => unknown): void;
}

function makeCache(t: WithTeardown): { cache: ReplyCache; clock: { now: number } } {
  const clock = { now: 1000 };
  const cache = new ReplyCache({ now: () => clock.now });
  t.teardown(() => {
    cache.close();
  });
  return { cache, clock };
}

t.test('replyCache.claim() misses once, then hits with the stored bytes', async (t) => {
  const { cache } = makeCache(t);
  t.strictSame(cache.claim('c1'), { kind: 'miss' });
  const reply = Buffer.from('c1 0\n', 'latin1');
  cache.complete('c1', reply);
  const again = cache.claim('c1');
  t.equal(again.kind, 'hit');
  if (again.kind === 'hit') t.equal(again.reply, reply, 'same bytes, unchanged');
  t.equal(cache.claim('c2').kind, 'miss', 'other cookie is independent');
});

t.test('replyCache.claim() of an in-flight cookie waits for its reply', async (t) => {
  const { cache } = makeCache(t);
  t.equal(cache.claim('k').kind, 'miss');
  const first = cache.claim('k');
  const second = cache.claim('k');
  t.equal(first.kind, 'pending');
  t.equal(second.kind, 'pending');
  const reply = Buffer.from('k 20040107\n');
  cache.complete('k', reply);
  if (first.kind === 'pending' && second.kind === 'pending') {
    t.equal(await first.reply, reply);
    t.equal(await second.reply, reply);
  }
  t.equal(cache.claim('k').kind, 'hit');
});

t.test(
  'replyCache.sweep() expires entries TTL after the receive time, not the completion time',
  async (t) => {
    const { cache, clock } = makeCache(t);
    cache.claim('a');
    clock.now += 10_000; // the command took 10 s
    cache.complete('a', Buffer.from('a 0\n'));
    cache.sweep();
    t.equal(cache.size, 1);
    clock.now = 1000 + REPLY_CACHE_TTL_MS - 1;
    cache.sweep();
    t.equal(cache.claim('a').kind, 'hit', 'still cached just before 35 s');
    clock.now = 1000 + REPLY_CACHE_TTL_MS;
    cache.sweep();
    t.equal(cache.size, 0);
    t.equal(cache.claim('a').kind, 'miss', 'expired: the command would run again');
  },
);

t.test('replyCache.sweep() keeps in-flight entries', async (t) => {
  const { cache, clock } = makeCache(t);
  cache.claim('slow');
  clock.now += REPLY_CACHE_TTL_MS * 2;
  cache.sweep();
  t.equal(cache.claim('slow').kind, 'pending');
});

t.test('replyCache timer sweeps with the injected clock and close() stops it', async (t) => {
  const clock = { now: 0 };
  const cache = new ReplyCache({ now: () => clock.now, sweepIntervalMs: 5 });
  t.teardown(() => {
    cache.close();
  });
  cache.claim('x');
  cache.complete('x', Buffer.from('x 0\n'));
  clock.now = REPLY_CACHE_TTL_MS;
  await waitUntil(() => cache.size === 0, 'timer sweep', 2000);
  t.equal(cache.size, 0, 'swept by the timer');
  cache.close();
  cache.close();
  let sweeps = 0;
  cache.sweep = () => {
    sweeps++;
  };
  // A negative check needs a window: ten sweep intervals.
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(sweeps, 0, 'no sweep after close()');
});

t.test(
  'replyCache.bytes counts cookies, replies and overhead; over the bound the oldest go',
  async (t) => {
    const clock = { now: 0 };
    const per = REPLY_CACHE_ENTRY_OVERHEAD + 2 + 11;
    const cache = new ReplyCache({ now: () => clock.now, maxBytes: 3 * per });
    t.teardown(() => {
      cache.close();
    });
    const reply = (c: string): Buffer => Buffer.from(`${c} 2004010\n`);
    t.equal(cache.claim('c1').kind, 'miss');
    t.equal(cache.bytes, REPLY_CACHE_ENTRY_OVERHEAD + 2, 'an entry in flight: cookie and overhead');
    cache.complete('c1', reply('c1'));
    t.equal(cache.bytes, per);
    for (const c of ['c2', 'c3']) {
      cache.claim(c);
      cache.complete(c, reply(c));
    }
    t.equal(cache.bytes, 3 * per, 'at the bound, all kept');
    cache.claim('c4');
    t.equal(cache.claim('c5').kind, 'miss');
    t.equal(cache.size, 3, 'the two oldest completed entries were dropped for the in-flight ones');
    t.equal(cache.claim('c1').kind, 'miss', 'c1 is gone');
    cache.complete('c4', reply('c4'));
    cache.complete('c5', reply('c5'));
    t.ok(cache.bytes <= 3 * per);
    clock.now = REPLY_CACHE_TTL_MS;
    cache.complete('c1', reply('c1'));
    cache.sweep();
    t.equal(cache.size, 0);
    t.equal(cache.bytes, 0, 'nothing left counted after the sweep');
  },
);
