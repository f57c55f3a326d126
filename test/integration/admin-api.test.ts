/**
 * The admin listener (`--http`, docs/admin-api.md, docs/metrics.md) of a real daemon, over real
 * sockets: the metrics follow the traffic of real calls, every endpoint answers with the right
 * status for good and bad requests, and DELETE and POST /drain act on the relay.
 */
import t from 'tap';
import { UdpControlClient } from '../helpers/control.ts';
import { parseSamples } from '../helpers/metrics.ts';
import { type RunningDaemon, startDaemon } from '../helpers/daemon.ts';
import { newCall, offer } from '../helpers/calls.ts';
import { Peer, portFree, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';
import type { SessionDetail, SessionSummary } from '../../src/admin/sessions.ts';

const args = ['-l', '127.0.0.1', ...portWindow(80), '--http', '127.0.0.1:0'];

interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function http(d: RunningDaemon, path: string, method = 'GET'): Promise<HttpReply> {
  const port = d.daemon.httpPort;
  if (port === undefined) throw new Error('the daemon has no admin listener');
  const res = await fetch(`http://127.0.0.1:${String(port)}${path}`, {
    method,
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

interface ListBody {
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly sessions: readonly SessionSummary[];
}

interface DetailBody {
  readonly callId: string;
  readonly sessions: readonly SessionDetail[];
}

interface ErrorBody {
  readonly error: string;
}

/** A JSON reply: its status and body, as the endpoint's documented shape. */
async function getJson<T = ErrorBody>(
  d: RunningDaemon,
  path: string,
  method = 'GET',
): Promise<[number, T]> {
  const reply = await http(d, path, method);
  t.match(reply.headers.get('content-type'), /^application\/json/, `${method} ${path} is JSON`);
  return [reply.status, JSON.parse(reply.text) as T];
}

async function scrape(d: RunningDaemon): Promise<Map<string, number>> {
  const reply = await http(d, '/metrics');
  t.equal(reply.status, 200);
  t.match(reply.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parseSamples(reply.text);
}

t.test('the metrics follow the traffic of a real call', async (t) => {
  const d = await startDaemon(t, args);
  const before = await scrape(d);
  t.equal(before.get('rtpproxy_sessions_active'), 0);
  t.equal(before.get('rtpproxy_port_pairs{family="4"}'), 50, 'the range holds 50 pairs');
  t.ok(before.has('process_cpu_seconds_total'), 'process metrics');
  t.ok(before.has('nodejs_eventloop_lag_seconds'), 'Node runtime metrics');

  // A packet to the offer's port before the answer: nowhere to go yet.
  const { call, a, toB } = await offer(t, d, 'metrics');
  await a.send(rtpPacket({ seq: 1, ssrc: 0x99 }), toB);
  let discarded = '';
  for (let i = 0; i < 100 && discarded !== '1\n'; i += 1) {
    discarded = await d.command('G npkts_discard');
    if (discarded !== '1\n') await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal(discarded, '1\n', 'the early packet discarded');
  const b = await Peer.open(t);
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  let bytes = 0;
  for (let seq = 1; seq <= 5; seq += 1) {
    const p = rtpPacket({ seq, ssrc: 0xa });
    bytes += p.length;
    await a.send(p, toA);
    await b.expect(p, toB);
  }
  for (let seq = 1; seq <= 3; seq += 1) {
    const p = rtpPacket({ seq, ssrc: 0xb, fill: 7 });
    bytes += p.length;
    await b.send(p, toB);
    await a.expect(p, toA);
  }
  t.equal(await d.command('D nosuchcall x'), 'E50\n');
  t.equal(await d.command('Z'), 'E0\n');

  const m = await scrape(d);
  t.equal(m.get('rtpproxy_sessions_active'), 1);
  t.equal(m.get('rtpproxy_sessions_created_total'), 1);
  t.equal(m.get('rtpproxy_sessions_completed_total'), 1);
  t.equal(m.get('rtpproxy_streams_active{path="userspace"}'), 2, 'RTP and RTCP of the session');
  t.equal(m.get('rtpproxy_streams_active{path="kernel"}'), 0);
  t.equal(m.get('rtpproxy_packets_received_total{path="userspace"}'), 9, '8 relayed, 1 early');
  t.equal(m.get('rtpproxy_packets_relayed_total{path="userspace"}'), 8);
  t.equal(m.get('rtpproxy_bytes_received_total{path="userspace"}'), bytes, 'accepted bytes');
  t.equal(m.get('rtpproxy_packets_dropped_total{reason="no_destination"}'), 1);
  t.equal(m.get('rtpproxy_packets_dropped_total{reason="source"}'), 0);
  t.equal(m.get('rtpproxy_port_pairs_in_use{family="4"}'), 2, 'a pair per leg');
  t.equal(m.get('rtpproxy_port_pairs_free{family="4"}'), 48);
  t.equal(m.get('rtpproxy_commands_total{verb="U",result="ok"}'), 1);
  t.equal(m.get('rtpproxy_commands_total{verb="L",result="ok"}'), 1);
  t.equal(m.get('rtpproxy_commands_total{verb="D",result="E50"}'), 1);
  t.equal(m.get('rtpproxy_commands_total{verb="unknown",result="E0"}'), 1);
  t.equal(m.get('rtpproxy_command_duration_seconds_count{verb="U"}'), 1);
  t.equal(m.get('rtpproxy_media_workers'), 1);
  t.equal(m.get('rtpproxy_draining'), 0);

  t.equal(await d.command(`D ${call.id} ${call.from}`), '0\n');
  const after = await scrape(d);
  t.equal(after.get('rtpproxy_sessions_active'), 0);
  t.equal(after.get('rtpproxy_sessions_destroyed_total{cause="delete"}'), 1);
  t.equal(after.get('rtpproxy_sessions_destroyed_total{cause="timeout"}'), 0);
  t.equal(after.get('rtpproxy_port_pairs_in_use{family="4"}'), 0);
  t.equal(
    after.get('rtpproxy_bytes_received_total{path="userspace"}'),
    bytes,
    'the ended session’s bytes stay counted',
  );
  t.equal(after.get('rtpproxy_packets_relayed_total{path="userspace"}'), 8);
});

t.test('GET /sessions: summaries, filters and paging', async (t) => {
  const d = await startDaemon(t, args);
  const first = await newCall(t, d, 'listA');
  const second = await newCall(t, d, 'listA');
  const pending = await offer(t, d, 'listB');
  const p = rtpPacket({ seq: 1, ssrc: 0x1 });
  await first.a.send(p, first.toA);
  await first.b.expect(p, first.toB);

  const [status, all] = await getJson<ListBody>(d, '/sessions');
  t.equal(status, 200);
  t.equal(all.total, 3);
  t.equal(all.offset, 0);
  t.equal(all.limit, 100);
  t.same(
    all.sessions.map((s) => s.callId),
    [first.call.id, second.call.id, pending.call.id],
    'oldest first',
  );
  const s0 = all.sessions[0];
  if (s0 === undefined) throw new Error('no session listed');
  t.match(s0, {
    callId: first.call.id,
    tag: first.call.from,
    state: 'active',
    kernel: false,
    legs: [
      {
        side: 'callee',
        local: { address: '127.0.0.1', port: first.toB },
        remote: { address: '127.0.0.1', port: first.b.port },
        latched: false,
        packetsIn: 0,
      },
      {
        side: 'caller',
        local: { address: '127.0.0.1', port: first.toA },
        remote: { address: '127.0.0.1', port: first.a.port },
        latched: true,
        packetsIn: 1,
        relayed: 1,
      },
    ],
  });
  t.type(s0.ageSeconds, 'number');
  t.type(s0.idleSeconds, 'number');

  const page = async (query: string): Promise<string[]> => {
    const [code, body] = await getJson<ListBody>(d, `/sessions?${query}`);
    t.equal(code, 200, query);
    return body.sessions.map((s) => s.callId);
  };
  t.same(await page('state=setup'), [pending.call.id]);
  t.same(await page('state=active'), [first.call.id, second.call.id]);
  t.same(await page('callid=listB'), [pending.call.id]);
  t.same(await page('callid=listA&limit=1&offset=1'), [second.call.id]);
  t.same(await page('kernel=yes'), []);
  t.equal((await page('kernel=no')).length, 3);
  t.same(await page('min_age=3600'), []);
  t.equal((await page('min_idle=0')).length, 3);
  t.same(await page('offset=10'), []);
  const [, paged] = await getJson<ListBody>(d, '/sessions?limit=2');
  t.equal(paged.total, 3, 'total counts every match, not the page');
  t.equal(paged.sessions.length, 2);

  for (const bad of [
    'limit=0',
    'limit=1001',
    'limit=abc',
    'offset=-1',
    'offset=1.5',
    'min_age=x',
    'state=ringing',
    'kernel=maybe',
    'sort=age',
    'limit=1&limit=2',
  ]) {
    const [code, body] = await getJson(d, `/sessions?${bad}`);
    t.equal(code, 400, `${bad} is refused`);
    t.type(body.error, 'string');
  }
});

t.test('GET /sessions/{callid}: both legs, counters, RTP analysis', async (t) => {
  const d = await startDaemon(t, args);
  const c = await newCall(t, d, 'detail');
  for (let seq = 1; seq <= 4; seq += 1) {
    const p = rtpPacket({ seq, ssrc: 0xc });
    await c.a.send(p, c.toA);
    await c.b.expect(p, c.toB);
  }
  const [status, body] = await getJson<DetailBody>(d, `/sessions/${encodeURIComponent(c.call.id)}`);
  t.equal(status, 200);
  t.equal(body.callId, c.call.id);
  t.equal(body.sessions.length, 1);
  const session = body.sessions[0];
  if (session === undefined) throw new Error('no session shown');
  const [callee, caller] = session.legs;
  t.match(caller, {
    side: 'caller',
    local: { address: '127.0.0.1', port: c.toA },
    onHold: false,
    weak: false,
    recording: false,
    playing: false,
    blocked: false,
    rtp: {
      remote: { address: '127.0.0.1', port: c.a.port },
      latched: true,
      path: 'userspace',
      reason: 'off',
      packetsIn: 4,
      relayed: 4,
      dropped: 0,
      ignored: 0,
      sendErrors: 0,
      rtpa: { received: 4, lost: 0, duplicates: 0 },
    },
    rtcp: { packetsIn: 0, path: 'userspace' },
  });
  t.equal(caller.rtp.bytesIn, 4 * rtpPacket({ seq: 1, ssrc: 0xc }).length);
  t.type(caller.ttlSeconds, 'number');
  t.match(callee, { side: 'callee', local: { port: c.toB }, rtp: { packetsIn: 0 } });

  const [missing, error] = await getJson(d, '/sessions/no-such-call');
  t.equal(missing, 404);
  t.match(error.error, /no-such-call/);
  const [malformed] = await getJson(d, '/sessions/%E0%A4%A');
  t.equal(malformed, 400, 'a malformed %-encoding');
});

t.test('DELETE /sessions/{callid} ends the call and frees its ports', async (t) => {
  const d = await startDaemon(t, args);
  const c = await newCall(t, d, 'delete');
  const [status, body] = await getJson<{ deleted: number }>(
    d,
    `/sessions/${encodeURIComponent(c.call.id)}`,
    'DELETE',
  );
  t.equal(status, 200);
  t.same(body, { deleted: 1 });
  t.ok(await portFree(c.toA), 'the callee port is free');
  t.ok(await portFree(c.toB), 'the caller port is free');
  t.equal(await d.command(`Q ${c.call.id} ${c.call.from} ${c.call.to}`), 'E50\n');
  const m = await scrape(d);
  t.equal(m.get('rtpproxy_sessions_destroyed_total{cause="admin"}'), 1);
  const [again] = await getJson(d, `/sessions/${encodeURIComponent(c.call.id)}`, 'DELETE');
  t.equal(again, 404, 'nothing left to delete');
});

t.test('wrong methods and unknown paths', async (t) => {
  const d = await startDaemon(t, args);
  const cases: [string, string, number, string | undefined][] = [
    ['PUT', '/sessions', 405, 'GET, HEAD'],
    ['POST', '/health', 405, 'GET, HEAD'],
    ['GET', '/drain', 405, 'POST'],
    ['POST', '/sessions/x', 405, 'GET, DELETE, HEAD'],
    ['DELETE', '/metrics', 405, 'GET, HEAD'],
    ['GET', '/nothing', 404, undefined],
    ['GET', '/sessions/a/b', 404, undefined],
    ['GET', '/sessions/', 404, undefined],
  ];
  for (const [method, path, code, allow] of cases) {
    const reply = await http(d, path, method);
    t.equal(reply.status, code, `${method} ${path}`);
    t.equal(reply.headers.get('allow') ?? undefined, allow, `${method} ${path}: Allow`);
    t.type((JSON.parse(reply.text) as ErrorBody).error, 'string');
  }
  const head = await http(d, '/metrics', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.text, '', 'HEAD has no body');
});

t.test('GET /health and POST /drain', async (t) => {
  const d = await startDaemon(t, args);
  const c = await newCall(t, d, 'drain');
  const [ok, serving] = await getJson<unknown>(d, '/health');
  t.equal(ok, 200);
  t.same(serving, { status: 'serving', draining: false, overloaded: false, sessions: 1 });
  const [accepted, drain] = await getJson<unknown>(d, '/drain', 'POST');
  t.equal(accepted, 202);
  t.same(drain, { draining: true, sessions: 1 });
  const [unavailable, draining] = await getJson<unknown>(d, '/health');
  t.equal(unavailable, 503);
  t.match(draining, { status: 'draining', draining: true, sessions: 1 });
  t.equal((await scrape(d)).get('rtpproxy_draining'), 1);
  // A new call is left unanswered on udp (docs/operations.md, "Drain"): an empty datagram.
  const other = uniqueCall('drain');
  const client = await UdpControlClient.open(d.controlPort, '127.0.0.1');
  t.teardown(() => client.close());
  await client.sendRaw(`drain-1 U ${other.id} 127.0.0.1 7000 ${other.from}`);
  t.equal(await client.receive(), '', 'an empty datagram');
  t.equal(await d.command('G nsess_created'), '1\n', 'no session created while draining');
  t.equal(
    (await scrape(d)).get('rtpproxy_commands_total{verb="U",result="E99"}'),
    1,
    'the refused offer counted as E99',
  );
  // The call in progress keeps its media.
  const p = rtpPacket({ seq: 1, ssrc: 0xd });
  await c.a.send(p, c.toA);
  await c.b.expect(p, c.toB);
  t.equal(await d.command(`D ${c.call.id} ${c.call.from}`), '0\n');
  await d.drained;
  t.pass('drained once the last call ended');
});

t.test('an admin listener other hosts can reach is warned about', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...portWindow(81), '--http', '0.0.0.0:0'], {
    captureLogs: true,
  });
  t.ok(
    d.logs.some((l) => l.level === 40 && l.msg.includes('admin API listens on every interface')),
    'a warning at start',
  );
  const [status] = await getJson(d, '/health');
  t.equal(status, 200);
});
