/**
 * rtpproxyctl (docs/operations.md, "rtpproxyctl") run as a child process against a real daemon on
 * every control socket kind it speaks (udp, udp6, unix, cunix, tcp): info, stats, alloc and
 * update, delete with tags, raw queries, --json output, and the exit statuses (0 done, 1 failed,
 * 2 usage) with their one-line messages; then list, show, delete without tags and drain through
 * the daemon's admin API (`--http`, docs/admin-api.md).
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import path from 'node:path';
import t, { type Test } from 'tap';
import { GLOBAL_COUNTER_NAMES } from '../../src/session/query.ts';
import { runCtl } from '../../src/tools/ctl.ts';
import type { CtlEnv } from '../../src/tools/ctl-args.ts';
import { withTimeout } from '../helpers/control.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { tempDir } from '../helpers/tmp.ts';
import {
  canBindIPv6Loopback,
  freeUdpPort,
  Peer,
  portWindow,
  rtpPacket,
  uniqueCall,
} from '../helpers/udp.ts';

const BIN = path.join(import.meta.dirname, '../../bin/rtpproxyctl.js');
/** How long one run of the tool may take (a child process starts from the sources through tsx). */
const RUN_DEADLINE_MS = 30_000;
const WINDOW = portWindow(91);
const WINDOW_MIN = Number(WINDOW[1]);
const WINDOW_MAX = Number(WINDOW[3]);

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the tool in this process (its `runCtl`, what bin/rtpproxyctl.js runs) with `args`, without
 * the tool's environment variables unless `env` gives them: a child process per run would spend a
 * second starting from the sources. The daemon under test runs in this process too, and the tool
 * never blocks the event loop. The program itself is run by {@link spawnCtl}.
 */
async function ctl(args: readonly string[], env: CtlEnv = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = {
    out: (line: string) => {
      stdout += `${line}\n`;
    },
    err: (line: string) => {
      stderr += `${line}\n`;
    },
  };
  const status = await withTimeout(
    runCtl(args, io, env),
    RUN_DEADLINE_MS,
    `rtpproxyctl ${args.join(' ')}`,
  );
  return { status, stdout, stderr };
}

/**
 * Runs bin/rtpproxyctl.js with `args`, without tap's NODE_OPTIONS and without the tool's own
 * environment variables unless `env` gives them. Never blocks the event loop: the daemon under
 * test runs in this process.
 */
function spawnCtl(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv['NODE_OPTIONS'];
  if (env['RTPPROXY_SOCKET'] === undefined) delete childEnv['RTPPROXY_SOCKET'];
  if (env['RTPPROXY_HTTP'] === undefined) delete childEnv['RTPPROXY_HTTP'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`timeout after ${String(RUN_DEADLINE_MS)} ms: rtpproxyctl ${args.join(' ')}`),
      );
    }, RUN_DEADLINE_MS);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Runs the tool and expects exit status 0 and nothing on stderr. */
async function ok(t: Test, args: readonly string[]): Promise<string> {
  const r = await ctl(args);
  t.equal(r.status, 0, `rtpproxyctl ${args.join(' ')}: ${r.stderr}`);
  t.equal(r.stderr, '', 'nothing on stderr');
  return r.stdout;
}

/** Runs the tool and expects exit status `status` with exactly one line on stderr. */
async function fails(
  t: Test,
  args: readonly string[],
  status: 1 | 2,
  message: string | RegExp,
): Promise<Run> {
  const r = await ctl(args);
  t.equal(r.status, status, `rtpproxyctl ${args.join(' ')} exits ${String(status)}`);
  t.equal(r.stderr.split('\n').length, 2, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  if (typeof message === 'string') t.equal(r.stderr, `${message}\n`);
  else t.match(r.stderr, message);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return r;
}

const ipv6 = await canBindIPv6Loopback();
if (!ipv6) t.comment('skipping the udp6 socket: ::1 cannot be bound on this host');

/** One daemon for the file, with a control socket of every kind the tool speaks. */
async function daemonWithSockets(t: Test): Promise<{ d: RunningDaemon; sockets: string[] }> {
  const dir = tempDir(t, 'ctl');
  const unix = path.join(dir, 'u.sock');
  const cunix = path.join(dir, 'c.sock');
  const d = await startDaemon(t, [
    '-l',
    '127.0.0.1',
    ...WINDOW,
    '-s',
    `unix:${unix}`,
    '-s',
    `cunix:${cunix}`,
    '-s',
    'tcp:127.0.0.1:0',
    ...(ipv6 ? ['-s', 'udp6:[::1]:0'] : []),
  ]);
  const sockets = [
    `udp:127.0.0.1:${String(d.controlPort)}`,
    `unix:${unix}`,
    `cunix:${cunix}`,
    `tcp:127.0.0.1:${String(d.daemon.controlPort(3))}`,
  ];
  if (ipv6) sockets.push(`udp6:[::1]:${String(d.daemon.controlPort(4))}`);
  return { d, sockets };
}

t.test('rtpproxyctl against a real daemon', async (t) => {
  const { d, sockets } = await daemonWithSockets(t);
  const [udp = '', unix = '', , tcp = ''] = sockets;

  t.test('info on every socket kind, as JSON and as a table', async (t) => {
    for (const socket of sockets) {
      const doc = JSON.parse(await ok(t, ['-s', socket, '--json', 'info'])) as Record<
        string,
        unknown
      >;
      t.equal(doc['version'], '20040107', `${socket}: the version from V`);
      for (const key of [
        'sessionsCreated',
        'activeSessions',
        'activeStreams',
        'packetsReceived',
        'packetsTransmitted',
        'averageLoad',
      ]) {
        t.equal(typeof doc[key], 'number', `${socket}: ${key} is a number`);
      }
    }
    for (const socket of [udp, unix]) {
      const table = await ok(t, ['-s', socket, 'info']);
      t.match(table, /^protocol version +20040107\n/, `${socket}: version first`);
      for (const label of [
        'sessions created',
        'active sessions',
        'active streams',
        'packets received',
        'packets transmitted',
        'average load',
      ]) {
        t.match(table, new RegExp(`^${label} +[0-9.]+$`, 'm'), `${socket}: ${label}`);
      }
    }
  });

  t.test('info reports the sessions the daemon holds', async (t) => {
    const c = uniqueCall('ctl-info');
    const before = JSON.parse(await ok(t, ['-s', unix, '--json', 'info'])) as {
      sessionsCreated: number;
      activeSessions: number;
    };
    await d.port(`U ${c.id} 127.0.0.1 4000 ${c.from}`);
    const after = JSON.parse(await ok(t, ['-s', unix, '--json', 'info'])) as {
      sessionsCreated: number;
      activeSessions: number;
    };
    t.equal(after.sessionsCreated, before.sessionsCreated + 1);
    t.equal(after.activeSessions, before.activeSessions + 1);
    t.equal(await d.command(`D ${c.id} ${c.from}`), '0\n');
  });

  t.test('stats with names and with the default list', async (t) => {
    const named = JSON.parse(
      await ok(t, ['-s', udp, '--json', 'stats', 'nsess_created', 'ncmds_rcvd', 'pps_in']),
    ) as Record<string, unknown>;
    t.same(Object.keys(named), ['nsess_created', 'ncmds_rcvd', 'pps_in']);
    for (const value of Object.values(named)) t.equal(typeof value, 'number');
    const all = JSON.parse(await ok(t, ['-s', unix, 'stats', '--json'])) as Record<string, unknown>;
    t.same(Object.keys(all), [...GLOBAL_COUNTER_NAMES], 'every global counter, in order');
    const table = (await ok(t, ['-s', udp, 'stats'])).trimEnd().split('\n');
    t.match(table[0], /^COUNTER +VALUE$/);
    t.equal(table.length, GLOBAL_COUNTER_NAMES.length + 1, 'a header and one line each');
    t.match(table[1], /^nsess_created +[0-9]+$/);
    await fails(
      t,
      ['-s', udp, 'stats', 'nsess_created', 'no_such_counter'],
      1,
      'rtpproxyctl: G failed: E68 (unknown G counter name)',
    );
  });

  t.test('alloc and update create a session; delete with tags removes it', async (t) => {
    const c = uniqueCall('ctl-alloc');
    const { nsess_created: created } = JSON.parse(
      await ok(t, ['-s', udp, '--json', 'stats', 'nsess_created']),
    ) as { nsess_created: number };
    const offer = JSON.parse(
      await ok(t, ['-s', unix, '--json', 'alloc', c.id, '127.0.0.1', '4000', c.from]),
    ) as { port: number; address: string | null; ipv6: boolean };
    t.ok(
      offer.port >= WINDOW_MIN && offer.port <= WINDOW_MAX,
      `port ${String(offer.port)} in the range`,
    );
    t.equal(offer.address, '127.0.0.1');
    t.equal(offer.ipv6, false);
    const answer = await ok(t, ['-s', udp, 'update', c.id, '127.0.0.1', '4002', c.from, c.to]);
    const m = /^port +([0-9]+)\naddress +127\.0\.0\.1\n$/.exec(answer);
    t.ok(m, `update prints port and address: ${JSON.stringify(answer)}`);
    t.not(Number(m?.[1]), offer.port, 'the other leg');
    t.match(await d.command(`Q ${c.id} ${c.from} ${c.to}`), /^[0-9]+ 0 0 0 0\n$/, 'Q finds it');
    const counters = JSON.parse(
      await ok(t, ['-s', udp, '--json', 'stats', 'nsess_created', 'nsess_complete']),
    ) as { nsess_created: number; nsess_complete: number };
    t.equal(counters.nsess_created, created + 1, 'one session created');
    t.ok(counters.nsess_complete >= 1, 'complete after update');
    // A re-offer with modifiers answers the same port (protocol.md 1.3).
    const again = JSON.parse(
      await ok(t, [
        '-s',
        udp,
        '--json',
        'alloc',
        c.id,
        '127.0.0.1',
        '4000',
        c.from,
        '--modifiers',
        'c0,8',
      ]),
    ) as { port: number };
    t.equal(again.port, offer.port, 'U with modifiers answers the same leg');

    t.same(await ok(t, ['-s', unix, 'delete', c.id, c.from, c.to]), `deleted ${c.id}\n`);
    t.equal(await d.command(`Q ${c.id} ${c.from} ${c.to}`), 'E50\n', 'the session is gone');
    await fails(
      t,
      ['-s', udp, 'delete', c.id, c.from, c.to],
      1,
      'rtpproxyctl: D failed: E50 (no matching session)',
    );
    const n = uniqueCall('ctl-del');
    await d.port(`U ${n.id} 127.0.0.1 4000 ${n.from}`);
    const doc = JSON.parse(await ok(t, ['-s', udp, '--json', 'delete', n.id, n.from])) as {
      callId: string;
      deleted: boolean;
    };
    t.equal(doc.deleted, true);
    t.equal(doc.callId, n.id);
    t.equal(await d.command(`Q ${n.id} ${n.from}`), 'E50\n', 'deleted by its from-tag alone');
  });

  t.test('update of an unknown session fails', async (t) => {
    const c = uniqueCall('ctl-nosession');
    await fails(
      t,
      ['-s', udp, 'update', c.id, '127.0.0.1', '4002', c.from, c.to],
      1,
      'rtpproxyctl: L failed: no session matches (the reply is 0)',
    );
  });

  t.test('query sends a raw line and prints the reply as is', async (t) => {
    const c = uniqueCall('ctl-query');
    const reply = await ok(t, ['-s', udp, 'query', 'U', c.id, '127.0.0.1', '4000', c.from]);
    t.match(reply, /^[0-9]+ 127\.0\.0\.1\n$/);
    const q = JSON.parse(await ok(t, ['-s', unix, '--json', 'query', `Qv ${c.id} ${c.from}`])) as {
      command: string;
      reply: string;
    };
    t.equal(q.command, `Qv ${c.id} ${c.from}`);
    t.match(q.reply, /^ttl=[0-9]+ npkts_ina=0 npkts_ino=0 nrelayed=0 ndropped=0$/);
    const i = await ok(t, ['-s', tcp, 'query', 'I']);
    t.match(i, /^sessions created: [0-9]+\nactive sessions: [0-9]+\n/, 'a reply of several lines');
    // An error reply is printed, and the exit status says it failed.
    const e = await fails(
      t,
      ['-s', udp, 'query', 'Q', 'no-such-call', 'a', 'b'],
      1,
      'rtpproxyctl: Q failed: E50 (no matching session)',
    );
    t.equal(e.stdout, 'E50\n');
    t.equal(await d.command(`D ${c.id} ${c.from}`), '0\n');
  });

  t.test('RTPPROXY_SOCKET names the default socket', async (t) => {
    const r = await ctl(['query', 'V'], { RTPPROXY_SOCKET: unix });
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, '20040107\n');
  });
});

t.test('rtpproxyctl without a daemon fails in one line (exit 1)', async (t) => {
  const port = await freeUdpPort();
  await fails(
    t,
    ['-s', `udp:127.0.0.1:${String(port)}`, 'info'],
    1,
    `rtpproxyctl: cannot reach udp:127.0.0.1:${String(port)}: connection refused (is the daemon running?)`,
  );
  const dir = tempDir(t, 'ctl-none');
  const file = path.join(dir, 'none.sock');
  await fails(
    t,
    ['-s', file, 'stats'],
    1,
    `rtpproxyctl: cannot reach unix:${file}: no such socket file (is the daemon running?)`,
  );
  // Something bound that never answers: the deadline.
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  let datagrams = 0;
  silent.on('message', () => (datagrams += 1));
  const silentPort = silent.address().port;
  await fails(
    t,
    ['-s', `udp:127.0.0.1:${String(silentPort)}`, '--timeout', '400', 'query', 'V'],
    1,
    `rtpproxyctl: no answer from udp:127.0.0.1:${String(silentPort)} within 400 ms`,
  );
  t.ok(datagrams >= 2 && datagrams <= 4, `retransmitted, bounded (${String(datagrams)} sends)`);
});

t.test('rtpproxyctl usage errors exit 2 with one line; --help exits 0', async (t) => {
  const unknown = await fails(t, ['frobnicate'], 2, /^rtpproxyctl: unknown verb 'frobnicate'/);
  t.equal(unknown.stdout, '');
  await fails(
    t,
    ['alloc', 'c1', '127.0.0.1'],
    2,
    "rtpproxyctl: missing required argument 'port' (see rtpproxyctl --help)",
  );
  await fails(t, [], 2, 'rtpproxyctl: no verb given (see rtpproxyctl --help)');
  await fails(t, ['-s', 'udp6:127.0.0.1', 'info'], 2, /^rtpproxyctl: bad control socket /);
  await fails(
    t,
    ['list'],
    2,
    'rtpproxyctl: list needs the admin API: give --http URL or set RTPPROXY_HTTP',
  );
  const help = await ctl(['--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: rtpproxyctl /);
  t.match(help.stdout, /Exit status: 0 done/);
  t.equal(help.stderr, '');
});

t.test('the program: exit statuses and one line on stderr from bin/rtpproxyctl.js', async (t) => {
  const dir = tempDir(t, 'ctl-bin');
  const unix = path.join(dir, 'ctl.sock');
  await startDaemon(t, ['-l', '127.0.0.1', ...WINDOW, '-s', `unix:${unix}`]);
  const done = await spawnCtl(['-s', unix, 'query', 'V']);
  t.same(done, { status: 0, stdout: '20040107\n', stderr: '' }, 'done: 0');
  const help = await spawnCtl(['--help']);
  t.equal(help.status, 0, '--help: 0');
  t.match(help.stdout, /^Usage: rtpproxyctl /);
  const usage = await spawnCtl(['frobnicate']);
  t.equal(usage.status, 2, 'usage error: 2');
  t.match(usage.stderr, /^rtpproxyctl: unknown verb 'frobnicate'[^\n]*\n$/);
  const port = await freeUdpPort();
  const failed = await spawnCtl(['-s', `udp:127.0.0.1:${String(port)}`, 'info']);
  t.equal(failed.status, 1, 'failed operation: 1');
  t.equal(
    failed.stderr,
    `rtpproxyctl: cannot reach udp:127.0.0.1:${String(port)}: connection refused (is the daemon running?)\n`,
  );
  const env = await spawnCtl(['query', 'V'], { RTPPROXY_SOCKET: unix });
  t.equal(env.stdout, '20040107\n', 'RTPPROXY_SOCKET from the environment');
});

t.test('rtpproxyctl list, show, delete and drain through the admin API', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...WINDOW, '--http', '127.0.0.1:0']);
  const port = d.daemon.httpPort;
  if (port === undefined) throw new Error('the daemon has no admin listener');
  const http = `http://127.0.0.1:${String(port)}`;
  const udp = `udp:127.0.0.1:${String(d.controlPort)}`;
  const admin = (args: readonly string[]) => ['-s', udp, '--http', http, ...args];

  // An answered call with one packet relayed each way, and an offer still waiting for its answer.
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const call = uniqueCall('ctl-admin-active');
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  const packet = rtpPacket({ seq: 1, ssrc: 0x1234 });
  await a.send(packet, toA);
  await b.expect(packet, toB);
  await b.send(packet, toB);
  await a.expect(packet, toA);
  const setup = uniqueCall('ctl-admin-setup');
  await d.port(`U ${setup.id} 127.0.0.1 4000 ${setup.from}`);

  interface Leg {
    side: string;
    local: { address: string; port: number };
    remote: { address: string; port: number } | null;
    latched: boolean;
    packetsIn: number;
    relayed: number;
  }
  interface Summary {
    callId: string;
    tag: string;
    state: string;
    kernel: boolean;
    ageSeconds: number;
    idleSeconds: number;
    legs: Leg[];
  }
  interface List {
    total: number;
    offset: number;
    limit: number;
    sessions: Summary[];
  }

  t.test('list as JSON, with filters and paging', async (t) => {
    const all = JSON.parse(await ok(t, admin(['--json', 'list']))) as List;
    t.equal(all.total, 2);
    t.equal(all.offset, 0);
    t.equal(all.limit, 100);
    const active = all.sessions.find((s) => s.callId === call.id);
    t.match(active, { tag: call.from, state: 'active', kernel: false });
    t.same(
      active?.legs.map((l) => [l.side, l.local.port, l.remote?.port]),
      [
        ['callee', toB, b.port],
        ['caller', toA, a.port],
      ],
      'legs[0] faces the callee, legs[1] the caller',
    );
    t.equal(typeof active?.ageSeconds, 'number');
    const waiting = JSON.parse(
      await ok(t, admin(['list', '--json', '--state', 'setup', '--callid', 'ctladminsetup'])),
    ) as List;
    t.equal(waiting.total, 1);
    t.equal(waiting.sessions[0]?.callId, setup.id);
    t.equal(waiting.sessions[0]?.state, 'setup');
    const page = JSON.parse(
      await ok(t, admin(['list', '--json', '--limit', '1', '--offset', '1'])),
    ) as List;
    t.equal(page.total, 2);
    t.equal(page.sessions.length, 1);
    const none = JSON.parse(await ok(t, admin(['list', '--json', '--min-age', '3600']))) as List;
    t.equal(none.total, 0, 'nothing is an hour old');
    const kernel = JSON.parse(await ok(t, admin(['list', '--json', '--kernel', 'yes']))) as List;
    t.equal(kernel.total, 0, 'nothing in the kernel with --nft off');
  });

  t.test('list as a table', async (t) => {
    const lines = (await ok(t, admin(['list']))).trimEnd().split('\n');
    t.match(
      lines[0],
      /^CALL-ID +TAG +STATE +AGE +IDLE +KERNEL +CALLER REMOTE +CALLEE REMOTE +PACKETS +RELAYED$/,
    );
    t.equal(lines.length, 4, 'header, two sessions, footer');
    const row = lines.find((l) => l.startsWith(call.id)) ?? '';
    t.match(
      row,
      new RegExp(
        `^${call.id} +${call.from} +active +[0-9]+ +[0-9]+ +no +127\\.0\\.0\\.1:${String(a.port)} +127\\.0\\.0\\.1:${String(b.port)} +[0-9]+ +[0-9]+$`,
      ),
    );
    t.match(
      lines.find((l) => l.startsWith(setup.id)),
      / setup /,
    );
    t.equal(lines[3], 'sessions 1-2 of 2 matching');
  });

  t.test('show one call in full, as JSON and as text', async (t) => {
    const doc = JSON.parse(await ok(t, admin(['--json', 'show', call.id]))) as {
      callId: string;
      sessions: {
        tag: string;
        legs: {
          side: string;
          local: { port: number };
          ttlSeconds: number;
          recording: boolean;
          rtp: {
            remote: { port: number } | null;
            path: string;
            packetsIn: number;
            relayed: number;
          };
          rtcp: { packetsIn: number };
        }[];
      }[];
    };
    t.equal(doc.callId, call.id);
    t.equal(doc.sessions.length, 1);
    const [callee, caller] = doc.sessions[0]?.legs ?? [];
    t.match(caller, { side: 'caller', local: { port: toA }, recording: false });
    t.match(caller?.rtp, { remote: { port: a.port }, path: 'userspace', packetsIn: 1 });
    t.match(callee?.rtp, { remote: { port: b.port }, packetsIn: 1 });
    t.equal(caller?.rtcp.packetsIn, 0);
    t.equal(typeof callee?.ttlSeconds, 'number');
    const text = await ok(t, admin(['show', call.id]));
    t.match(text, new RegExp(`^session ${call.id} tag ${call.from}\n {2}state active, `));
    t.match(
      text,
      new RegExp(`^ {2}caller leg: local 127\\.0\\.0\\.1:${String(toA)}, ttl [0-9]+ s$`, 'm'),
    );
    t.match(
      text,
      new RegExp(`^ {2}callee leg: local 127\\.0\\.0\\.1:${String(toB)}, ttl [0-9]+ s$`, 'm'),
    );
    t.match(
      text,
      new RegExp(`rtp {2}remote 127\\.0\\.0\\.1:${String(a.port)} \\(latched\\), path userspace`),
    );
    t.match(text, /in 1 packets [0-9]+ bytes, relayed 1, dropped 0/);
    t.match(text, /rtpa received 1, duplicates 0, lost 0/);
    await fails(
      t,
      admin(['show', 'no-such-call@nowhere']),
      1,
      /^rtpproxyctl: show failed: HTTP 404: .+\n$/,
    );
  });

  t.test('delete without tags ends every session of the call', async (t) => {
    t.equal(await ok(t, admin(['delete', setup.id])), `deleted 1 session of ${setup.id}\n`);
    t.equal(await d.command(`Q ${setup.id} ${setup.from}`), 'E50\n', 'the session is gone');
    await fails(t, admin(['delete', setup.id]), 1, /^rtpproxyctl: delete failed: HTTP 404: .+\n$/);
  });

  t.test('drain refuses new sessions and keeps the call', async (t) => {
    const doc = JSON.parse(await ok(t, admin(['--json', 'drain']))) as {
      draining: boolean;
      sessions: number;
    };
    t.same(doc, { draining: true, sessions: 1 });
    const health = await fetch(`${http}/health`, { signal: AbortSignal.timeout(5000) });
    t.equal(health.status, 503);
    t.match(await health.json(), { status: 'draining', draining: true, sessions: 1 });
    t.match(
      await d.command(`Q ${call.id} ${call.from} ${call.to}`),
      /^[0-9]+ /,
      'the call goes on',
    );
    // V answers E99 while draining: info says so and still shows the figures.
    const info = JSON.parse(await ok(t, admin(['--json', 'info']))) as Record<string, unknown>;
    t.match(info, { version: null, draining: true, activeSessions: 1 });
    t.match(await ok(t, admin(['info'])), /^protocol version +draining \(V answers E99\)\n/);
  });
});
