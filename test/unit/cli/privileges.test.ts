import t from 'tap';
import type { Config } from '../../../src/base/config.ts';
import { buildConfig, isConfigErrors } from '../../../src/cli/config.ts';
import { parseOptions } from '../../../src/cli/options.ts';
import { checkRoot } from '../../../src/cli/privileges.ts';

function config(args: string[]): Config {
  const parsed = parseOptions(['-f', ...args]);
  if (!parsed.ok) throw new Error(parsed.message);
  const built = buildConfig(parsed.options);
  if (isConfigErrors(built)) throw new Error(JSON.stringify(built));
  return built;
}

t.test(
  'as root without -u, an ng: control socket is refused like any network socket',
  async (t) => {
    const ng = config(['-s', 'ng:udp:127.0.0.1:2223']);
    t.match(checkRoot(ng, 0).refuse, /network control socket \(ng:udp:127\.0\.0\.1:2223\)/);
    t.strictSame(checkRoot(ng, 1000), {});
    t.equal(checkRoot(config(['-s', 'ng:udp6:[::1]:2223', '-F']), 0).refuse, undefined);
  },
);
