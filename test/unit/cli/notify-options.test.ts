/** `-n`, `--kamailio_notify` and `--overload_prot` on the command line (docs/protocol.md 8.1, 13). */
import t from 'tap';
import { buildConfig, isConfigErrors } from '../../../src/cli/config.ts';
import { parseOptions } from '../../../src/cli/options.ts';

function build(argv: readonly string[]) {
  const parsed = parseOptions(argv);
  if (!parsed.ok) throw new Error(parsed.message);
  return buildConfig(parsed.options);
}

function errors(argv: readonly string[]): string[] {
  const built = build(argv);
  return isConfigErrors(built) ? built.map((e) => `${e.flag}: ${e.message}`) : [];
}

t.test('-n values are validated at start-up', async (t) => {
  t.same(
    errors([
      '-n',
      'unix:/run/n.sock',
      '-n',
      '/run/m.sock',
      '-n',
      'tcp:127.0.0.1:9999',
      '-n',
      'tcp:%%CC_SELF%%:9999',
    ]),
    [],
  );
  t.match(errors(['-n', 'tcp:127.0.0.1']), [/^-n: .*tcp:HOST:PORT/]);
  t.match(errors(['-n', 'udp:127.0.0.1:9']), [/^-n: .*stream sockets/]);
  t.match(errors(['-n', 'tcp:proxy.example:9', '--no_resolve']), [/^-n: .*--no_resolve/]);
  t.same(errors(['-n', 'tcp:proxy.example:9']), [], 'names are fine when they may be resolved');
  t.match(errors(['-n', '']), [/^-n: .*empty/]);
});

t.test('--kamailio_notify is off by default and needs a -n target', async (t) => {
  const plain = build(['-n', 'tcp:127.0.0.1:9']);
  t.equal(!isConfigErrors(plain) && plain.kamailioNotify, false);
  const on = build(['-n', 'tcp:127.0.0.1:9', '--kamailio_notify']);
  t.equal(!isConfigErrors(on) && on.kamailioNotify, true);
  const abbreviated = build(['-n', 'tcp:127.0.0.1:9', '--kam']);
  t.equal(
    !isConfigErrors(abbreviated) && abbreviated.kamailioNotify,
    true,
    'getopt_long abbreviation',
  );
  t.match(errors(['--kamailio_notify']), [
    /^--kamailio_notify: needs a timeout notification target/,
  ]);
  const arg = parseOptions(['--kamailio_notify=1']);
  t.equal(arg.ok, false, 'takes no argument');
});
