/**
 * The parser's context built from the configuration: the Kamailio notify forms get the `-n`
 * targets the notifier matches against (docs/protocol.md 8.3, 14.1), and the rest is read off the
 * -l addresses.
 */
import t from 'tap';
import { buildConfig, isConfigErrors } from '../../../src/cli/config.ts';
import { parseOptions } from '../../../src/cli/options.ts';
import type { Config } from '../../../src/base/config.ts';
import { parseContextOf } from '../../../src/control/parse-context.ts';

function config(argv: readonly string[]): Config {
  const parsed = parseOptions(['-f', '-s', 'udp:127.0.0.1:22222', ...argv]);
  if (!parsed.ok) throw new Error(parsed.message);
  const built = buildConfig(parsed.options);
  if (isConfigErrors(built)) throw new Error('config');
  return built;
}

t.test('the context is read off the configuration', async (t) => {
  const plain = parseContextOf(config([]));
  t.equal(plain.bridge, false);
  t.equal(plain.kamailioNotifyTargets, undefined, 'no --kamailio_notify');
  t.equal(plain.localFamilies, undefined, 'dispatch adds the live families');
  t.equal(
    parseContextOf(config(['-n', 'unix:/run/n.sock'])).kamailioNotifyTargets,
    undefined,
    '-n alone leaves the Kamailio forms off',
  );
  const kamailio = parseContextOf(config(['-n', 'unix:/run/n.sock', '--kamailio_notify']));
  t.same(
    kamailio.kamailioNotifyTargets?.map((target) => target.name),
    ['unix:/run/n.sock'],
    'the -n targets, matched as the notifier matches',
  );
  const bridge = parseContextOf(config(['-l', '127.0.0.1/127.0.0.2']));
  t.equal(bridge.bridge, true);
  t.equal(bridge.hasIpv6, false);
  t.equal(bridge.defaultFamily, 4);
});
