import { pino } from 'pino';
import t from 'tap';
import { CommandRunner, INTERNAL_ERROR_REPLY } from '../../../src/control/runner.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

const silent = pino({ level: 'silent' });

interface Deferred {
  readonly promise: Promise<string>;
  resolve(value: string): void;
}

function deferred(): Deferred {
  let resolve: (value: string) => void = () => undefined;
  const promise = new Promise<string>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

t.test('commandRunner.run() executes one command at a time, in arrival order', async (t) => {
  const started: string[] = [];
  const gates = new Map<string, Deferred>([
    ['a', deferred()],
    ['b', deferred()],
    ['c', deferred()],
  ]);
  const runner = new CommandRunner(
    (line) => {
      started.push(line);
      return gates.get(line)?.promise ?? Promise.resolve('0\n');
    },
    new GlobalStats(),
    silent,
  );
  const replies = ['a', 'b', 'c'].map((line) => runner.run(line));
  await new Promise((resolve) => setImmediate(resolve));
  t.strictSame(started, ['a'], 'b waits while a runs');
  gates.get('b')?.resolve('B\n');
  await new Promise((resolve) => setImmediate(resolve));
  t.strictSame(started, ['a'], 'b does not overtake a even when its gate opened first');
  gates.get('a')?.resolve('A\n');
  gates.get('c')?.resolve('C\n');
  t.strictSame(await Promise.all(replies), ['A\n', 'B\n', 'C\n']);
  t.strictSame(started, ['a', 'b', 'c']);
});

t.test('commandRunner counts received before running and replies after', async (t) => {
  const stats = new GlobalStats();
  const seenRcvd: number[] = [];
  const runner = new CommandRunner(
    async (line) => {
      seenRcvd.push(stats.ncmdsRcvd);
      t.equal(stats.ncmdsRepld, seenRcvd.length - 1, 'own reply not counted yet');
      return line === 'bad' ? 'E5\n' : line === 'bad2' ? 'E50\n' : line === 'e' ? 'Ex\n' : '0\n';
    },
    stats,
    silent,
  );
  await runner.run('ok');
  await runner.run('bad');
  await runner.run('bad2');
  await runner.run('e');
  t.strictSame(seenRcvd, [1, 2, 3, 4], 'ncmds_rcvd includes the running command');
  t.equal(stats.ncmdsRcvd, 4);
  t.equal(stats.ncmdsRepld, 4);
  t.equal(stats.ncmdsErrs, 2, 'E followed by a digit is an error');
  t.equal(stats.ncmdsSuccd, 2, '"Ex" is not an error reply');
  runner.noteDuplicate();
  t.equal(stats.ncmdsRcvdNdups, 1);
  t.equal(stats.ncmdsRcvd, 4, 'duplicates are not received commands');
});

t.test(
  'commandRunner answers E89 and logs the stack when the handler breaks its contract',
  async (t) => {
    const logged: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
    const stats = new GlobalStats();
    const runner = new CommandRunner(
      (line) => {
        if (line === 'sync') throw new Error('boom sync');
        if (line === 'type') return Promise.resolve(42 as unknown as string);
        return Promise.reject(new Error('boom async'));
      },
      stats,
      log,
    );
    t.equal(await runner.run('sync'), INTERNAL_ERROR_REPLY);
    t.equal(await runner.run('async'), INTERNAL_ERROR_REPLY);
    t.equal(await runner.run('type'), INTERNAL_ERROR_REPLY);
    t.equal(INTERNAL_ERROR_REPLY, 'E89\n');
    t.equal(stats.ncmdsErrs, 3);
    t.equal(logged.length, 3);
    const first = JSON.parse(logged[0] ?? '{}') as { level?: number; err?: { stack?: string } };
    t.equal(first.level, 50, 'logged at error');
    t.match(first.err?.stack ?? '', /boom sync/, 'with the stack');
    t.equal(await runner.run('later').then(() => 'served'), 'served', 'keeps serving');
  },
);

t.test('commandRunner.drain() resolves after the queued commands', async (t) => {
  const gate = deferred();
  const runner = new CommandRunner(() => gate.promise, new GlobalStats(), silent);
  let answered = false;
  void runner.run('x').then(() => {
    answered = true;
  });
  const drained = runner.drain().then(() => answered);
  gate.resolve('0\n');
  t.equal(await drained, true);
});

t.test(
  'commandRunner: a counted reply says whether it failed, and carries the arrival',
  async (t) => {
    const stats = new GlobalStats();
    let clock = 100;
    const arrivals: (number | undefined)[] = [];
    const runner = new CommandRunner(
      (line, _origin, receivedAt) => {
        arrivals.push(receivedAt);
        clock += 50;
        return Promise.resolve(line === 'L' ? { text: '0\n', failed: true } : '0\n');
      },
      stats,
      silent,
      () => clock,
    );
    const replies = [runner.run('L'), runner.run('D')];
    t.strictSame(await Promise.all(replies), ['0\n', '0\n'], 'the text is the reply');
    t.strictSame(arrivals, [100, 100], 'stamped when queued, not when run');
    t.equal(stats.ncmdsErrs, 1, 'the L that found nothing is an error');
    t.equal(stats.ncmdsSuccd, 1);
    t.equal(stats.ncmdsRepld, 2);
  },
);

t.test('commandRunner.runTask() waits in the same queue and counts like a command', async (t) => {
  const stats = new GlobalStats();
  const gate = deferred();
  const order: string[] = [];
  const runner = new CommandRunner(
    async (line) => {
      order.push(line);
      return gate.promise;
    },
    stats,
    silent,
  );
  const first = runner.run('V');
  const task = runner.runTask(
    async () => {
      order.push('task');
      return { reply: 'ng reply', failed: true };
    },
    () => 'crash',
  );
  const crash = runner.runTask(
    () => Promise.reject(new Error('boom')),
    () => 'crash',
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.strictSame(order, ['V'], 'the task waits for the command before it');
  gate.resolve('20040107\n');
  t.equal(await first, '20040107\n');
  t.equal(await task, 'ng reply');
  t.equal(await crash, 'crash', 'a task that rejects is answered by onCrash');
  t.strictSame(order, ['V', 'task']);
  t.equal(stats.ncmdsRcvd, 3);
  t.equal(stats.ncmdsRepld, 3);
  t.equal(stats.ncmdsErrs, 2);
  t.equal(stats.ncmdsSuccd, 1);
});
