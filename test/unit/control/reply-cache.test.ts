import t from 'tap';
import { waitUntil } from '../../helpers/control.ts';
import { REPLY_CACHE_TTL_MS, ReplyCache } from '../../../src/control/reply-cache.ts';

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
