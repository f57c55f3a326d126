/**
 * The --overload_prot detector: mean event-loop lateness per window against the limit, with an
 * injected histogram (deterministic), and the real one against a really blocked event loop.
 */
import t from 'tap';
import { type DelayHistogram, OverloadMonitor } from '../../../src/util/overload.ts';

class FakeHistogram implements DelayHistogram {
  mean = Number.NaN;
  count = 0;
  resets = 0;
  disabled = false;
  /** Records one window whose samples were late by `lateMs` on average (plus the resolution). */
  window(lateMs: number, resolutionMs = 10): void {
    this.mean = (lateMs + resolutionMs) * 1e6;
    this.count = 50;
  }
  reset(): void {
    this.resets += 1;
    this.mean = Number.NaN;
    this.count = 0;
  }
  disable(): boolean {
    this.disabled = true;
    return true;
  }
}

t.test('overloadMonitor: overloaded while a window is late by the limit or more', async (t) => {
  const h = new FakeHistogram();
  const changes: [boolean, number][] = [];
  const m = new OverloadMonitor({
    histogram: h,
    limitMs: 50,
    resolutionMs: 10,
    onChange: (o, late) => changes.push([o, late]),
  });
  t.equal(m.overloaded, false, 'not overloaded at start');
  h.window(5);
  t.equal(m.sample(), false, '5 ms late');
  h.window(49.9);
  t.equal(m.sample(), false, 'just below the limit');
  h.window(50);
  t.equal(m.sample(), true, 'at the limit');
  t.equal(m.lateMs, 50);
  t.equal(m.sample(), true, 'a window without samples keeps the state');
  h.window(200);
  t.equal(m.sample(), true);
  h.window(1);
  t.equal(m.sample(), false, 'back to normal after one good window');
  t.same(
    changes,
    [
      [true, 50],
      [false, 1],
    ],
    'onChange once per change',
  );
  t.equal(h.resets, 6, 'every sample() starts a new window');
  m.close();
  m.close();
  t.ok(h.disabled, 'close() stops the delay timer');
});

t.test('overloadMonitor: a late media worker makes the daemon overloaded too', async (t) => {
  const h = new FakeHistogram();
  let workerLate = 0;
  const m = new OverloadMonitor({
    histogram: h,
    limitMs: 50,
    resolutionMs: 10,
    otherLateMs: () => workerLate,
  });
  h.window(1);
  t.equal(m.sample(), false, 'both loops on time');
  h.window(1);
  workerLate = 80;
  t.equal(m.sample(), true, 'the worker is 80 ms late');
  t.equal(m.lateMs, 80, 'the latest loop counts');
  h.window(1);
  workerLate = 3;
  t.equal(m.sample(), false, 'the worker caught up');
});

t.test('overloadMonitor: the real event-loop delay sees a blocked loop', async (t) => {
  const m = new OverloadMonitor({ limitMs: 50 });
  t.teardown(() => m.close());
  await new Promise((resolve) => setTimeout(resolve, 300));
  m.sample();
  t.equal(m.overloaded, false, `an idle loop is not overloaded (${m.lateMs.toFixed(1)} ms late)`);
  // Busy for 150 ms out of every ~160 ms, for a second.
  const end = Date.now() + 1000;
  while (Date.now() < end) {
    const stop = Date.now() + 150;
    while (Date.now() < stop) {
      // spin
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  m.sample();
  t.equal(m.overloaded, true, `a blocked loop is overloaded (${m.lateMs.toFixed(1)} ms late)`);
});
