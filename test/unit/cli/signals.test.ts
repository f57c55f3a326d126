import t from 'tap';
import { stopSignals } from '../../../src/cli/main.ts';

t.test(
  "stopSignals(): the reference's stop signals, without SIGPROF under V8's profiler",
  async (t) => {
    const all = stopSignals([], '');
    t.ok(all.includes('SIGTERM') && all.includes('SIGPROF') && all.includes('SIGUSR1'));
    t.notOk(stopSignals(['--cpu-prof'], '').includes('SIGPROF'), 'node --cpu-prof');
    t.notOk(stopSignals(['--cpu-prof-dir=/tmp/p'], '').includes('SIGPROF'), '--cpu-prof-dir');
    t.notOk(stopSignals([], '--prof --max-old-space-size=100').includes('SIGPROF'), 'NODE_OPTIONS');
    t.ok(stopSignals(['--cpu-prof'], '').includes('SIGTERM'), 'the others stay');
    t.ok(stopSignals(['--import=tsx'], '').includes('SIGPROF'), 'other options change nothing');
    t.notOk(all.includes('SIGXFSZ'), 'a file-size limit stops one recording, not the daemon');
  },
);
