import t from 'tap';
import { InFlight } from '../../../src/util/in-flight.ts';

t.test(
  'InFlight: idle() resolves once every begun operation has ended, or on abandon()',
  async (t) => {
    const f = new InFlight();
    let done = false;
    await f.idle();
    t.pass('idle at once when nothing is under way');
    f.begin();
    f.begin();
    void f.idle().then(() => {
      done = true;
    });
    f.end();
    await Promise.resolve();
    t.notOk(done, 'one operation still under way');
    f.end();
    await Promise.resolve();
    t.ok(done, 'the last end() releases the waiters');
    f.end();
    await f.idle();
    t.pass('an extra end() does not go below zero');
    f.begin();
    let abandoned = false;
    void f.idle().then(() => {
      abandoned = true;
    });
    f.abandon();
    await Promise.resolve();
    t.ok(abandoned, 'abandon() releases the waiters');
    await f.idle();
    t.pass('and nothing is under way afterwards');
  },
);
