/**
 * The parser's context built from the configuration: the Kamailio notify forms know exactly the
 * sockets the notifier would match (docs/protocol.md 8.3, 14.1), and the rest is read off the -l
 * addresses.
 */
import t from 'tap';
import { buildConfig, isConfigErrors } from '../../../src/cli/config.ts';
import { parseOptions } from '../../../src/cli/options.ts';
import type { Config } from '../../../src/base/config.ts';
import { notifySocketNames, parseContextOf } from '../../../src/control/parse-context.ts';
import { matchNotifyTarget, parseNotifyTargets } from '../../../src/notify/targets.ts';

function config(argv: readonly string[]): Config {
  const parsed = parseOptions(['-f', '-s', 'udp:127.0.0.1:22222', ...argv]);
  if (!parsed.ok) throw new Error(parsed.message);
  const built = buildConfig(parsed.options);
  if (isConfigErrors(built)) throw new Error('config');
  return built;
}

t.test('the notify socket names are what matchNotifyTarget() matches', async (t) => {
  const { specs } = parseNotifyTargets([
    'unix:/run/a.sock',
    '/run/b.sock',
    'unix:/run/c:d.sock',
    'tcp:127.0.0.1:9999',
    'tcp:%%CC_SELF%%:9998',
  ]);
  const names = notifySocketNames(specs);
  const sockets = [
    'unix:/run/a.sock',
    '/run/a.sock',
    'unix:/run/b.sock',
    '/run/b.sock',
    'unix:/run/c:d.sock',
    '/run/c:d.sock',
    'tcp:127.0.0.1:9999',
    '127.0.0.1:9999',
    'tcp:%%CC_SELF%%:9998',
    'tcp:%%CC_SELF%%:9999',
    'unix:/run/x.sock',
    '',
  ];
  for (const socket of sockets) {
    t.equal(names.has(socket), matchNotifyTarget(specs, socket) !== undefined, socket);
  }
});

t.test('the context is read off the configuration', async (t) => {
  const plain = parseContextOf(config([]));
  t.equal(plain.bridge, false);
  t.equal(plain.kamailioNotifySockets, undefined, 'no --kamailio_notify');
  t.equal(plain.localFamilies, undefined, 'dispatch adds the live families');
  t.equal(
    parseContextOf(config(['-n', 'unix:/run/n.sock'])).kamailioNotifySockets,
    undefined,
    '-n alone leaves the Kamailio forms off',
  );
  const kamailio = parseContextOf(config(['-n', 'unix:/run/n.sock', '--kamailio_notify']));
  t.same([...(kamailio.kamailioNotifySockets ?? [])].sort(), ['/run/n.sock', 'unix:/run/n.sock']);
  const bridge = parseContextOf(config(['-l', '127.0.0.1/127.0.0.2']));
  t.equal(bridge.bridge, true);
  t.equal(bridge.hasIpv6, false);
  t.equal(bridge.defaultFamily, 4);
});
