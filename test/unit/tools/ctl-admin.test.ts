/**
 * rtpproxyctl's admin-API verbs (list, show, drain, delete without tags) against a small local
 * HTTP server that answers as the daemon's admin API does (docs/operations.md, "rtpproxyctl"):
 * the requests it builds, what it prints, and how it fails.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import type { CtlEnv } from '../../../src/tools/ctl-args.ts';
import { runCtl } from '../../../src/tools/ctl.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** An admin API on a free loopback port; `seen` records every request. */
async function adminServer(
  t: Test,
  handler: Handler,
): Promise<{ base: string; seen: Seen[]; port: number }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '' });
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${String(port)}`, seen, port };
}

function json(res: http.ServerResponse, status: number, body: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Runs the tool in-process; what it printed, split in lines. */
async function ctl(argv: string[], env: CtlEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const status = await runCtl(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, env);
  return { status, out, err, stdout: out.join('\n') };
}

const LEG_CALLEE = {
  side: 'callee',
  local: { address: '127.0.0.1', port: 35000 },
  remote: { address: '192.0.2.20', port: 6000 },
  latched: true,
  packetsIn: 50,
  relayed: 49,
};
const LEG_CALLER = {
  side: 'caller',
  local: { address: '127.0.0.1', port: 35002 },
  remote: null,
  latched: false,
  packetsIn: 7,
  relayed: 7,
};
const SUMMARY = {
  callId: 'call-1@example',
  tag: 'ft;1',
  state: 'active',
  ageSeconds: 12.4,
  idleSeconds: 0.2,
  kernel: false,
  legs: [LEG_CALLEE, LEG_CALLER],
};
const LIST = { total: 3, offset: 1, limit: 1, sessions: [SUMMARY] };

function stream(packetsIn: number, rtpa: boolean) {
  return {
    remote: { address: '2001:db8::7', port: 7000 },
    latched: true,
    path: 'userspace',
    reason: 'recording',
    packetsIn,
    bytesIn: packetsIn * 172,
    relayed: packetsIn - 1,
    dropped: 1,
    ignored: 0,
    sendErrors: 0,
    ...(rtpa
      ? {
          rtpa: {
            received: packetsIn,
            duplicates: 0,
            lost: 2,
            sent: packetsIn + 2,
            perrs: 0,
            jitterLast: 1.5,
            jitterMax: 3.25,
            jitterAvg: 2,
            longestIpi: 0.04,
          },
        }
      : {}),
  };
}

function legDetail(side: 'caller' | 'callee', port: number) {
  return {
    side,
    local: { address: '127.0.0.1', port, advertised: '198.51.100.1' },
    ttlSeconds: 58,
    onHold: false,
    weak: side === 'callee',
    recording: true,
    playing: false,
    blocked: false,
    rtp: stream(side === 'caller' ? 120 : 80, true),
    rtcp: { ...stream(3, false), remote: null, latched: false, path: 'kernel' },
  };
}

const DETAIL = {
  callId: 'call-1@example',
  sessions: [
    { ...SUMMARY, legs: [legDetail('callee', 35000), legDetail('caller', 35002)] },
    {
      ...SUMMARY,
      tag: 'ft;2',
      state: 'setup',
      legs: [legDetail('callee', 35004), legDetail('caller', 35006)],
    },
  ],
};

t.test('runCtl(list) sends the filters as query parameters and prints a table', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 200, LIST));
  const r = await ctl([
    '--http',
    api.base,
    'list',
    '--callid',
    'call-1',
    '--state',
    'active',
    '--kernel',
    'no',
    '--min-age',
    '10',
    '--min-idle',
    '0.5',
    '--offset',
    '1',
    '--limit',
    '1',
  ]);
  t.equal(r.status, 0, r.err.join('\n'));
  t.same(r.err, []);
  t.equal(api.seen.length, 1);
  const url = new URL(api.seen[0]?.url ?? '', api.base);
  t.equal(api.seen[0]?.method, 'GET');
  t.equal(url.pathname, '/sessions');
  t.same(Object.fromEntries(url.searchParams), {
    callid: 'call-1',
    state: 'active',
    kernel: 'no',
    min_age: '10',
    min_idle: '0.5',
    offset: '1',
    limit: '1',
  });
  t.match(
    r.out[0],
    /^CALL-ID\s+TAG\s+STATE\s+AGE\s+IDLE\s+KERNEL\s+CALLER REMOTE\s+CALLEE REMOTE\s+PACKETS\s+RELAYED$/,
  );
  t.match(
    r.out[1],
    /^call-1@example\s+ft;1\s+active\s+12\s+0\s+no\s+-\s+192\.0\.2\.20:6000\s+57\s+56$/,
  );
  t.equal(r.out[2], 'sessions 2-2 of 3 matching');
  // Columns line up: each header starts where its values start.
  const header = r.out[0] ?? '';
  const row = r.out[1] ?? '';
  t.equal(row.indexOf('ft;1'), header.indexOf('TAG'));
  t.equal(row.indexOf('192.0.2.20'), header.indexOf('CALLEE REMOTE'));
});

t.test('runCtl(list --json) prints the API document as it came', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 200, LIST));
  const r = await ctl(['list', '--json'], { RTPPROXY_HTTP: `127.0.0.1:${String(api.port)}` });
  t.equal(r.status, 0, r.err.join('\n'));
  t.same(JSON.parse(r.stdout), LIST);
  t.equal(new URL(api.seen[0]?.url ?? '', api.base).search, '', 'no filters, no query string');
});

t.test('runCtl(list) with no session says so', async (t) => {
  const api = await adminServer(t, (_req, res) =>
    json(res, 200, { total: 0, offset: 0, limit: 100, sessions: [] }),
  );
  const r = await ctl(['--http', `${api.base}/`, 'list']);
  t.equal(r.status, 0);
  t.equal(r.out.length, 2);
  t.equal(r.out[1], 'no sessions of 0 matching');
  t.equal(api.seen[0]?.url, '/sessions', 'a trailing slash of the base is not doubled');
});

t.test('runCtl(show) URL-encodes the call-id and prints every session in detail', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 200, DETAIL));
  const r = await ctl(['--http', api.base, 'show', 'abc/def@host;1 x']);
  t.equal(r.status, 0, r.err.join('\n'));
  t.equal(api.seen[0]?.url, '/sessions/abc%2Fdef%40host%3B1%20x');
  const text = r.stdout;
  t.match(
    text,
    /^session call-1@example tag ft;1\n {2}state active, age 12 s, idle 0 s, kernel no$/m,
  );
  t.match(text, /^session call-1@example tag ft;2$/m, 'the second session of the call-id');
  t.match(
    text,
    /^ {2}caller leg: local 127\.0\.0\.1:35002 \(advertised 198\.51\.100\.1\), ttl 58 s$/m,
  );
  t.match(text, /^ {2}callee leg: local 127\.0\.0\.1:35000/m);
  t.match(text, /on hold no, weak yes, recording yes, playing no, blocked no/, 'callee flags');
  t.match(text, /rtp {2}remote \[2001:db8::7\]:7000 \(latched\), path userspace \(recording\)/);
  t.match(text, /in 120 packets 20640 bytes, relayed 119, dropped 1, ignored 0, send errors 0/);
  t.match(text, /rtpa received 120, duplicates 0, lost 2, sent 122, parse errors 0/);
  t.match(text, /jitter last 1\.5, max 3\.25, avg 2, longest gap 0\.04 s/);
  t.match(text, /rtcp remote - \(not latched\), path kernel/);
  t.ok(text.indexOf('caller leg') < text.indexOf('callee leg'), 'the caller first');
});

t.test('runCtl(show --json) prints the API document', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 200, DETAIL));
  const r = await ctl(['--http', api.base, '--json', 'show', 'call-1@example']);
  t.equal(r.status, 0);
  t.same(JSON.parse(r.stdout), DETAIL);
});

t.test('runCtl(show) of an unknown call-id fails with the API error', async (t) => {
  const api = await adminServer(t, (_req, res) =>
    json(res, 404, { error: 'no session with call-id nope' }),
  );
  const r = await ctl(['--http', api.base, 'show', 'nope']);
  t.equal(r.status, 1);
  t.same(r.out, []);
  t.same(r.err, ['rtpproxyctl: show failed: HTTP 404: no session with call-id nope']);
});

t.test('runCtl(delete CALLID) without tags deletes through the API', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 200, { deleted: 2 }));
  const r = await ctl(['--http', api.base, 'delete', 'c@x']);
  t.equal(r.status, 0, r.err.join('\n'));
  t.same(api.seen, [{ method: 'DELETE', url: '/sessions/c%40x' }]);
  t.same(r.out, ['deleted 2 sessions of c@x']);
  const j = await ctl(['--http', api.base, '--json', 'delete', 'c@x']);
  t.same(JSON.parse(j.stdout), { deleted: 2 });
});

t.test('runCtl(delete CALLID) of an unknown call-id exits 1', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 404, { error: 'unknown call-id' }));
  const r = await ctl(['--http', api.base, 'delete', 'gone']);
  t.equal(r.status, 1);
  t.same(r.err, ['rtpproxyctl: delete failed: HTTP 404: unknown call-id']);
});

t.test('runCtl(drain) posts to /drain', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 202, { draining: true, sessions: 4 }));
  const r = await ctl(['--http', api.base, 'drain']);
  t.equal(r.status, 0, r.err.join('\n'));
  t.same(api.seen, [{ method: 'POST', url: '/drain' }]);
  t.same(r.out, ['draining: new sessions are refused; 4 left']);
  const j = await ctl(['--http', api.base, 'drain', '--json']);
  t.same(JSON.parse(j.stdout), { draining: true, sessions: 4 });
});

t.test('runCtl() reports a wrong method and a body that is not JSON', async (t) => {
  const api = await adminServer(t, (req, res) => {
    if (req.url === '/drain') json(res, 405, { error: 'method not allowed' }, { allow: 'POST' });
    else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>');
    }
  });
  const drain = await ctl(['--http', api.base, 'drain']);
  t.equal(drain.status, 1);
  t.same(drain.err, ['rtpproxyctl: drain failed: HTTP 405: method not allowed']);
  const list = await ctl(['--http', api.base, 'list']);
  t.equal(list.status, 1);
  t.equal(list.err.length, 1);
  t.match(
    list.err[0],
    /^rtpproxyctl: GET http:\/\/127\.0\.0\.1:[0-9]+\/sessions: answered 200 with a body that is not JSON$/,
  );
});

t.test('runCtl() fails in one line when the API does not answer in time', async (t) => {
  const api = await adminServer(t, () => {
    // never answers
  });
  const started = performance.now();
  const r = await ctl(['--http', api.base, '--timeout', '300', 'list']);
  t.equal(r.status, 1);
  t.same(r.err, [`rtpproxyctl: no answer from ${api.base} within 300 ms`]);
  t.ok(performance.now() - started < 5000, 'within its deadline');
});

t.test('runCtl() fails in one line when nothing listens', async (t) => {
  // A port that was just free: bound by a server, which is then closed.
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const r = await ctl(['--http', `http://127.0.0.1:${String(port)}`, 'drain']);
  t.equal(r.status, 1);
  t.same(r.err, [
    `rtpproxyctl: cannot reach http://127.0.0.1:${String(port)}: connection refused (is the daemon running?)`,
  ]);
});

t.test('runCtl() refuses the admin verbs without --http (usage, exit 2)', async (t) => {
  for (const argv of [['list'], ['show', 'c'], ['drain'], ['delete', 'c']]) {
    const r = await ctl(argv);
    t.equal(r.status, 2, argv.join(' '));
    t.equal(r.err.length, 1);
    t.match(r.err[0], /needs the admin API: give --http URL or set RTPPROXY_HTTP$/);
  }
  const bad = await ctl(['--http', 'ftp://x', 'list']);
  t.equal(bad.status, 2);
  t.same(bad.err, ['rtpproxyctl: bad admin API address "ftp://x": only http and https']);
  const limit = await ctl(['--http', 'http://x', 'list', '--limit', '1001']);
  t.equal(limit.status, 2);
  t.match(limit.err[0], /--limit <n>.*'1001' is invalid\. It must be from 1 to 1000\./);
});

t.test('runCtl() takes --http before or after the verb and in every form', async (t) => {
  const api = await adminServer(t, (_req, res) => json(res, 202, { draining: true, sessions: 0 }));
  for (const argv of [
    ['drain', '--http', api.base],
    ['--http', `127.0.0.1:${String(api.port)}`, 'drain'],
  ]) {
    const r = await ctl(argv);
    t.equal(r.status, 0, argv.join(' '));
  }
  t.equal(api.seen.length, 2);
});
