import t from 'tap';
import { buildConfig, isConfigErrors } from '../../../src/cli/config.ts';
import { parseOptions } from '../../../src/cli/options.ts';
import { isCapabilitySupported } from '../../../src/control/capabilities.ts';

const parsed = parseOptions(['-f', '-s', 'udp:127.0.0.1:22222']);
if (!parsed.ok) throw new Error(parsed.message);
const config = buildConfig(parsed.options);
if (isConfigErrors(config)) throw new Error('config');

// What Kamailio and OpenSIPS probe at start-up (docs/protocol.md 14.3), and what we really do.
const answers: readonly (readonly [string, boolean])[] = [
  ['20040107', true],
  ['20050322', true],
  ['20060704', true],
  ['20071116', true],
  ['20071218', true],
  ['20250523', true],
  ['20080403', true],
  ['20081102', true],
  ['20081224', false],
  ['20090810', true],
  ['20140617', true],
  ['20150420', true],
  ['20150617', true],
  ['20170313', false],
  ['20191015', true],
  ['20200226', true],
  ['20230314', true],
  ['20260308', true],
  ['20251015', true],
  ['20260309', true],
  ['19700101', false],
  ['', false],
];

t.test('VF 20081224 answers 1 only when a -n target is configured', async (t) => {
  const withN = parseOptions(['-f', '-s', 'udp:127.0.0.1:22222', '-n', 'unix:/tmp/n.sock']);
  if (!withN.ok) throw new Error(withN.message);
  const c = buildConfig(withN.options);
  if (isConfigErrors(c)) throw new Error('config');
  t.equal(isCapabilitySupported('20081224', c), true, 'with -n');
  t.equal(isCapabilitySupported('20081224', config), false, 'without -n');
});

for (const [date, want] of answers) {
  t.test(`isCapabilitySupported(${JSON.stringify(date)}) is ${String(want)}`, async (t) => {
    t.equal(isCapabilitySupported(date, config), want);
  });
}
