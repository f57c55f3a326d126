import fc from 'fast-check';
import t from 'tap';
import { ECODES } from '../../../src/control/ecodes.ts';
import { type ParseContext, parseCommand } from '../../../src/control/parse.ts';

const PLAIN: ParseContext = { bridge: false, hasIpv6: false, labels: new Set() };
const BRIDGE: ParseContext = { bridge: true, hasIpv6: true, labels: new Set(['pub']) };

type Want = { readonly e: number } | Readonly<Record<string, unknown>>;

const cases: readonly (readonly [line: string, want: Want, ctx?: ParseContext])[] = [
  ['', { e: 5 }],
  [' \t\r\n', { e: 5 }],
  ['V\0', { e: 5 }],
  ['Z', { e: 0 }],
  ['V', { op: 'version' }],
  ['v', { op: 'version' }],
  ['V1', { e: 2 }],
  ['VF', { e: 1 }],
  ['VF 20040107', { op: 'version-feature', date: '20040107' }],
  ['vf 20040107', { op: 'version-feature', date: '20040107' }],
  ['VFx 20040107', { e: 2 }],
  ['U', { e: 1 }],
  ['U c 1.2.3.4 5 a b c d e', { e: 1 }],
  ['Ux c1 192.0.2.1 5000 ft', { e: 35 }],
  [
    'U c1 192.0.2.1 5000 ft',
    {
      op: 'update',
      ref: { callId: 'c1', tag1: 'ft' },
      remote: { kind: 'address', address: '192.0.2.1', port: 5000, family: 4 },
    },
  ],
  ['U c1 192.0.2.1 5000 ft tt', { op: 'update', ref: { callId: 'c1', tag1: 'ft', tag2: 'tt' } }],
  [
    'U c1 192.0.2.1 5000 ft sock tag%20x',
    { op: 'update', ref: { callId: 'c1', tag1: 'ft' }, notify: { socket: 'sock', tag: 'tag x' } },
  ],
  [
    'U c1 192.0.2.1 5000 ft tt sock a+b',
    { op: 'update', ref: { tag2: 'tt' }, notify: { socket: 'sock', tag: 'a b' } },
  ],
  ['U c1 192.0.2.1 5000 ft sock %zz', { e: 10 }],
  ['U c1 0.0.0.0 5000 ft', { remote: { kind: 'hold' } }],
  ['U c1 1.2 3 ft', { remote: { kind: 'ignored' } }],
  ['U c1 192.0.2.1 0 ft', { remote: { kind: 'ignored' } }],
  ['U c1 999.1.1.1 5000 ft', { e: 37 }],
  ['U c1 192.0.2.1 port ft', { e: 37 }],
  ['U c1 192.0.2.1 65536 ft', { e: 37 }],
  ['U c1 2001:db8::1 5000 ft', { e: 37 }],
  ['U6 c1 2001:db8::1 5000 ft', { e: 36 }],
  ['U6 c1 2001:db8::1 5000 ft', { remote: { kind: 'address', family: 6 } }, BRIDGE],
  ['Uc0,8,101 c1 192.0.2.1 5000 ft', { modifiers: { codecs: [0, 8, 101] } }],
  ['UC0,8 c1 192.0.2.1 5000 ft', { modifiers: { codecs: [0, 8] } }],
  ['Uc c1 192.0.2.1 5000 ft', { e: 14 }],
  ['Uc0c8 c1 192.0.2.1 5000 ft', { e: 14 }],
  ['Uz20 c1 192.0.2.1 5000 ft', { modifiers: { repacketizeMs: 20 } }],
  ['UZ20 c1 192.0.2.1 5000 ft', { modifiers: { repacketizeMs: 20 } }],
  ['Uz c1 192.0.2.1 5000 ft', { e: 13 }],
  ['Uz1000 c1 192.0.2.1 5000 ft', { e: 13 }],
  ['Uasw c1 192.0.2.1 5000 ft', { modifiers: { asymmetric: false, weak: true } }],
  ['UA c1 192.0.2.1 5000 ft', { modifiers: { asymmetric: true } }],
  ['Un c1 192.0.2.1 5000 ft', { modifiers: { newPorts: true } }],
  ['Uie c1 192.0.2.1 5000 ft', { e: 12 }],
  ['Uei c1 192.0.2.1 5000 ft', { e: 11 }],
  [
    'UIE c1 192.0.2.1 5000 ft',
    { modifiers: { local: { kind: 'interfaces', first: 'i', second: 'e' } } },
    BRIDGE,
  ],
  ['Uiei c1 192.0.2.1 5000 ft', { e: 12 }, BRIDGE],
  [
    'Ul10.0.0.1c0,8 c1 192.0.2.1 5000 ft',
    { modifiers: { local: { kind: 'address', address: '10.0.0.1' }, codecs: [0, 8] } },
  ],
  [
    'Ul[::1] c1 192.0.2.1 5000 ft',
    { modifiers: { local: { kind: 'address', address: '::1', family: 6 } } },
  ],
  [
    'Ul{pub} c1 192.0.2.1 5000 ft',
    { modifiers: { local: { kind: 'label', label: 'pub' } } },
    BRIDGE,
  ],
  ['Ul{nope} c1 192.0.2.1 5000 ft', { e: 31 }, BRIDGE],
  ['Ul{pub c1 192.0.2.1 5000 ft', { e: 15 }, BRIDGE],
  ['Ul c1 192.0.2.1 5000 ft', { e: 15 }],
  ['Ul999.1.1.1 c1 192.0.2.1 5000 ft', { e: 31 }],
  [
    'Ur10.0.0.1 c1 192.0.2.1 5000 ft',
    { modifiers: { local: { kind: 'route', address: '10.0.0.1' } } },
  ],
  ['Ur{x} c1 192.0.2.1 5000 ft', { e: 16 }],
  ['Ur[1:2:3:4:5] c1 192.0.2.1 5000 ft', { e: 32 }],
  ['L c1 192.0.2.1 5000 ft', { op: 'lookup' }],
  ['L c1 192.0.2.1 5000 ft tt n1', { e: 1 }],
  ['D c1 ft', { op: 'delete', weak: false }],
  ['Dw c1 ft tt', { op: 'delete', weak: true, ref: { tag2: 'tt' } }],
  ['Dx c1 ft', { e: 8 }],
  ['D c1 ft && D', { e: 3 }],
  ['P c1 prompt 0,8 ft', { op: 'play', count: 1, prompt: 'prompt', codecs: '0,8' }],
  ['P-1 c1 prompt session ft tt', { op: 'play', count: -1, ref: { tag1: 'ft', tag2: 'tt' } }],
  ['P3x c1 prompt session ft', { e: 17 }],
  ['S c1 ft tt', { op: 'stop-play' }],
  ['Sx c1 ft', { e: 2 }],
  ['Rs c1 ft', { op: 'record', single: true }],
  ['Rp c1 ft', { e: 6 }],
  ['Rx c1 ft', { e: 7 }],
  [
    'Csp c1 udp:127.0.0.1:9 ft',
    { op: 'copy', single: true, replyPort: true, target: 'udp:127.0.0.1:9' },
  ],
  ['Cx c1 t ft', { e: 7 }],
  ['Na c1 ft', { op: 'stop-record', bothLegs: true }],
  ['Nab c1 ft', { e: 6 }],
  ['Nb c1 ft', { e: 7 }],
  ['Q c1 ft', { op: 'query', names: [], verbose: false, badModifier: false }],
  ['Qv c1 ft tt ttl nrelayed', { op: 'query', names: ['ttl', 'nrelayed'], verbose: true }],
  ['Qx c1 ft tt', { op: 'query', badModifier: true }],
  ['Q c1 ft tt 1 2 3 4 5 6 7 8 9 10 11 12', { e: 1 }],
  [
    'Q c1 ft tt && D && S ttl=5 && Sr tos=184',
    {
      subcommands: [
        { op: 'delete' },
        { op: 'set-ttl', seconds: 5 },
        { op: 'set-tos', reverse: true, tos: 184 },
      ],
    },
  ],
  ['Q c1 ft tt && S ttl=0', { e: 3 }],
  ['Q c1 ft && L 1.2.3.4 5', { e: 3 }],
  ['U c1 1.2.3.4 5 ft tt && L 1.2.3.4 6', { subcommands: [{ op: 'lookup', remote: { port: 6 } }] }],
  ['U c1 1.2.3.4 5 ft && L 1.2.3.4 6', { e: 3 }],
  ['U c1 1.2.3.4 5 ft tt && M3:1 Dd1', { e: 3 }],
  ['U c1 1.2.3.4 5 ft &&', { e: 5 }],
  ['U c1 1.2.3.4 5 ft && && D', { e: 5 }],
  ['U c1 1.2.3.4 5 ft' + ' && D'.repeat(16), { e: 5 }],
  ['U c1 1.2.3.4 5 ft' + ' && D'.repeat(15), { op: 'update' }],
  ['G', { op: 'stats', names: [] }],
  ['Gv a b', { op: 'stats', verbose: true, names: ['a', 'b'] }],
  ['Gx', { e: 9 }],
  ['I', { op: 'info', load: false }],
  ['Ibl', { op: 'info', load: true }],
  ['Ix', { e: 18 }],
  ['I x', { e: 1 }],
  ['X', { op: 'delete-all' }],
  ['Xa', { e: 2 }],
  ['U c1\r\n192.0.2.1\t5000   ft\n', { op: 'update', ref: { tag1: 'ft' } }],
];

for (const [line, want, ctx] of cases) {
  t.test(
    `parseCommand(${JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line)})`,
    async (t) => {
      const got = parseCommand(line, ctx ?? PLAIN);
      if ('e' in want) {
        t.equal(got.ok, false);
        if (!got.ok) t.equal(ECODES[got.ecode].code, want.e);
      } else {
        t.equal(got.ok, true, JSON.stringify(got));
        if (got.ok) t.match(got.command, want);
      }
    },
  );
}

t.test(
  'parseCommand() never throws and always answers a Command or a registered E-code',
  async (t) => {
    const dictionary = fc.constantFrom(
      'U',
      'Uc0,8',
      'Lei',
      'D',
      'Dw',
      'Q',
      'Qv',
      'P-1',
      'R',
      'Cs',
      'N',
      'G',
      'I',
      'V',
      'VF',
      'X',
      '&&',
      'c1',
      'ft;1',
      'tt',
      '127.0.0.1',
      '::1',
      '5000',
      'session',
      'udp:1.2.3.4:5',
    );
    const token = fc.oneof(
      dictionary,
      fc.string({ maxLength: 12 }),
      fc.string({ unit: 'binary', maxLength: 8 }),
    );
    const line = fc.array(token, { maxLength: 30 }).map((tokens) => tokens.join(' '));
    fc.assert(
      fc.property(line, fc.constantFrom(PLAIN, BRIDGE), (l, ctx) => {
        const result = parseCommand(l, ctx);
        return result.ok
          ? typeof result.command.op === 'string'
          : // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the property under test
            ECODES[result.ecode] !== undefined;
      }),
      { numRuns: 3000 },
    );
    t.pass('3000 random lines parsed');
  },
);
