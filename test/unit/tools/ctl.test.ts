/**
 * rtpproxyctl's pure parts and transports: the command line (parseCtlArgs), the reply readers and
 * tables (ctl-format.ts), and the UDP and stream framing against small loopback servers
 * (ctl-client.ts): one cookie for every retransmission, a deadline, one-line failures.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { GLOBAL_COUNTER_NAMES } from '../../../src/session/query.ts';
import { controlCommand, CtlError } from '../../../src/tools/ctl-client.ts';
import {
  formatInfo,
  pairs,
  parseInfo,
  parseVerboseCounters,
  table,
} from '../../../src/tools/ctl-format.ts';
import { parseCtlArgs } from '../../../src/tools/ctl-args.ts';
import { runCtl } from '../../../src/tools/ctl.ts';
import { tempDir } from '../../helpers/tmp.ts';

t.test(
  'parseCtlArgs() picks the control socket: -s, then RTPPROXY_SOCKET, then the default',
  async (t) => {
    const socketOf = (argv: string[], env = {}) => {
      const r = parseCtlArgs(argv, env);
      return 'socket' in r ? r.socket : r;
    };
    t.same(socketOf(['info']), { kind: 'udp', host: '127.0.0.1', port: 22222 });
    t.same(socketOf(['info'], { RTPPROXY_SOCKET: 'unix:/run/r.sock' }), {
      kind: 'unix',
      path: '/run/r.sock',
    });
    t.same(socketOf(['-s', 'tcp6:[::1]:9', 'info'], { RTPPROXY_SOCKET: 'unix:/x' }), {
      kind: 'tcp6',
      host: '::1',
      port: 9,
    });
    t.same(socketOf(['info', '-s', '/run/bare.sock']), { kind: 'unix', path: '/run/bare.sock' });
    t.same(socketOf(['info'], { RTPPROXY_SOCKET: '' }), {
      kind: 'udp',
      host: '127.0.0.1',
      port: 22222,
    });
  },
);

t.test('parseCtlArgs() refuses what cannot work with one usage line', async (t) => {
  const cases: readonly (readonly [argv: string[], usage: RegExp])[] = [
    [[], /^no verb given/],
    [['frobnicate'], /^unknown verb 'frobnicate'/],
    [['alloc', 'c1', '127.0.0.1', '4000'], /^missing required argument 'fromtag'/],
    [['alloc', 'c1', '127.0.0.1', 'http', 'ft'], /^value 'http' is invalid for argument 'port'/],
    [['update', 'c1', '127.0.0.1', '4000', 'ft'], /^missing required argument 'totag'/],
    [['delete', 'a', 'b', 'c', 'd'], /^too many arguments for 'delete'/],
    [['-s', 'udp6:127.0.0.1', 'info'], /^bad control socket "udp6:127\.0\.0\.1": bad IPv6/],
    [['-s', 'udp:127.0.0.1:0', 'info'], /^bad control socket .*: port 0$/],
    [['-s', 'stdio:', 'info'], /^stdio: is the daemon's own stdin/],
    [['-s', 'systemd:rtpproxy', 'info'], /^bad control socket .*not supported/],
    [['--timeout', '2s', 'info'], /'2s' is invalid\. It must be a decimal integer\./],
    [['--bogus', 'info'], /^unknown option '--bogus'/],
    [['alloc', 'c 1', '127.0.0.1', '4000', 'ft'], /^"c 1" cannot be a protocol argument/],
    [['delete', 'c1', ''], /^"" cannot be a protocol argument/],
    [['alloc', 'c1', '127.0.0.1', '4000', 'ft', '--modifiers', 'c0 8'], /It must be one word/],
    [['stats', 'a b'], /cannot be a protocol argument/],
    [['query', ''], /^query needs a command$/],
  ];
  for (const [argv, usage] of cases) {
    const r = parseCtlArgs(argv);
    t.ok('usage' in r, JSON.stringify(argv));
    if ('usage' in r) {
      t.match(r.usage, usage, JSON.stringify(argv));
      t.notMatch(r.usage, /\n/, 'one line');
    }
  }
});

t.test('parseCtlArgs() reads the verbs and the global options anywhere', async (t) => {
  const r = parseCtlArgs([
    'alloc',
    'c1',
    '127.0.0.1',
    '4000',
    'ft',
    '--modifiers',
    'c0,8',
    '--json',
    '--timeout',
    '150',
  ]);
  t.match(r, {
    json: true,
    timeoutMs: 150,
    action: {
      verb: 'alloc',
      callId: 'c1',
      address: '127.0.0.1',
      port: 4000,
      fromTag: 'ft',
      modifiers: 'c0,8',
    },
  });
  t.match(parseCtlArgs(['query', 'Uc0,8', 'c1', '127.0.0.1', '4000', 'ft']), {
    action: { verb: 'query', line: 'Uc0,8 c1 127.0.0.1 4000 ft' },
  });
  t.match(parseCtlArgs(['query', 'Q c1 ft tt']), { action: { line: 'Q c1 ft tt' } });
  t.match(parseCtlArgs(['delete', 'c1', 'ft']), { action: { verb: 'delete', fromTag: 'ft' } });
  t.match(parseCtlArgs(['stats']), { action: { verb: 'stats', names: [] }, json: false });
  t.match(parseCtlArgs(['--help']), { help: /^Usage: rtpproxyctl / });
  t.match(parseCtlArgs(['list', '--help']), { help: /^Usage: rtpproxyctl list / });
});

t.test(
  'runCtl() prints the help on stdout and exits 0, a usage error on stderr and exits 2',
  async (t) => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    t.equal(await runCtl(['--help'], io, {}), 0);
    t.match(out.join('\n'), /Exit status: 0 done, 1 the operation failed/);
    t.same(err, []);
    t.equal(await runCtl(['alloc'], io, {}), 2);
    t.same(err, ["rtpproxyctl: missing required argument 'callid' (see rtpproxyctl --help)"]);
  },
);

t.test(
  'parseInfo() reads I and Il replies in any order and skips what it does not know',
  async (t) => {
    t.same(
      parseInfo(
        'sessions created: 7\nactive sessions: 2\nactive streams: 4\npackets received: 1000\npackets transmitted: 990\naverage load: 0.125000',
      ),
      {
        sessionsCreated: 7,
        activeSessions: 2,
        activeStreams: 4,
        packetsReceived: 1000,
        packetsTransmitted: 990,
        averageLoad: 0.125,
      },
    );
    t.same(
      parseInfo(
        'kernel path: on\r\nActive  Sessions : 3\r\nsessions created: 9\r\nsession c1 ft: rtp=kernel\r\n',
      ),
      {
        sessionsCreated: 9,
        activeSessions: 3,
        activeStreams: null,
        packetsReceived: null,
        packetsTransmitted: null,
        averageLoad: null,
      },
    );
    t.match(formatInfo('20040107', parseInfo('active sessions: 1')), [
      /^protocol version {5}20040107$/,
      /^sessions created {5}-$/,
      /^active sessions {6}1$/,
    ]);
  },
);

t.test('parseVerboseCounters() reads Gv pairs and refuses anything else', async (t) => {
  t.same(parseVerboseCounters('nsess_created=3 pps_in=12.500000'), [
    ['nsess_created', '3'],
    ['pps_in', '12.500000'],
  ]);
  t.same(parseVerboseCounters(''), []);
  t.equal(parseVerboseCounters('3 4'), undefined);
  t.equal(parseVerboseCounters('a=x'), undefined);
  t.equal(parseVerboseCounters('=3'), undefined);
});

t.test('table() aligns columns, numbers to the right; pairs() aligns names', async (t) => {
  t.same(
    table(
      ['NAME', 'N', 'NOTE'],
      [
        ['a', '5', 'x'],
        ['bbbb', '100', ''],
      ],
    ),
    ['NAME    N  NOTE', 'a       5  x', 'bbbb  100'],
  );
  t.same(table(['A', 'B'], []), ['A  B']);
  t.same(
    pairs([
      ['port', '1'],
      ['address', 'x'],
    ]),
    ['port     1', 'address  x'],
  );
});

t.test('GLOBAL_COUNTER_NAMES lists every G counter once', async (t) => {
  t.equal(new Set(GLOBAL_COUNTER_NAMES).size, GLOBAL_COUNTER_NAMES.length);
  t.ok(GLOBAL_COUNTER_NAMES.includes('nsess_created'));
  t.ok(GLOBAL_COUNTER_NAMES.includes('pps_in'));
});

/** A UDP server on loopback that answers the `answerOn`-th datagram (1-based), counting them. */
async function udpServer(t: Test, answerOn: number) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const received: string[] = [];
  socket.on('message', (msg, rinfo) => {
    const text = msg.toString('latin1');
    received.push(text);
    if (received.length === answerOn) {
      const cookie = text.split(' ')[0] ?? '';
      // Something for another command first: it must be ignored.
      socket.send(`other_cookie 0\n`, rinfo.port, rinfo.address);
      socket.send(`${cookie} 20040107\n`, rinfo.port, rinfo.address);
    }
  });
  return { port: socket.address().port, received };
}

t.test('controlCommand() over UDP retransmits with the same cookie until the reply', async (t) => {
  const server = await udpServer(t, 3);
  const reply = await controlCommand(
    { kind: 'udp', host: '127.0.0.1', port: server.port },
    'V',
    2000,
  );
  t.equal(reply, '20040107');
  t.equal(server.received.length, 3);
  const cookies = new Set(server.received.map((d) => d.split(' ')[0]));
  t.equal(cookies.size, 1, 'one cookie');
  t.match(server.received[0], /^ctl[0-9]+_[0-9a-f]{8}_[0-9]+ V$/);
});

t.test(
  'controlCommand() over UDP gives up at its deadline after a bounded number of sends',
  async (t) => {
    const server = await udpServer(t, 1000);
    const started = performance.now();
    await t.rejects(
      controlCommand({ kind: 'udp', host: '127.0.0.1', port: server.port }, 'V', 300),
      new CtlError(`no answer from udp:127.0.0.1:${String(server.port)} within 300 ms`),
    );
    t.ok(performance.now() - started >= 290, 'waited for the deadline');
    t.ok(
      server.received.length >= 1 && server.received.length <= 4,
      `${String(server.received.length)} sends`,
    );
  },
);

t.test('controlCommand() over a stream socket sends one line and reads to the end', async (t) => {
  const dir = tempDir(t, 'ctl-stream');
  const file = path.join(dir, 's.sock');
  const got: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    socket.on('end', () => {
      got.push(data);
      socket.end('sessions created: 1\nactive sessions: 0\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(file, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const reply = await controlCommand({ kind: 'cunix', path: file }, 'I', 2000);
  t.equal(reply, 'sessions created: 1\nactive sessions: 0', 'every line, the last LF off');
  t.same(got, ['I\n']);
});

t.test(
  'controlCommand() over a stream socket fails when it closes without a reply or stays silent',
  async (t) => {
    const dir = tempDir(t, 'ctl-stream');
    const file = path.join(dir, 's.sock');
    const sockets = new Set<net.Socket>();
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.on('data', (d: Buffer) => {
        if (d.toString().startsWith('close')) socket.end();
        // otherwise: silence
      });
    });
    await new Promise<void>((resolve) => server.listen(file, resolve));
    t.teardown(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    );
    await t.rejects(controlCommand({ kind: 'unix', path: file }, 'close', 2000), {
      message: `unix:${file} closed the connection without a reply`,
    });
    await t.rejects(controlCommand({ kind: 'unix', path: file }, 'hang', 300), {
      message: `no answer from unix:${file} within 300 ms`,
    });
    await t.rejects(controlCommand({ kind: 'tcp', host: '127.0.0.1', port: 1 }, 'V', 2000), {
      message: 'cannot reach tcp:127.0.0.1:1: connection refused (is the daemon running?)',
    });
  },
);
