/**
 * `-n` values and the matching of a U's NOTIFY_SOCKET against them (docs/protocol.md 8.1, 8.3),
 * after the reference's src/rtpp_tnotify_set.c.
 */
import t from 'tap';
import {
  matchNotifyTarget,
  MAX_NOTIFY_TARGETS,
  parseNotifyTarget,
  parseNotifyTargets,
  type NotifyTargetSpec,
} from '../../../src/notify/targets.ts';

const parseCases: readonly (readonly [string, NotifyTargetSpec])[] = [
  ['unix:/run/n.sock', { kind: 'unix', name: 'unix:/run/n.sock', path: '/run/n.sock' }],
  // A bare path is stored as unix:PATH, as the reference does.
  ['/run/n.sock', { kind: 'unix', name: 'unix:/run/n.sock', path: '/run/n.sock' }],
  ['relative.sock', { kind: 'unix', name: 'unix:relative.sock', path: 'relative.sock' }],
  [
    'tcp:127.0.0.1:9999',
    { kind: 'tcp', name: 'tcp:127.0.0.1:9999', host: '127.0.0.1', port: 9999 },
  ],
  [
    'tcp:sip-proxy.example:22223',
    { kind: 'tcp', name: 'tcp:sip-proxy.example:22223', host: 'sip-proxy.example', port: 22223 },
  ],
  ['tcp:%%CC_SELF%%:1234', { kind: 'tcp-self', name: 'tcp:%%CC_SELF%%:1234', port: 1234 }],
];

for (const [text, want] of parseCases) {
  t.test(`parseNotifyTarget(${JSON.stringify(text)})`, async (t) => {
    t.same(parseNotifyTarget(text), want);
  });
}

const badCases: readonly (readonly [string, RegExp, boolean?])[] = [
  ['unix:', /path is empty/],
  ['tcp:127.0.0.1', /tcp:HOST:PORT/],
  ['tcp::9999', /tcp:HOST:PORT/],
  ['tcp:127.0.0.1:', /tcp:HOST:PORT/],
  ['tcp:127.0.0.1:0', /1 to 65535/],
  ['tcp:127.0.0.1:65536', /1 to 65535/],
  ['tcp:127.0.0.1:12ab', /1 to 65535/],
  ['tcp:[::1]:9999', /IPv4 only/],
  ['tcp:::1:9999', /IPv4 only/],
  ['tcp:bad host:1', /neither/],
  ['tcp:proxy.example:9999', /--no_resolve/, true],
  ['udp:127.0.0.1:9999', /stream sockets/],
  ['xmlrpc:http://127.0.0.1:8000/RPC2', /stream sockets/],
];

for (const [text, message, noResolve] of badCases) {
  t.test(`parseNotifyTarget(${JSON.stringify(text)}) is refused`, async (t) => {
    const got = parseNotifyTarget(text, noResolve === true);
    t.ok('error' in got, 'refused');
    if ('error' in got) t.match(got.error, message);
  });
}

t.test('parseNotifyTargets() applies the reference limits: 64 targets, 2 wildcards', async (t) => {
  const many = Array.from(
    { length: MAX_NOTIFY_TARGETS + 1 },
    (_, i) => `unix:/tmp/n${String(i)}.sock`,
  );
  t.match(parseNotifyTargets(many).errors, [/at most 64/]);
  t.same(parseNotifyTargets(many.slice(1)).errors, []);
  const wild = ['tcp:%%CC_SELF%%:1', 'tcp:%%CC_SELF%%:2', 'tcp:%%CC_SELF%%:3'];
  t.match(parseNotifyTargets(wild).errors, [/at most 2 %%CC_SELF%%/]);
  t.same(parseNotifyTargets(wild.slice(1)).errors, []);
});

t.test('matchNotifyTarget() follows docs/protocol.md 8.3', async (t) => {
  const { specs } = parseNotifyTargets([
    'unix:/run/a.sock',
    '/run/b.sock',
    'tcp:127.0.0.1:9999',
    'tcp:%%CC_SELF%%:7777',
  ]);
  const name = (socket: string): string | undefined => matchNotifyTarget(specs, socket)?.name;
  t.equal(name('unix:/run/a.sock'), 'unix:/run/a.sock', 'exact name');
  t.equal(name('unix:/run/b.sock'), 'unix:/run/b.sock', 'a bare -n path is stored as unix:PATH');
  t.equal(name('/run/a.sock'), 'unix:/run/a.sock', 'a bare path (OpenSIPS) matches a unix target');
  t.equal(name('/run/b.sock'), 'unix:/run/b.sock');
  t.equal(name('tcp:127.0.0.1:9999'), 'tcp:127.0.0.1:9999', 'tcp by its exact text');
  t.equal(name('tcp:%%CC_SELF%%:7777'), 'tcp:%%CC_SELF%%:7777', 'the wildcard by its literal text');
  t.equal(name('tcp:localhost:9999'), undefined, 'names are compared as text, not resolved');
  t.equal(
    name('127.0.0.1:9999'),
    undefined,
    'tcp without its prefix (OpenSIPS after VF 20150617 = 0)',
  );
  t.equal(name('tcp:%%CC_SELF%%:7778'), undefined);
  t.equal(name('/run/c.sock'), undefined);
  t.equal(name('unix:run/a.sock'), undefined);
  t.equal(name(''), undefined);
});
