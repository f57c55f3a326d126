import pino from 'pino';
import t from 'tap';
import { type BatchOutcome, Batcher } from '../../../src/nft/batcher.ts';

/** An owner whose work is a list of numbers; each transaction takes them all, as nft would. */
class Work {
  readonly queued: number[] = [];
  readonly transactions: number[][] = [];
  /** The outcomes of the next transactions, in order; committed once they are used up. */
  readonly outcomes: BatchOutcome[] = [];
  /** Resolves the transaction in flight. */
  release: (() => void) | undefined;
  hold = false;

  pending(): boolean {
    return this.queued.length > 0;
  }

  async run(): Promise<BatchOutcome | undefined> {
    const taken = this.queued.splice(0);
    if (taken.length === 0) return undefined;
    this.transactions.push(taken);
    if (this.hold) await new Promise<void>((resolve) => (this.release = resolve));
    const outcome = this.outcomes.shift() ?? { ok: true };
    if (!outcome.ok) this.queued.unshift(...taken);
    return outcome;
  }
}

function batcher(work: Work, warnings: string[] = []): Batcher {
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
  return new Batcher(
    { pending: () => work.pending(), run: () => work.run() },
    { logger, now: () => performance.now(), table: 'rtpproxy_test', warning: 'update failed' },
  );
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('what is asked during a transaction goes out together in the next one', async (t) => {
  const work = new Work();
  const b = batcher(work);
  work.hold = true;
  work.queued.push(1);
  b.schedule();
  b.schedule();
  await turn();
  t.strictSame(work.transactions, [[1]], 'one transaction for two schedules');
  work.queued.push(2, 3);
  b.schedule();
  const settled = b.settled();
  await turn();
  t.strictSame(work.transactions, [[1]], 'none starts while one runs');
  work.hold = false;
  work.release?.();
  await settled;
  t.strictSame(work.transactions, [[1], [2, 3]], 'then one carries both');
  t.equal(b.committed, 2);
  await b.stop();
});

t.test(
  'a refused transaction: one warning, the retry a second later, settled waits for it',
  async (t) => {
    const work = new Work();
    const warnings: string[] = [];
    const b = batcher(work, warnings);
    work.outcomes.push({ ok: false, message: 'no such table' }, { ok: false, message: 'again' });
    work.queued.push(7);
    b.schedule();
    await b.settled();
    t.equal(b.failed, 1, 'settled resolves with the refusal');
    t.equal(warnings.length, 1);
    t.match(JSON.parse(warnings[0] ?? '{}'), {
      msg: 'update failed',
      table: 'rtpproxy_test',
      reason: 'no such table',
      failed: 1,
    });
    // The retry timer is unref'd (it never holds the daemon up): something else keeps this alive.
    const alive = setInterval(() => undefined, 100);
    t.teardown(() => clearInterval(alive));
    const started = performance.now();
    await b.settled();
    t.ok(performance.now() - started >= 900, 'the retry came after the pause');
    t.equal(b.failed, 2);
    t.equal(warnings.length, 1, 'one warning a minute');
    await b.settled();
    t.equal(b.committed, 1, 'the third try committed');
    t.strictSame(work.transactions, [[7], [7], [7]]);
    await b.stop();
  },
);

t.test('stop: no transaction after the one in flight; waiters are released', async (t) => {
  const work = new Work();
  const b = batcher(work);
  work.hold = true;
  work.queued.push(1);
  b.schedule();
  await turn();
  work.queued.push(2);
  b.schedule();
  const next = b.nextTransaction();
  const stopped = b.stop();
  work.release?.();
  await stopped;
  await next;
  await turn();
  t.strictSame(work.transactions, [[1]], 'the pending work never went out');
  await b.settled();
  b.schedule();
  await turn();
  t.strictSame(work.transactions, [[1]]);
});
