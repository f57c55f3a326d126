/**
 * Which local address a U/L asks for (docs/protocol.md 3.2 `6`, `i`/`e`, `l`, `r`): the automatic
 * choice by family and its E36, checked against the default address's family as the reference's
 * rtpp_command_ul_opts_parse() does.
 */
import t from 'tap';
import { type ParseContext, parseCommand } from '../../../src/control/parse.ts';

const V4_DEFAULT: ParseContext = {
  bridge: false,
  hasIpv6: true,
  labels: new Set(['v6']),
  defaultFamily: 4,
};
const V4_ONLY: ParseContext = {
  bridge: false,
  hasIpv6: false,
  labels: new Set(),
  defaultFamily: 4,
};
const V6_ONLY: ParseContext = {
  bridge: false,
  hasIpv6: true,
  labels: new Set(),
  defaultFamily: 6,
  localFamilies: new Set([6]),
};
const BRIDGE_46: ParseContext = {
  bridge: true,
  hasIpv6: true,
  labels: new Set(),
  defaultFamily: 4,
};

type Want = { readonly e: number } | { readonly local: Readonly<Record<string, unknown>> };

const cases: readonly (readonly [line: string, ctx: ParseContext, want: Want])[] = [
  ['U c 192.0.2.1 5000 ft', V4_DEFAULT, { local: { kind: 'default' } }],
  ['U6 c 2001:db8::1 5000 ft', V4_DEFAULT, { local: { kind: 'family', family: 6 } }],
  ['U6 c 2001:db8::1 5000 ft', V4_ONLY, { e: 36 }],
  ['U6 c 1.2 3 ft', V4_ONLY, { e: 36 }],
  // An explicit choice skips the family check.
  ['U6l{v6} c 2001:db8::1 5000 ft', V4_DEFAULT, { local: { kind: 'label', label: 'v6' } }],
  [
    'U6l[::1] c 2001:db8::1 5000 ft',
    V4_ONLY,
    { local: { kind: 'address', address: '::1', family: 6 } },
  ],
  [
    'U6r[::1] c 2001:db8::1 5000 ft',
    V4_ONLY,
    { local: { kind: 'route', address: '::1', family: 6 } },
  ],
  // An IPv6 default: plain (IPv4) U needs an IPv4 address.
  ['U6 c 2001:db8::1 5000 ft', V6_ONLY, { local: { kind: 'default' } }],
  ['U c 192.0.2.1 5000 ft', V6_ONLY, { e: 36 }],
  ['L c 192.0.2.1 5000 ft tt', V6_ONLY, { e: 36 }],
  // Interface letters skip it too (bridge mode names the interfaces itself).
  [
    'U6ie c 2001:db8::1 5000 ft',
    BRIDGE_46,
    { local: { kind: 'interfaces', first: 'i', second: 'e' } },
  ],
  ['U6e c 2001:db8::1 5000 ft', BRIDGE_46, { local: { kind: 'interfaces', first: 'e' } }],
  ['U6 c 2001:db8::1 5000 ft', BRIDGE_46, { local: { kind: 'family', family: 6 } }],
];

for (const [line, ctx, want] of cases) {
  t.test(`parseCommand(${JSON.stringify(line)}) local choice`, async (t) => {
    const r = parseCommand(line, ctx);
    if ('e' in want) {
      t.match(r, { ok: false });
      if (!r.ok) t.equal(r.ecode, 'INVLARG_6');
      return;
    }
    t.match(r, { ok: true, command: { modifiers: { local: want.local } } });
  });
}

// Dispatch reads the families from the manager before each command (dispatch.test.ts), so an
// address learnt later counts: the parser answers from the families it is given.
t.test('the live local families decide the automatic choice by family', async (t) => {
  const ctx: ParseContext = {
    bridge: false,
    hasIpv6: false,
    labels: new Set(),
    localFamilies: new Set([4]),
  };
  t.match(parseCommand('U6 c ::1 5000 ft', ctx), { ok: false, ecode: 'INVLARG_6' });
  const learnt: ParseContext = { ...ctx, localFamilies: new Set([4, 6]) };
  t.match(parseCommand('U6 c ::1 5000 ft', learnt), {
    ok: true,
    command: { modifiers: { local: { kind: 'family', family: 6 } } },
  });
});
