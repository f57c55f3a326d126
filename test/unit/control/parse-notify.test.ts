/**
 * The notify pair of U (docs/protocol.md 3.2, 8.2) and, with --kamailio_notify, the forms Kamailio's
 * timeout_socket sends (10.1): what the parser makes of each, with and without the switch.
 */
import t from 'tap';
import { type ParseContext, parseCommand } from '../../../src/control/parse.ts';
import { parseNotifyTargets } from '../../../src/notify/targets.ts';

// Named as `-n` gives them; a NOTIFY_SOCKET of `/run/n.sock` names the unix one by its path.
const TARGETS = parseNotifyTargets(['tcp:127.0.0.1:9999', 'unix:/run/n.sock']).specs;
const OFF: ParseContext = { bridge: false, hasIpv6: false, labels: new Set() };
const ON: ParseContext = { ...OFF, kamailioNotifyTargets: TARGETS };

type Want =
  | { readonly e: number }
  | { readonly tag2?: string; readonly notify?: { socket: string; tag: string } };

const cases: readonly (readonly [line: string, ctx: ParseContext, want: Want])[] = [
  // The reference's forms, the same with or without the switch.
  [
    'U c 192.0.2.1 4000 ft;1 tt;1 tcp:127.0.0.1:9999 T42',
    OFF,
    { tag2: 'tt;1', notify: { socket: 'tcp:127.0.0.1:9999', tag: 'T42' } },
  ],
  [
    'U c 192.0.2.1 4000 ft;1 tt;1 tcp:127.0.0.1:9999 T42',
    ON,
    { tag2: 'tt;1', notify: { socket: 'tcp:127.0.0.1:9999', tag: 'T42' } },
  ],
  [
    'U c 192.0.2.1 4000 ft;1 /run/n.sock my%20tag%2Bx',
    ON,
    { notify: { socket: '/run/n.sock', tag: 'my tag+x' } },
  ],
  ['U c 192.0.2.1 4000 ft;1 /run/n.sock bad%2', ON, { e: 10 }],
  ['U c 192.0.2.1 4000 ft;1 tt;1', ON, { tag2: 'tt;1' }],
  // Kamailio 5.8+, no To tag: `T1 SOCKET;TAG` in the T2 slot.
  [
    'U c 192.0.2.1 4000 ft;1 tcp:127.0.0.1:9999;dlg%3A1',
    OFF,
    { tag2: 'tcp:127.0.0.1:9999;dlg%3A1' },
  ],
  [
    'U c 192.0.2.1 4000 ft;1 tcp:127.0.0.1:9999;dlg%3A1',
    ON,
    { notify: { socket: 'tcp:127.0.0.1:9999', tag: 'dlg:1' } },
  ],
  [
    'U c 192.0.2.1 4000 ft;1 unix:/run/n.sock;50%',
    ON,
    { notify: { socket: 'unix:/run/n.sock', tag: '50%' } },
  ],
  [
    'U c 192.0.2.1 4000 ft;1 unix:/run/n.sock;',
    ON,
    { notify: { socket: 'unix:/run/n.sock', tag: '' } },
  ],
  ['U c 192.0.2.1 4000 ft;1 tcp:127.0.0.1:8888;x', ON, { tag2: 'tcp:127.0.0.1:8888;x' }],
  ['U c 192.0.2.1 4000 ft;1 tt;1', ON, { tag2: 'tt;1' }],
  ['L c 192.0.2.1 4000 ft;1 tcp:127.0.0.1:9999;x', ON, { tag2: 'tcp:127.0.0.1:9999;x' }],
  // Kamailio before 5.8, with a To tag: `T1 T2 SOCKET`.
  [
    'U c@h 192.0.2.1 4000 ft;1 tt;1 tcp:127.0.0.1:9999',
    OFF,
    { notify: { socket: 'tt;1', tag: 'tcp:127.0.0.1:9999' } },
  ],
  [
    'U c@h 192.0.2.1 4000 ft;1 tt;1 tcp:127.0.0.1:9999',
    ON,
    { tag2: 'tt;1', notify: { socket: 'tcp:127.0.0.1:9999', tag: 'c@h ft;1 tt;1' } },
  ],
  ['U c 192.0.2.1 4000 ft;1 tt;1 %%x', OFF, { e: 10 }],
];

for (const [line, ctx, want] of cases) {
  t.test(`${ctx === ON ? 'kamailio: ' : ''}${line}`, async (t) => {
    const got = parseCommand(line, ctx);
    if ('e' in want) {
      t.match(got, { ok: false });
      if (!got.ok) t.equal(got.ecode === 'PARSE_10' ? 10 : -1, want.e);
      return;
    }
    if (!got.ok) throw new Error(`unexpected ${got.ecode}`);
    const cmd = got.command;
    if (cmd.op !== 'update' && cmd.op !== 'lookup') throw new Error(cmd.op);
    t.equal(cmd.ref.tag2, want.tag2, 'T2');
    t.same(cmd.notify, want.notify, 'notify pair');
  });
}
