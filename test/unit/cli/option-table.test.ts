/**
 * The option table (src/cli/option-table.ts) against what is made from it and what documents it:
 * the usage text, byte for byte as the reference prints it plus our long options, and the
 * README's option table, which must list every option and nothing else.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { OPTIONS, USAGE, type OptionSpec } from '../../../src/cli/option-table.ts';

const options: readonly OptionSpec[] = OPTIONS;

t.test('the usage text is unchanged', async (t) => {
  t.equal(
    USAGE,
    [
      'usage:\trtpproxy [-2fvFiPaRbD] [-l addr1[/addr2]] [-6 addr1[/addr2]] [-s path]',
      '\t  [-t tos] [-r rdir [-S sdir]] [-T ttl] [-L nfiles] [-m port_min]',
      '\t  [-M port_max] [-u uname[:gname]] [-w sock_mode] [-n timeout_socket]',
      '\t  [-d log_level[:log_facility]] [-p pid_file] [-c fifo|rr]',
      '\t  [-A addr1[/addr2]] [-W setup_ttl] [--nice N] [--force_asymmetric]',
      '\t  [--bridge_symmetric] [--no_resolve] [--no_redirect] [--overload_prot]',
      '\t  [--kamailio_notify] [--workers N] [--no_connect_media] [--config file]',
      '\t  [--no_strict_source] [--dso file] [--nft auto|on|off]',
      '\t  [--kernel auto|on|off] [--http ADDR:PORT]',
      '\trtpproxy -v | -V | -C',
    ].join('\n'),
  );
});

t.test('every option shows in the usage text', async (t) => {
  const cluster = /\[-([0-9A-Za-z]+)\]/.exec(USAGE)?.[1] ?? '';
  for (const o of options) {
    const escaped = o.flag.replace(/[-[\]]/g, '\\$&');
    const own = new RegExp(`[[ ]${escaped}(?=[ \\]]|$)`).test(USAGE);
    const clustered = !o.flag.startsWith('--') && cluster.includes(o.flag.slice(1));
    t.ok(own || clustered, `${o.flag} is in the usage text`);
  }
});

t.test('flags are unique', async (t) => {
  const flags = options.map((o) => o.flag);
  t.same([...new Set(flags)], flags);
});

/** The README's option table: each `-x ARG` form of its first column, as flag and argument. */
function readmeOptions(): { flag: string; arg: string | undefined }[] {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('| option | meaning | default |');
  if (start === -1) throw new Error('README.md has no option table');
  const rows = readme.slice(start).split('\n').slice(2);
  const found: { flag: string; arg: string | undefined }[] = [];
  for (const row of rows) {
    if (!row.startsWith('|')) break;
    const first = row.split('|')[1] ?? '';
    for (const [, span] of first.matchAll(/`([^`]+)`/g)) {
      const m = /^(--?[0-9A-Za-z_]+)(?: (.+))?$/.exec(span ?? '');
      if (m?.[1] !== undefined) found.push({ flag: m[1], arg: m[2] });
    }
  }
  return found;
}

t.test("the README's option table lists exactly the options", async (t) => {
  const documented = readmeOptions();
  const inReadme = new Set(documented.map((d) => d.flag));
  const inTable = new Set(options.map((o) => o.flag));
  t.same(
    [...inTable].filter((f) => !inReadme.has(f)),
    [],
    'options missing from the README',
  );
  t.same(
    [...inReadme].filter((f) => !inTable.has(f)),
    [],
    'README options that do not exist',
  );
  for (const d of documented) {
    const o = options.find((x) => x.flag === d.flag);
    if (o === undefined || d.arg === undefined) continue;
    t.not(o.arg, undefined, `the README shows ${d.flag} with an argument, and it takes one`);
  }
  for (const o of options) {
    if (o.arg !== undefined) continue;
    t.notOk(
      documented.some((d) => d.flag === o.flag && d.arg !== undefined),
      `${o.flag} takes no argument and the README shows none`,
    );
  }
});
