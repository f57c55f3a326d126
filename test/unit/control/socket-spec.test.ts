import t from 'tap';
import {
  DEFAULT_CONTROL_PORT,
  formatSocketSpec,
  parseSocketSpec,
} from '../../../src/control/socket-spec.ts';

const ok: readonly (readonly [text: string, want: object])[] = [
  ['unix:/var/run/rtpproxy.sock', { kind: 'unix', path: '/var/run/rtpproxy.sock' }],
  ['/var/run/rtpproxy.sock', { kind: 'unix', path: '/var/run/rtpproxy.sock' }],
  ['relative.sock', { kind: 'unix', path: 'relative.sock' }],
  ['cunix:/tmp/r.sock', { kind: 'cunix', path: '/tmp/r.sock' }],
  ['unix:/tmp/a:b', { kind: 'unix', path: '/tmp/a:b' }],
  ['udp:127.0.0.1:22222', { kind: 'udp', host: '127.0.0.1', port: 22222 }],
  ['udp:127.0.0.1', { kind: 'udp', host: '127.0.0.1', port: DEFAULT_CONTROL_PORT }],
  ['udp:127.0.0.1:', { kind: 'udp', host: '127.0.0.1', port: DEFAULT_CONTROL_PORT }],
  ['udp:127.0.0.1:0', { kind: 'udp', host: '127.0.0.1', port: 0 }],
  ['udp:*:7722', { kind: 'udp', host: '0.0.0.0', port: 7722 }],
  ['udp:*', { kind: 'udp', host: '0.0.0.0', port: 22222 }],
  ['udp:localhost:5', { kind: 'udp', host: 'localhost', port: 5 }],
  ['udp6:::1:22222', { kind: 'udp6', host: '::1', port: 22222 }],
  ['udp6:[::1]:22223', { kind: 'udp6', host: '::1', port: 22223 }],
  ['udp6:[::1]', { kind: 'udp6', host: '::1', port: 22222 }],
  ['udp6:*:9', { kind: 'udp6', host: '::', port: 9 }],
  ['tcp:10.0.0.1:65535', { kind: 'tcp', host: '10.0.0.1', port: 65535 }],
  ['tcp:*', { kind: 'tcp', host: '0.0.0.0', port: 22222 }],
  ['tcp6:[fe80::1]:1', { kind: 'tcp6', host: 'fe80::1', port: 1 }],
  ['tcp6:*:22', { kind: 'tcp6', host: '::', port: 22 }],
  ['stdio:', { kind: 'stdio' }],
  ['stdioc:', { kind: 'stdioc' }],
  ['ng:udp:127.0.0.1:2223', { kind: 'ng-udp', host: '127.0.0.1', port: 2223 }],
  ['ng:udp:127.0.0.1:0', { kind: 'ng-udp', host: '127.0.0.1', port: 0 }],
  ['ng:udp:*', { kind: 'ng-udp', host: '0.0.0.0', port: 22222 }],
  ['ng:udp6:[::1]:2223', { kind: 'ng-udp6', host: '::1', port: 2223 }],
  ['ng:udp6:*:9', { kind: 'ng-udp6', host: '::', port: 9 }],
];

for (const [text, want] of ok) {
  t.test(`parseSocketSpec(${JSON.stringify(text)})`, async (t) => {
    t.strictSame(parseSocketSpec(text), want);
  });
}

const bad: readonly (readonly [text: string, match: RegExp])[] = [
  ['udp:127.0.0.1:65536', /bad port/],
  // The last colon splits, so this is host ":" port 1, which is no address (the reference fails too).
  ['udp6:::1', /bad IPv6 address ":"/],
  ['udp6:127.0.0.1:5', /bad IPv6 address/],
  ['tcp:::1:5', /use tcp6:/],
  ['udp:127.0.0.1:x1', /bad port/],
  ['tcp:127.0.0.1:-1', /bad port/],
  ['udp6:[::1]:99999', /bad port/],
  ['udp6:[::1', /missing '\]'/],
  ['udp6:[::1]x', /junk/],
  ['udp:', /empty host/],
  ['udp::22', /empty host/],
  ['unix:', /empty socket path/],
  ['', /empty socket path/],
  ['cunix:', /empty socket path/],
  ['systemd:', /not supported/],
  ['fd:3', /not supported/],
  ['stdio:x', /takes no argument/],
  ['ng:tcp:127.0.0.1:5', /ng:udp:HOST:PORT/],
  ['ng:', /ng:udp:HOST:PORT/],
  ['ng:udp:::1:5', /use ng:udp6:/],
  ['ng:udp6:127.0.0.1:5', /bad IPv6 address.*ng:udp6:\[::1\]/],
  ['ng:udp:127.0.0.1:70000', /bad port/],
];

for (const [text, match] of bad) {
  t.test(`parseSocketSpec(${JSON.stringify(text)}) is an error`, async (t) => {
    const got = parseSocketSpec(text);
    t.ok('error' in got, 'error result');
    if ('error' in got) t.match(got.error, match);
  });
}

t.test('formatSocketSpec() round-trips through parseSocketSpec()', async (t) => {
  for (const text of [
    'unix:/a',
    'cunix:/b',
    'udp:1.2.3.4:5',
    'udp6:[::1]:22222',
    'tcp6:[::]:1',
    'stdio:',
    'stdioc:',
    'ng:udp:127.0.0.1:2223',
    'ng:udp6:[::1]:2223',
  ]) {
    const spec = parseSocketSpec(text);
    if ('error' in spec) {
      t.fail(spec.error);
      continue;
    }
    t.equal(formatSocketSpec(spec), text);
    t.strictSame(parseSocketSpec(formatSocketSpec(spec)), spec);
  }
});
