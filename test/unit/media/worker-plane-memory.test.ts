/**
 * A media worker's tables stay bounded over many sessions: after N create / bind / free cycles
 * the worker holds no stream, its stream table is no longer than the most streams ever live at
 * once (slots are reused, docs/performance.md "Memory and port exhaustion"), and the main
 * thread's side holds no proxy and no pending bind. The sockets are real, bound on loopback.
 */
import t from 'tap';
import { WorkerMediaPlane } from '../../../src/media/worker/worker-plane.ts';
import { GlobalStats } from '../../../src/util/stats.ts';
import { portWindow } from '../../helpers/udp.ts';

/** Sessions set up and torn down one after the other; a few in flight at once. */
const CYCLES = 400;
const IN_FLIGHT = 4;

t.test('after many sessions a worker holds no stream and its tables stay bounded', async (t) => {
  const [, min, , max] = portWindow(72);
  const plane = new WorkerMediaPlane({
    portMin: Number(min),
    portMax: Number(max),
    sequentialPorts: false,
    sendTwice: false,
    connect: false,
    strictSource: true,
    stats: new GlobalStats(),
    workers: 1,
    onFatal: (err) => {
      t.fail(`media worker failed: ${err.message}`);
    },
  });
  t.teardown(() => plane.close());
  await plane.running();
  const activity = { touch: () => undefined };
  let bindFailures = 0;
  const cycle = async (): Promise<void> => {
    const legs = plane.createStreams(activity);
    for (const leg of legs) {
      if (!(await plane.bindPair('127.0.0.1', 4, leg.rtp, leg.rtcp))) bindFailures += 1;
    }
    for (const leg of legs) {
      leg.rtp.detach();
      leg.rtcp.detach();
    }
  };
  const run = async (cycles: number): Promise<void> => {
    for (let done = 0; done < cycles; done += IN_FLIGHT) {
      await Promise.all(Array.from({ length: IN_FLIGHT }, cycle));
    }
    await plane.flush();
  };
  await run(CYCLES / 2);
  const [half] = await plane.memory();
  await run(CYCLES / 2);
  const [end] = await plane.memory();
  if (half?.worker === undefined || end?.worker === undefined) {
    t.fail('the worker did not answer');
    return;
  }
  t.equal(bindFailures, 0, 'every pair was bound');
  t.equal(end.worker.streams, 0, 'no stream left on the worker');
  t.equal(end.main.streams, 0, 'no stream proxy left on the main thread');
  t.equal(end.main.binds, 0, 'no bind awaiting an answer');
  t.equal(end.main.freeSlots, half.main.freeSlots, 'every slot is free again');
  // A freed stream's slot is taken again once the worker confirmed it closed the socket, so the
  // sessions being freed and the ones being set up may hold twice the slots of those in flight.
  t.ok(
    end.worker.table <= 2 * 4 * IN_FLIGHT,
    `stream table of ${String(end.worker.table)} entries`,
  );
  t.equal(end.worker.table, half.worker.table, 'the table did not grow in the second half');
});
