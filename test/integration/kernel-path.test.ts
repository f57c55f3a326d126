/**
 * The kernel fast path (`--kernel auto|on|off`): once both parties of a stream component have
 * latched and the stream needs no userspace work, the daemon's nftables table forwards it in the
 * kernel, through the real forward path of the relay's host. Three network namespaces (caller,
 * relay, callee; test/helpers/netns.ts) stand in for three hosts; the daemon runs in the relay's,
 * each party is a UDP socket in its own host's.
 *
 * Checked here: relaying both ways over IPv4, IPv6 and in bridge mode, with the relay's address
 * and port as the source and the table's per-element counters growing while the relay's sockets
 * receive nothing; Q and the session-end line counting kernel-forwarded packets; the idle timeout
 * seeing them; a re-INVITE to a new address and R in mid-call going back to userspace without
 * losing packets; a third party getting nothing through; D, X and the exit removing every element;
 * a crashed daemon's table replaced at the next start; and the fallbacks (no nft binary, no
 * CAP_NET_ADMIN, forwarding off, `--nft off`). Nothing touches the host's own namespace: the
 * last subtest checks its table list and forwarding settings are as before.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { encodeBencode } from '../../src/ng/bencode.ts';
import { readAdhocHeader } from '../../src/record/adhoc.ts';
import { parseSamples } from '../helpers/metrics.ts';
import { tempDir } from '../helpers/tmp.ts';
import {
  createTopology,
  inputCounter,
  netnsSkipReason,
  nftIn,
  nftMapElements,
  nftTableMaps,
  nftTables,
  run,
  runIn,
  seqsOf,
  sleep,
  startNsDaemon,
  startParty,
  waitFor,
  type MapElement,
  type NsDaemon,
  type Party,
  type PartyReport,
  type Topology,
} from '../helpers/netns.ts';

/** The table of an instance whose control socket is `stdio:`. */
const TABLE = 'rtpproxy_stdio';
/** The maps that hold the kernel path's elements. */
const K_MAPS = [
  'kfwd4',
  'kfwd6',
  'kdaddr4',
  'kdaddr6',
  'kdport',
  'ksaddr4',
  'ksaddr6',
  'ksport4',
  'ksport6',
] as const;
const MIN_PORT = 40000;
const MAX_PORT = 40199;
const PORTS = ['-m', String(MIN_PORT), '-M', String(MAX_PORT)];
/** The admin listener of the relay's daemon, on the relay namespace's own loopback. */
const HTTP_PORT = 9191;

/** The metrics of a daemon listening on `port` in namespace `ns` (fetched from inside it). */
function scrapeIn(ns: string, port: number): Promise<string> {
  const url = `http://127.0.0.1:${String(port)}/metrics`;
  return runIn(ns, 'env', [
    ...['-u', 'NODE_OPTIONS', process.execPath, '-e'],
    `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => process.stdout.write(t))`,
  ]);
}
/**
 * One ng request (docs/ng.md) to the daemon's ng socket on `port` of namespace `ns`, sent from
 * inside it; resolves with the reply's dictionary, as text. Each request has a cookie of its own:
 * the daemon answers a cookie it has seen from its reply cache.
 */
let ngCookies = 0;
function ngIn(ns: string, port: number, request: Record<string, string>): Promise<string> {
  ngCookies += 1;
  const cookie = Buffer.from(`k${String(ngCookies)} `);
  const datagram = Buffer.concat([cookie, encodeBencode(request)]).toString('base64');
  const script = [
    "const s = require('node:dgram').createSocket('udp4');",
    'const timer = setTimeout(() => process.exit(2), 5000);',
    "s.on('message', (m) => { clearTimeout(timer); process.stdout.write(m.subarray(m.indexOf(32) + 1)); s.close(); });",
    `s.send(Buffer.from('${datagram}', 'base64'), ${String(port)}, '127.0.0.1');`,
  ].join(' ');
  return runIn(ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', script]);
}

/** How long an offload, a withdrawal or a counter read may take: sweeps run once a second. */
const KERNEL_DEADLINE_MS = 15_000;
/** The caller's and the callee's SSRC. */
const SSRC_A = 0x0a0a0a0a;
const SSRC_B = 0x0b0b0b0b;

// ---------------------------------------------------------------------------------------------
// Calls

interface Endpoint {
  readonly addr: string;
  readonly port: number;
}

/** `PORT ADDR [6]` of a U/L reply; `fallback` when the reply has no address. */
function endpointOf(reply: string, fallback: string): Endpoint {
  const m = /^([0-9]+)(?: ([0-9a-fA-F:.]+))?(?: 6)?$/.exec(reply.trim());
  if (m?.[1] === undefined || m[1] === '0') {
    throw new Error(`not a port reply: ${JSON.stringify(reply)}`);
  }
  return { addr: m[2] ?? fallback, port: Number(m[1]) };
}

interface Call {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  /** The caller's RTP party (the U's) and the callee's (the L's). */
  readonly a: Party;
  readonly b: Party;
  /** Where the caller sends: the relay's leg facing it; and where the callee sends. */
  readonly toA: Endpoint;
  readonly toB: Endpoint;
}

interface CallOptions {
  /** The U and L verbs with modifiers; `U` and `L` by default. */
  readonly u?: string;
  readonly l?: string;
  /** The address the replies leave out (a wildcard relay); the relay's main address by default. */
  readonly relay: string;
}

async function setUpCall(
  t: Test,
  d: NsDaemon,
  id: string,
  a: Party,
  b: Party,
  o: CallOptions,
): Promise<Call> {
  const from = `ft-${id}`;
  const to = `tt-${id}`;
  const uReply = await d.command(`${o.u ?? 'U'} ${id} ${a.address} ${String(a.port)} ${from}`);
  const toB = endpointOf(uReply, o.relay);
  const lReply = await d.command(
    `${o.l ?? 'L'} ${id} ${b.address} ${String(b.port)} ${from} ${to}`,
  );
  const toA = endpointOf(lReply, o.relay);
  t.comment(
    `call ${id}: caller -> ${toA.addr}:${String(toA.port)}, callee -> ${toB.addr}:${String(toB.port)}`,
  );
  return { id, from, to, a, b, toA, toB };
}

/** Waits until `party` has `count` packets of `ssrc`; its report. */
function received(party: Party, ssrc: number, count: number): Promise<PartyReport> {
  return waitFor(
    `${String(count)} packets of SSRC ${String(ssrc)} at ${party.address}:${String(party.port)}`,
    async () => {
      const r = await party.report();
      return seqsOf(r, ssrc).length >= count ? r : undefined;
    },
  );
}

/** One packet each way (sequence number 1): both parties latch. */
async function latch(call: Call, rtcp?: { a: Party; b: Party }): Promise<void> {
  await call.a.send({ to: call.toA.addr, port: call.toA.port, count: 1, ssrc: SSRC_A }).done;
  await call.b.send({ to: call.toB.addr, port: call.toB.port, count: 1, ssrc: SSRC_B }).done;
  await received(call.b, SSRC_A, 1);
  await received(call.a, SSRC_B, 1);
  if (rtcp !== undefined) {
    const opts = { count: 1, kind: 'rtcp' } as const;
    await rtcp.a.send({ ...opts, to: call.toA.addr, port: call.toA.port + 1, ssrc: SSRC_A }).done;
    await rtcp.b.send({ ...opts, to: call.toB.addr, port: call.toB.port + 1, ssrc: SSRC_B }).done;
    await received(rtcp.b, SSRC_A, 1);
    await received(rtcp.a, SSRC_B, 1);
  }
}

/**
 * Both parties send `n` packets (sequence numbers from `firstSeq`, 10 ms apart) at the same time;
 * resolves when each side has every one of them.
 */
async function exchange(call: Call, n: number, firstSeq: number, nB = n): Promise<void> {
  const before = [
    seqsOf(await call.b.report(), SSRC_A).length,
    seqsOf(await call.a.report(), SSRC_B).length,
  ] as const;
  const sa = call.a.send({
    to: call.toA.addr,
    port: call.toA.port,
    count: n,
    intervalMs: 10,
    ssrc: SSRC_A,
    firstSeq,
  });
  const sb = call.b.send({
    to: call.toB.addr,
    port: call.toB.port,
    count: nB,
    intervalMs: 10,
    ssrc: SSRC_B,
    firstSeq,
  });
  await sa.done;
  await sb.done;
  await received(call.b, SSRC_A, before[0] + n);
  await received(call.a, SSRC_B, before[1] + nB);
}

// ---------------------------------------------------------------------------------------------
// What the daemon says (Iv, Q) and what the table holds

interface KernelInfo {
  readonly path: string;
  readonly streams: number;
  readonly offloads: number;
  readonly withdrawals: number;
  readonly committed: number;
  readonly failed: number;
  /** By call-id: the session line's tag and its RTP and RTCP states. */
  readonly sessions: ReadonlyMap<string, { tag: string; rtp: string; rtcp: string }>;
  readonly text: string;
}

function parseIv(text: string): KernelInfo {
  const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  const sessions = new Map<string, { tag: string; rtp: string; rtcp: string }>();
  for (const m of text.matchAll(/^session (\S+) (\S+): rtp=(\S+) rtcp=(\S+)$/gm)) {
    sessions.set(m[1] ?? '', { tag: m[2] ?? '', rtp: m[3] ?? '', rtcp: m[4] ?? '' });
  }
  const tx = /^kernel transactions: ([0-9]+) committed, ([0-9]+) failed$/m.exec(text);
  return {
    path: /^kernel path: (.*)$/m.exec(text)?.[1] ?? '',
    streams: num(/^kernel streams: ([0-9]+)$/m),
    offloads: num(/^kernel offloads: ([0-9]+)$/m),
    withdrawals: num(/^kernel withdrawals: ([0-9]+)$/m),
    committed: Number(tx?.[1] ?? NaN),
    failed: Number(tx?.[2] ?? NaN),
    sessions,
    text,
  };
}

/** Polls `Iv` until the session of `callId` has its `component` in a state that `want` matches. */
async function waitState(
  d: NsDaemon,
  callId: string,
  want: { rtp?: RegExp; rtcp?: RegExp },
  ms = KERNEL_DEADLINE_MS,
): Promise<KernelInfo> {
  let last = '';
  return waitFor(
    () =>
      `Iv to show ${callId} as ${JSON.stringify(String(want.rtp ?? want.rtcp))}; last:\n${last}`,
    async () => {
      last = await d.command('Iv');
      const info = parseIv(last);
      const s = info.sessions.get(callId);
      if (s === undefined) return undefined;
      if (want.rtp !== undefined && !want.rtp.test(s.rtp)) return undefined;
      if (want.rtcp !== undefined && !want.rtcp.test(s.rtcp)) return undefined;
      return info;
    },
    ms,
  );
}

/** `Qv` as a record of numbers. */
async function query(d: NsDaemon, line: string): Promise<Record<string, number> | string> {
  const reply = await d.command(line);
  if (!reply.includes('=')) return reply;
  return Object.fromEntries(
    reply.split(' ').map((kv) => {
      const [k = '', v = ''] = kv.split('=');
      return [k, Number(v)];
    }),
  );
}

/** Polls `Qv ...` until the named counters have the wanted values; the last reply. */
async function waitQuery(
  d: NsDaemon,
  line: string,
  want: Record<string, number>,
): Promise<Record<string, number>> {
  let last: Record<string, number> | string = '';
  return waitFor(
    () => `${line} to show ${JSON.stringify(want)}; last: ${JSON.stringify(last)}`,
    async () => {
      last = await query(d, line);
      if (typeof last === 'string') return undefined;
      const got = last;
      return Object.entries(want).every(([k, v]) => got[k] === v) ? got : undefined;
    },
    KERNEL_DEADLINE_MS,
  );
}

const keyText = (key: readonly (string | number)[]): string => key.map(String).join(' . ');

/** The key of the kfwd element for packets from `src` to the relay's `dst`. */
function fwdKey(src: { address: string; port: number } | Endpoint, dst: Endpoint): string {
  const [addr, port] = 'address' in src ? [src.address, src.port] : [src.addr, src.port];
  return keyText([addr, port, dst.addr, dst.port]);
}

/** The elements of `map` by key text ({} when the map or table is missing). */
async function elements(ns: string, map: string): Promise<Map<string, MapElement>> {
  const list = (await nftMapElements(ns, TABLE, map)) ?? [];
  return new Map(list.map((e) => [keyText(e.key), e]));
}

/** Waits until `map` holds every key of `keys`; their elements. */
async function waitElements(
  ns: string,
  map: string,
  keys: readonly string[],
): Promise<Map<string, MapElement>> {
  let last = new Map<string, MapElement>();
  return waitFor(
    () => `${map} to hold ${keys.join(', ')}; holds: ${[...last.keys()].join(', ')}`,
    async () => {
      last = await elements(ns, map);
      return keys.every((k) => last.has(k)) ? last : undefined;
    },
    KERNEL_DEADLINE_MS,
  );
}

/** Waits until `map` holds none of `keys`. */
async function waitNoElements(ns: string, map: string, keys: readonly string[]): Promise<void> {
  let last = new Map<string, MapElement>();
  await waitFor(
    () => `${map} to lose ${keys.join(', ')}; holds: ${[...last.keys()].join(', ')}`,
    async () => {
      last = await elements(ns, map);
      return keys.some((k) => last.has(k)) ? undefined : true;
    },
    KERNEL_DEADLINE_MS,
  );
}

/** Elements per k* map of the table (undefined when the table is missing). */
async function kCounts(ns: string): Promise<Record<string, number> | undefined> {
  const maps = await nftTableMaps(ns, TABLE);
  if (maps === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const [name, list] of maps) if (name.startsWith('k')) out[name] = list.length;
  return out;
}

/** Waits until every k* map of the table is empty; their counts. */
async function waitKEmpty(ns: string): Promise<Record<string, number>> {
  let last: Record<string, number> | undefined;
  return waitFor(
    () => `every k* map to be empty; last: ${JSON.stringify(last)}`,
    async () => {
      last = await kCounts(ns);
      if (last === undefined) return undefined;
      const counts = last;
      return Object.values(counts).every((n) => n === 0) ? counts : undefined;
    },
    KERNEL_DEADLINE_MS,
  );
}

/** Packets of an element (0 when absent). */
const packetsOf = (m: Map<string, MapElement>, key: string): number => m.get(key)?.packets ?? 0;

/** Element `i` of `list`, which must be there. */
function nth(list: readonly string[], i: number): string {
  const v = list[i];
  if (v === undefined) throw new Error(`no element ${String(i)} in ${list.join(', ')}`);
  return v;
}

/** 1..n */
const upTo = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);

/** The daemon's `session ended` lines. */
const ended = (d: NsDaemon) => d.logs().filter((l) => l.msg === 'session ended');

/** Log lines that say something about the kernel path. */
const kernelLines = (d: NsDaemon) => d.logs().filter((l) => /kernel/i.test(l.msg));

// ---------------------------------------------------------------------------------------------

// Three namespaces, a dozen daemons and a wait through a re-INVITE window take a few minutes on
// a loaded two-core host.
t.setTimeout(900_000);

const skip = netnsSkipReason(['nft', 'setpriv', 'unshare', 'sysctl']);
if (skip !== false) t.comment(`skipping the kernel path tests: ${skip}`);

t.test('kernel fast path through network namespaces', { skip }, async (t) => {
  const hostTables = await run('nft', ['list', 'tables']);
  const hostForward = await run('sysctl', [
    '-n',
    'net.ipv4.ip_forward',
    'net.ipv6.conf.all.forwarding',
  ]);
  const topo: Topology = await createTopology(t, 'kpath');
  const R4 = topo.relayCallerSide.v4[0];
  const R4B = topo.relayCalleeSide.v4[0];
  const R6 = topo.relayCallerSide.v6[0];
  const A4 = topo.caller.v4[0];
  const relay = topo.relay;
  const input = await inputCounter(t, relay, [R4, R4B, R6], MIN_PORT, MAX_PORT);

  /** A daemon on the relay with `args`, ready (V answers); stopped at the end of `t`. */
  async function daemon(t: Test, args: readonly string[]): Promise<NsDaemon> {
    const d = startNsDaemon(t, relay, [...PORTS, ...args]);
    t.equal(await d.command('V'), '20040107', 'the daemon answers');
    return d;
  }

  /** A caller and a callee party on `port`s of their main addresses (or `family` 6's). */
  async function parties(
    t: Test,
    aPort: number,
    bPort: number,
    family: 4 | 6 = 4,
  ): Promise<[Party, Party]> {
    const pick = (s: Topology['caller']) => (family === 6 ? s.v6[0] : s.v4[0]);
    return Promise.all([
      startParty(t, topo.caller.ns, pick(topo.caller), aPort),
      startParty(t, topo.callee.ns, pick(topo.callee), bPort),
    ]);
  }

  /**
   * A call relayed in the kernel both ways: set up, latched, `rtp=kernel` in Iv and both kfwd
   * elements in `map`. Returns the call and the two keys (caller's, callee's).
   */
  async function kernelCall(
    t: Test,
    d: NsDaemon,
    id: string,
    a: Party,
    b: Party,
    o: CallOptions & { map?: 'kfwd4' | 'kfwd6' },
  ): Promise<{ call: Call; keys: [string, string]; info: KernelInfo }> {
    const call = await setUpCall(t, d, id, a, b, o);
    await latch(call);
    const info = await waitState(d, id, { rtp: /^kernel$/ });
    const keys: [string, string] = [fwdKey(a, call.toA), fwdKey(b, call.toB)];
    await waitElements(relay, o.map ?? 'kfwd4', keys);
    return { call, keys, info };
  }

  /**
   * A kernelCall on R4 whose caller then streams RTP (20 ms apart, at most 20 s of it, from
   * sequence 2), once the kernel has forwarded 20 of its packets.
   */
  async function streamingKernelCall(
    t: Test,
    d: NsDaemon,
    id: string,
    a: Party,
    b: Party,
  ): Promise<{ call: Call; stream: ReturnType<Party['send']> }> {
    const { call, keys } = await kernelCall(t, d, id, a, b, { relay: R4 });
    const fwd0 = await elements(relay, 'kfwd4');
    const stream = a.send({
      to: call.toA.addr,
      port: call.toA.port,
      count: 1000,
      intervalMs: 20,
      ssrc: SSRC_A,
      firstSeq: 2,
    });
    await waitFor(`kernel-forwarded packets of ${id}`, async () =>
      packetsOf(await elements(relay, 'kfwd4'), keys[0]) - packetsOf(fwd0, keys[0]) >= 20
        ? true
        : undefined,
    );
    return { call, stream };
  }

  /**
   * The common body of the relaying subtests: after the kernel took the call, `n` packets each
   * way arrive complete, from the relay's ports, counted by the kfwd elements and never by the
   * relay's input; Q counts them.
   */
  async function relaysInKernel(
    t: Test,
    d: NsDaemon,
    call: Call,
    keys: readonly [string, string],
    map: 'kfwd4' | 'kfwd6',
  ): Promise<void> {
    const n = 50;
    const before = await elements(relay, map);
    const inputBefore = await input.read();
    await exchange(call, n, 2);
    const after = await elements(relay, map);
    const ra = await call.a.report();
    const rb = await call.b.report();
    const src = (e: Endpoint) =>
      (e.addr.includes(':') ? `[${e.addr}]` : e.addr) + `:${String(e.port)}`;
    t.same(rb.sources, { [src(call.toB)]: n + 1 }, "the callee hears the relay's port only");
    t.same(ra.sources, { [src(call.toA)]: n + 1 }, "the caller hears the relay's port only");
    t.same(seqsOf(rb, SSRC_A), upTo(n + 1), 'every packet of the caller, in order');
    t.same(seqsOf(ra, SSRC_B), upTo(n + 1), 'every packet of the callee, in order');
    t.equal(ra.bad + rb.bad, 0, 'headers and payloads intact');
    t.equal(
      packetsOf(after, keys[0]) - packetsOf(before, keys[0]),
      n,
      'caller -> callee in the kernel',
    );
    t.equal(
      packetsOf(after, keys[1]) - packetsOf(before, keys[1]),
      n,
      'callee -> caller in the kernel',
    );
    t.equal((await input.read()) - inputBefore, 0, "none reached the relay's sockets");
    await waitQuery(d, `Qv ${call.id} ${call.from} ${call.to}`, {
      npkts_ina: n + 1,
      npkts_ino: n + 1,
      nrelayed: 2 * (n + 1),
      ndropped: 0,
    });
    t.pass('Q counts the kernel-forwarded packets');
  }

  t.test('IPv4: both ways through the forward path with --kernel on', async (t) => {
    const d = await daemon(t, ['-l', R4, '--kernel', 'on']);
    const [a, b] = await parties(t, 6000, 7000);
    const { call, keys, info } = await kernelCall(t, d, 'v4', a, b, { relay: R4 });
    t.equal(info.path, 'on', 'kernel path: on');
    t.ok(info.streams >= 1, 'a stream component in the kernel');
    t.ok(info.offloads >= 1, 'an offload counted');
    t.ok(info.committed >= 1, 'a committed transaction');
    t.equal(info.failed, 0, 'no failed transaction');
    t.match(info.sessions.get('v4'), { tag: call.from, rtp: 'kernel' });
    await relaysInKernel(t, d, call, keys, 'kfwd4');
    t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0');
    t.equal(await d.stop(), 0, 'clean exit');
  });

  t.test('IPv6: an IPv6-only relay (-6)', async (t) => {
    const d = await daemon(t, ['-6', R6, '--kernel', 'on']);
    const [a, b] = await parties(t, 6100, 7100, 6);
    const { call, keys } = await kernelCall(t, d, 'v6', a, b, {
      u: 'U6',
      l: 'L6',
      relay: R6,
      map: 'kfwd6',
    });
    t.equal(call.toA.addr, R6, 'the relay answers with its IPv6 address');
    await relaysInKernel(t, d, call, keys, 'kfwd6');
    t.equal((await elements(relay, 'kfwd4')).size, 0, 'nothing in kfwd4');
    t.equal(await d.stop(), 0, 'clean exit');
  });

  t.test('bridge mode: the caller side and the callee side on two interfaces', async (t) => {
    const d = await daemon(t, ['-l', `${R4}/${R4B}`, '--kernel', 'on']);
    const [a, b] = await parties(t, 6200, 7200);
    // Symmetric legs (s): bridge mode's legs are asymmetric by default.
    const { call, keys } = await kernelCall(t, d, 'bridge', a, b, {
      u: 'Usie',
      l: 'Lsei',
      relay: R4,
    });
    t.equal(call.toB.addr, R4B, "the callee is given the callee side's address");
    t.equal(call.toA.addr, R4, "the caller is given the caller side's address");
    await relaysInKernel(t, d, call, keys, 'kfwd4');

    // Asymmetric legs stay in userspace, and are relayed there.
    const [a2, b2] = await parties(t, 6210, 7210);
    const asym = await setUpCall(t, d, 'bridge-asym', a2, b2, { u: 'Uie', l: 'Lei', relay: R4 });
    await latch(asym);
    await waitState(d, asym.id, { rtp: /^userspace\(asymmetric\)$/ });
    t.pass('Iv: rtp=userspace(asymmetric)');
    await exchange(asym, 10, 2);
    const fwd = await elements(relay, 'kfwd4');
    t.notOk(fwd.has(fwdKey(a2, asym.toA)) || fwd.has(fwdKey(b2, asym.toB)), 'no kernel element');
    t.equal(await d.stop(), 0, 'clean exit');
  });

  t.test(
    'counters: Q, the metrics and the session-end line count kernel-forwarded packets',
    async (t) => {
      const d = await daemon(t, [
        '-l',
        R4,
        '--kernel',
        'on',
        '--http',
        `127.0.0.1:${String(HTTP_PORT)}`,
      ]);
      const [a, b] = await parties(t, 6300, 7300);
      const { call, keys } = await kernelCall(t, d, 'counters', a, b, { relay: R4 });
      // Different counts each way, so that a swap shows.
      const n1 = 30;
      const n2 = 20;
      const fwd0 = await elements(relay, 'kfwd4');
      await exchange(call, n1, 2, n2);
      const fwd1 = await elements(relay, 'kfwd4');
      t.equal(packetsOf(fwd1, keys[0]) - packetsOf(fwd0, keys[0]), n1, 'caller side in the kernel');
      t.equal(packetsOf(fwd1, keys[1]) - packetsOf(fwd0, keys[1]), n2, 'callee side in the kernel');
      await waitQuery(d, `Qv ${call.id} ${call.from} ${call.to}`, {
        npkts_ina: 1 + n1,
        npkts_ino: 1 + n2,
        nrelayed: 2 + n1 + n2,
        ndropped: 0,
      });
      t.pass('Q from the caller: ina, ino, relayed');
      await waitQuery(d, `Qv ${call.id} ${call.to} ${call.from}`, {
        npkts_ina: 1 + n2,
        npkts_ino: 1 + n1,
      });
      t.pass('Q from the callee: the other way round');
      const g = await d.command('Gv npkts_relayed');
      t.comment(`G after kernel forwarding: ${g}`);
      // The metrics split the same packets by path (docs/metrics.md).
      const m = parseSamples(await scrapeIn(relay, HTTP_PORT));
      t.equal(m.get('rtpproxy_packets_relayed_total{path="kernel"}'), n1 + n2, 'metrics: kernel');
      t.equal(m.get('rtpproxy_packets_relayed_total{path="userspace"}'), 2, 'metrics: latching');
      t.equal(m.get('rtpproxy_packets_received_total{path="kernel"}'), n1 + n2);
      t.equal(m.get('rtpproxy_bytes_received_total{path="kernel"}'), (n1 + n2) * 172);
      t.equal(m.get('rtpproxy_bytes_received_total{path="userspace"}'), 2 * 172);
      t.equal(m.get('rtpproxy_streams_active{path="kernel"}'), 1, 'RTP in the kernel');
      t.equal(m.get('rtpproxy_streams_active{path="userspace"}'), 1, 'RTCP, no packet yet');
      t.equal(m.get('rtpproxy_kernel_path'), 1);
      t.equal(m.get('rtpproxy_kernel_offloads_total'), 1);
      t.equal(m.get('rtpproxy_kernel_transactions_total{result="failed"}'), 0);

      // Five more each way, then D at once: the end line has them all.
      // (Q read and reset the counters: the relay's input shows that these go through the kernel.)
      const inputBefore = await input.read();
      await exchange(call, 5, 2 + n1, 5);
      t.equal((await input.read()) - inputBefore, 0, 'the last five in the kernel');
      t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0');
      const line = await waitFor('the session-end line', () => ended(d)[0]);
      t.match(line, {
        callId: call.id,
        reason: 'delete',
        complete: true,
        callerPkts: 6 + n1,
        calleePkts: 6 + n2,
        callerBytes: (6 + n1) * 172,
        calleeBytes: (6 + n2) * 172,
        relayed: 12 + n1 + n2,
        dropped: 0,
      });
      t.equal(await d.stop(), 0, 'clean exit');
    },
  );

  t.test('expiry: -T 3 keeps a kernel-forwarded call that sends, ends a silent one', async (t) => {
    const d = await daemon(t, ['-l', R4, '--kernel', 'on', '-T', '3']);
    const [a, b] = await parties(t, 6400, 7400);
    const call = await setUpCall(t, d, 'expiry', a, b, { relay: R4 });
    // 20 ms apart, at most 60 s of it.
    const stream = (p: Party, to: Endpoint, ssrc: number) =>
      p.send({ to: to.addr, port: to.port, count: 3000, intervalMs: 20, ssrc });
    const sa = stream(a, call.toA, SSRC_A);
    const sb = stream(b, call.toB, SSRC_B);
    const keys = [fwdKey(a, call.toA), fwdKey(b, call.toB)] as const;
    await waitState(d, call.id, { rtp: /^kernel$/ });
    await waitElements(relay, 'kfwd4', keys);
    const counted = async (): Promise<[number, number]> => {
      const q = await d.command(`Qv ${call.id} ${call.from} ${call.to} npkts_ina npkts_ino`);
      const m = /npkts_ina=(\d+) npkts_ino=(\d+)/.exec(q);
      return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)];
    };
    const q0 = await counted();
    const input0 = await input.read();
    // Three TTLs and more in the kernel: the call lives on.
    const until = Date.now() + 10_000;
    for (let i = 0; i < 100 && Date.now() < until; i += 1) {
      const q = await d.command(`Q ${call.id} ${call.from} ${call.to}`);
      if (q === 'E50') break;
      await sleep(500);
    }
    t.not(await d.command(`Q ${call.id} ${call.from} ${call.to}`), 'E50', 'alive after 10 s');
    // Q reads (and resets) the kernel's counters: it counts what the relay's sockets never saw.
    const q1 = await counted();
    t.ok(q1[0] - q0[0] > 100, 'the caller side counted');
    t.ok(q1[1] - q0[1] > 100, 'the callee side counted');
    t.equal((await input.read()) - input0, 0, "none reached the relay's sockets");
    t.match(parseIv(await d.command('Iv')).sessions.get(call.id), { rtp: 'kernel' });
    const sentA = (await sa.stop()).sent;
    const sentB = (await sb.stop()).sent;
    t.equal(ended(d).length, 0, 'not ended while sending');
    await waitFor(
      'the silent call to expire',
      async () =>
        (await d.command(`Q ${call.id} ${call.from} ${call.to}`)) === 'E50' ? true : undefined,
      KERNEL_DEADLINE_MS,
    );
    // The line comes once the session's elements are gone, a transaction after the lookup fails.
    const line = await waitFor('the session-end line', () => ended(d)[0]);
    t.match(line, { callId: call.id, reason: 'timeout' }, 'ended by the idle timeout');
    await waitKEmpty(relay);
    t.pass('its elements are gone');
    t.equal(seqsOf(await b.report(), SSRC_A).length, sentA, 'the callee got all the caller sent');
    t.equal(seqsOf(await a.report(), SSRC_B).length, sentB, 'the caller got all the callee sent');
    t.equal(await d.stop(), 0, 'clean exit');
  });

  t.test('re-INVITE: the callee moves to a new address', async (t) => {
    const d = await daemon(t, ['-l', R4, '--kernel', 'on']);
    const [a, b] = await parties(t, 6500, 7500);
    const moved = await startParty(t, topo.callee.ns, nth(topo.callee.v4, 1), 7502);
    const { call, keys } = await kernelCall(t, d, 'reinvite', a, b, { relay: R4 });
    await exchange(call, 10, 2);

    // The re-INVITE: the caller's offer again, the callee's answer with its new address.
    t.equal(
      endpointOf(
        await d.command(`U ${call.id} ${A4} ${String(a.port)} ${call.from} ${call.to}`),
        R4,
      ).port,
      call.toB.port,
      'U keeps the port',
    );
    t.equal(
      endpointOf(
        await d.command(
          `L ${call.id} ${moved.address} ${String(moved.port)} ${call.from} ${call.to}`,
        ),
        R4,
      ).port,
      call.toA.port,
      'L keeps the port',
    );
    await waitState(d, call.id, { rtp: /^userspace\(relatch\)$/ }, 5000);
    t.pass('Iv: rtp=userspace(relatch) in the window');
    const oldBefore = seqsOf(await b.report(), SSRC_A).length;
    const n = 50;
    const sa = a.send({
      to: call.toA.addr,
      port: call.toA.port,
      count: n,
      ssrc: SSRC_A,
      firstSeq: 12,
    });
    const sm = moved.send({
      to: call.toB.addr,
      port: call.toB.port,
      count: n,
      ssrc: SSRC_B,
      firstSeq: 12,
    });
    await sa.done;
    await sm.done;
    await received(a, SSRC_B, 11 + n);
    // Whatever arrives within the deadline; what is missing then is lost.
    await waitFor("the caller's packets at either address", async () => {
      const atNew = seqsOf(await moved.report(), SSRC_A).length;
      const atOld = seqsOf(await b.report(), SSRC_A).length - oldBefore;
      return atNew + atOld >= n ? true : undefined;
    }).catch(() => undefined);
    const newSeqs = seqsOf(await moved.report(), SSRC_A);
    const oldSeqs = seqsOf(await b.report(), SSRC_A).slice(oldBefore);
    t.equal(newSeqs.length + oldSeqs.length, n, 'no packet of the caller lost in the switch');
    t.ok(
      newSeqs.length >= n - 5,
      `at most the first packets go to the old address (${String(oldSeqs.length)})`,
    );
    t.same(
      newSeqs,
      upTo(newSeqs.length, 12 + n - newSeqs.length),
      'the new address gets a gapless tail',
    );
    t.same(
      (await moved.report()).sources,
      { [`${R4}:${String(call.toB.port)}`]: newSeqs.length },
      'from the relay',
    );
    t.same(
      seqsOf(await a.report(), SSRC_B).slice(11),
      upTo(n, 12),
      'the caller hears the new address',
    );

    // After the window the kernel takes the call again, with the new address.
    await waitState(d, call.id, { rtp: /^kernel$/ }, 25_000);
    const newKey = fwdKey(moved, call.toB);
    const fwd0 = await waitElements(relay, 'kfwd4', [keys[0], newKey]);
    t.notOk(fwd0.has(keys[1]), "the old address's element is gone");
    const beforeA = seqsOf(await a.report(), SSRC_B).length;
    const beforeM = seqsOf(await moved.report(), SSRC_A).length;
    await moved.send({
      to: call.toB.addr,
      port: call.toB.port,
      count: 20,
      intervalMs: 10,
      ssrc: SSRC_B,
      firstSeq: 100,
    }).done;
    await a.send({
      to: call.toA.addr,
      port: call.toA.port,
      count: 20,
      intervalMs: 10,
      ssrc: SSRC_A,
      firstSeq: 100,
    }).done;
    await received(a, SSRC_B, beforeA + 20);
    await received(moved, SSRC_A, beforeM + 20);
    const fwd1 = await elements(relay, 'kfwd4');
    t.equal(packetsOf(fwd1, newKey) - packetsOf(fwd0, newKey), 20, 'the new address in the kernel');
    t.equal(packetsOf(fwd1, keys[0]) - packetsOf(fwd0, keys[0]), 20, 'the caller in the kernel');
    t.equal(await d.stop(), 0, 'clean exit');
  });

  t.test('R in mid-call: every packet after the reply is recorded, none lost', async (t) => {
    const dir = tempDir(t, 'kpath-rec');
    const d = await daemon(t, ['-l', R4, '--kernel', 'on', '-r', dir]);
    const [a, b] = await parties(t, 6600, 7600);
    const { call, stream } = await streamingKernelCall(t, d, 'record', a, b);
    t.equal(await d.command(`R ${call.id} ${call.from} ${call.to}`), '0', 'R');
    const replied = Date.now();
    await waitState(d, call.id, { rtp: /^userspace\(recording\)$/ }, 5000);
    t.pass('Iv: rtp=userspace(recording)');
    await sleep(1000);
    const result = await stream.stop();
    const all = upTo(result.sent + 1);
    const rb = await received(b, SSRC_A, result.sent + 1);
    t.same(seqsOf(rb, SSRC_A), all, 'the callee got every packet, in order');
    t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0');

    const file = path.join(dir, `${call.id}=${call.from}.o.rtp`);
    await waitFor(file, () => (existsSync(file) ? true : undefined));
    const recorded = new Set<number>();
    const data = readFileSync(file);
    for (let at = 0, i = 0; at < data.length && i < 100_000; i += 1) {
      const h = readAdhocHeader(data, at);
      if (h === undefined) throw new Error(`bad ad-hoc record at ${String(at)}`);
      recorded.add(data.readUInt16BE(h.packetOffset + 2));
      at = h.packetOffset + h.length;
    }
    const after = result.sentAt.flatMap((time, i) => (time > replied ? [2 + i] : []));
    t.ok(after.length >= 20, `packets sent after R's reply: ${String(after.length)}`);
    t.same(
      after.filter((s) => !recorded.has(s)),
      [],
      'every packet sent after the reply is in the recording',
    );
    t.equal(await d.stop(), 0, 'clean exit');
  });

  t.test(
    'ng block media in mid-call: out of the kernel, nothing passes until unblock',
    async (t) => {
      const ngPort = 2223;
      const d = await daemon(t, [
        ...['-l', R4, '--kernel', 'on'],
        ...['-s', `ng:udp:127.0.0.1:${String(ngPort)}`],
      ]);
      const [a, b] = await parties(t, 6650, 7650);
      const { call, stream } = await streamingKernelCall(t, d, 'block', a, b);
      const party = { 'call-id': call.id, 'from-tag': call.from };
      t.match(
        await ngIn(relay, ngPort, { ...party, command: 'block media' }),
        /6:result2:ok/,
        'block media: ok',
      );
      const blocked = Date.now();
      await waitState(d, call.id, { rtp: /^userspace\(blocked\)$/ }, 5000);
      t.pass('Iv: rtp=userspace(blocked)');
      await sleep(600);
      const unblocking = Date.now();
      t.match(
        await ngIn(relay, ngPort, { ...party, command: 'unblock media' }),
        /6:result2:ok/,
        'unblock media: ok',
      );
      const unblocked = Date.now();
      await waitState(d, call.id, { rtp: /^kernel$/ });
      t.pass('unblocked: back in the kernel');
      await sleep(600);
      const result = await stream.stop();
      const last = result.firstSeq + result.sent - 1;
      const rb = await waitFor("the caller's last packet at the callee", async () => {
        const r = await b.report();
        return seqsOf(r, SSRC_A).includes(last) ? r : undefined;
      });
      const got = new Set(seqsOf(rb, SSRC_A));
      const sentWhen = (range: (at: number) => boolean): number[] =>
        result.sentAt.flatMap((at, i) => (range(at) ? [result.firstSeq + i] : []));
      const whileBlocked = sentWhen((at) => at > blocked && at < unblocking);
      t.ok(whileBlocked.length >= 10, `packets sent while blocked: ${String(whileBlocked.length)}`);
      t.same(
        whileBlocked.filter((seq) => got.has(seq)),
        [],
        'none of them reached the callee',
      );
      const afterUnblock = sentWhen((at) => at > unblocked);
      t.ok(afterUnblock.length >= 10, `packets sent after unblock: ${String(afterUnblock.length)}`);
      t.same(
        afterUnblock.filter((seq) => !got.has(seq)),
        [],
        'every one of them reached the callee',
      );
      t.equal(await d.command(`D ${call.id} ${call.from} ${call.to}`), '0');
      t.equal(await d.stop(), 0, 'clean exit');
    },
  );

  t.test('a third party gets nothing through', async (t) => {
    const d = await daemon(t, ['-l', R4, '--kernel', 'on']);
    const [a, b] = await parties(t, 6700, 7700);
    // Same port as the caller, another address of the caller's host.
    const spoof = await startParty(t, topo.caller.ns, nth(topo.caller.v4, 1), 6700);
    const call = await setUpCall(t, d, 'spoof', a, b, { relay: R4 });
    const SSRC_X = 0x66666666;
    const SSRC_Y = 0x77777777;
    const attack = async (count: number, firstSeq: number) => {
      await spoof.send({
        to: call.toA.addr,
        port: call.toA.port,
        count,
        intervalMs: 5,
        ssrc: SSRC_X,
        firstSeq,
      }).done;
      await spoof.send({
        to: call.toB.addr,
        port: call.toB.port,
        count,
        intervalMs: 5,
        ssrc: SSRC_Y,
        firstSeq,
      }).done;
    };
    // Before the parties have sent: while latching.
    await attack(10, 1);
    await latch(call);
    await waitState(d, call.id, { rtp: /^kernel$/ });
    await waitElements(relay, 'kfwd4', [fwdKey(a, call.toA), fwdKey(b, call.toB)]);
    // In the kernel: the third party's packets match no element.
    await attack(30, 11);
    await exchange(call, 30, 2);
    const rb = await b.report();
    const ra = await a.report();
    t.equal(seqsOf(rb, SSRC_X).length, 0, 'the callee got none of its packets');
    t.equal(seqsOf(ra, SSRC_Y).length, 0, 'the caller got none of its packets');
    t.same(seqsOf(rb, SSRC_A), upTo(31), "the caller's packets all arrive");
    const fwd = await elements(relay, 'kfwd4');
    t.notOk(
      [...fwd.keys()].some((k) => k.startsWith(`${spoof.address} `)),
      'no element for the third party',
    );
    t.match(parseIv(await d.command('Iv')).sessions.get(call.id), { rtp: 'kernel' });
    t.equal(await d.stop(), 0, 'clean exit');
  });

  t.test('D, X and the exit remove every element', async (t) => {
    const d = await daemon(t, ['-l', R4, '--kernel', 'on']);
    const [a1, b1] = await parties(t, 6800, 7800);
    const [a1c, b1c] = await parties(t, 6801, 7801);
    const [a2, b2] = await parties(t, 6810, 7810);
    const c1 = await setUpCall(t, d, 'del1', a1, b1, { relay: R4 });
    await latch(c1, { a: a1c, b: b1c });
    const rtcpTo = (e: Endpoint): Endpoint => ({ addr: e.addr, port: e.port + 1 });
    const keys1 = [
      fwdKey(a1, c1.toA),
      fwdKey(b1, c1.toB),
      fwdKey(a1c, rtcpTo(c1.toA)),
      fwdKey(b1c, rtcpTo(c1.toB)),
    ];
    await waitState(d, c1.id, { rtp: /^kernel$/, rtcp: /^kernel$/ });
    t.pass('Iv: rtp=kernel rtcp=kernel');
    await waitElements(relay, 'kfwd4', keys1);
    const counts1 = (await kCounts(relay)) ?? {};
    const { keys: keys2 } = await kernelCall(t, d, 'del2', a2, b2, { relay: R4 });
    await waitElements(relay, 'kfwd4', [...keys1, ...keys2]);
    const counts = await kCounts(relay);
    for (const name of K_MAPS) t.ok(counts?.[name] !== undefined, `the table has map ${name}`);
    t.ok((counts?.['kfwd4'] ?? 0) >= 6, 'kfwd4: RTP and RTCP of call 1, RTP of call 2');

    t.equal(await d.command(`D ${c1.id} ${c1.from} ${c1.to}`), '0', 'D');
    await waitNoElements(relay, 'kfwd4', keys1);
    t.pass("the deleted call's elements are gone");
    t.ok((await elements(relay, 'kfwd4')).has(keys2[0]), "the other call's stay");
    // Every map holds what call 2 added to it, and nothing of call 1's.
    const left = Object.fromEntries(
      Object.entries(counts ?? {}).map(([name, n]) => [name, n - (counts1[name] ?? 0)]),
    );
    let now: Record<string, number> | undefined;
    await waitFor(
      () => `the k* maps to hold ${JSON.stringify(left)}; hold ${JSON.stringify(now)}`,
      async () => {
        now = await kCounts(relay);
        return JSON.stringify(now) === JSON.stringify(left) ? true : undefined;
      },
      KERNEL_DEADLINE_MS,
    ).catch(() => undefined);
    t.same(now, left, "every map lost the deleted call's elements, and only those");
    // Nothing stale forwards the deleted call.
    const before = seqsOf(await b1.report(), SSRC_A).length;
    await a1.send({
      to: c1.toA.addr,
      port: c1.toA.port,
      count: 5,
      intervalMs: 10,
      ssrc: SSRC_A,
      firstSeq: 50,
    }).done;
    await sleep(300);
    t.equal(seqsOf(await b1.report(), SSRC_A).length, before, 'the deleted call is not relayed');

    t.equal(await d.command('X'), '0', 'X');
    await waitKEmpty(relay);
    t.pass('every k* map is empty');
    const info = parseIv(await d.command('Iv'));
    t.equal(info.streams, 0, 'kernel streams: 0');
    t.comment(
      `after X: ${String(info.offloads)} offloads, ${String(info.withdrawals)} withdrawals`,
    );
    t.equal(await d.stop(), 0, 'clean exit');
    t.notOk((await nftTables(relay)).includes(`inet ${TABLE}`), 'the table is gone');
  });

  t.test("a crashed daemon's table is replaced at the next start", async (t) => {
    const d1 = await daemon(t, ['-l', R4, '--kernel', 'on']);
    const [a, b] = await parties(t, 6900, 7900);
    const { call, keys } = await kernelCall(t, d1, 'crash', a, b, { relay: R4 });
    d1.kill('SIGKILL');
    t.equal(await d1.exited, 137, 'killed');
    t.ok((await elements(relay, 'kfwd4')).has(keys[0]), 'the stale elements are still there');

    const d2 = await daemon(t, ['-l', R4, '--kernel', 'on']);
    const empty = await waitKEmpty(relay);
    t.ok(Object.keys(empty).includes('kfwd4'), 'the new table has empty k* maps');
    const before = seqsOf(await b.report(), SSRC_A).length;
    await a.send({
      to: call.toA.addr,
      port: call.toA.port,
      count: 5,
      intervalMs: 10,
      ssrc: SSRC_A,
      firstSeq: 50,
    }).done;
    await sleep(300);
    t.equal(seqsOf(await b.report(), SSRC_A).length, before, 'the dead call is not forwarded');
    t.equal(await d2.stop(), 0, 'clean exit');
  });

  t.test('fallbacks: auto relays in userspace and says why, on refuses to start', async (t) => {
    /** `--kernel auto` under `wrap`/`env`: starts, one line with the reason, userspace relay. */
    async function autoFallback(
      t: Test,
      why: RegExp | undefined,
      ports: [number, number],
      wrap: readonly string[] = [],
      env: Record<string, string> = {},
      extra: readonly string[] = [],
    ): Promise<void> {
      const d = startNsDaemon(t, relay, [...PORTS, '-l', R4, '--kernel', 'auto', ...extra], {
        wrap,
        env,
      });
      t.equal(await d.command('V'), '20040107', 'starts');
      const [a, b] = await parties(t, ...ports);
      const call = await setUpCall(t, d, `fallback-${String(ports[0])}`, a, b, { relay: R4 });
      await latch(call);
      await sleep(2500);
      await exchange(call, 20, 2);
      const info = parseIv(await d.command('Iv'));
      t.match(info.path, /^off \(.+\)$/, `Iv: ${info.path}`);
      t.match(info.sessions.get(call.id), { rtp: /^userspace/ }, 'the call is in userspace');
      t.same(seqsOf(await b.report(), SSRC_A), upTo(21), 'relayed in userspace');
      const lines = kernelLines(d);
      if (why === undefined) {
        t.ok(lines.length <= 1, 'at most one log line about the kernel path');
      } else {
        t.equal(lines.length, 1, 'one log line about the kernel path');
        t.match(JSON.stringify(lines[0]), why, 'it says why');
      }
      t.equal((await elements(relay, 'kfwd4')).size, 0, 'no kernel element');
      t.equal(await d.stop(), 0, 'clean exit');
    }

    /** `--kernel on` under `wrap`/`env`: exits non-zero, saying why on stderr. */
    async function onRefuses(
      t: Test,
      why: RegExp,
      wrap: readonly string[] = [],
      env: Record<string, string> = {},
    ): Promise<void> {
      const d = startNsDaemon(t, relay, [...PORTS, '-l', R4, '--kernel', 'on'], { wrap, env });
      const gone = await waitFor('the refusal', () => (d.gone() ? true : undefined)).catch(
        () => false,
      );
      if (!gone) {
        t.fail(`--kernel on started: ${parseIv(await d.command('Iv')).path}`);
        await d.stop();
        return;
      }
      const status = await d.exited;
      t.not(status, 0, `--kernel on exits with ${String(status)}`);
      t.match(d.stderr(), why, 'and says why');
    }

    t.test('no CAP_NET_ADMIN', async (t) => {
      const noNetAdmin = ['setpriv', '--inh-caps=-all', '--bounding-set=-net_admin'];
      await autoFallback(t, /CAP_NET_ADMIN/, [6950, 7950], noNetAdmin);
      await onRefuses(t, /CAP_NET_ADMIN/, noNetAdmin);
    });

    t.test('no nft binary', async (t) => {
      // A mount namespace of the daemon's own, where every nft it could find is an empty file.
      const dir = tempDir(t, 'kpath-nonft');
      const empty = path.join(dir, 'nft');
      writeFileSync(empty, '', { mode: 0o644 });
      const path_ = '/usr/local/bin:/usr/bin:/bin';
      const hidden = ['/usr/sbin/nft', '/sbin/nft', ...path_.split(':').map((p) => `${p}/nft`)];
      const mounts = hidden
        .map((f) => `if [ -e ${f} ]; then mount --bind ${empty} ${f} || exit 99; fi`)
        .join('; ');
      const wrap = [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `${mounts}; exec "$@"`,
        'sh',
      ];
      const probe = await runIn(relay, wrap[0] ?? 'unshare', [
        ...wrap.slice(1),
        'sh',
        '-c',
        `for d in ${path_.split(':').join(' ')} /usr/sbin /sbin; do [ -x $d/nft ] && echo $d; done; true`,
      ]).catch((err: unknown) => `failed: ${String(err)}`);
      if (probe.trim() !== '') {
        t.comment(`nft cannot be hidden here (${probe.trim()}): only CAP_NET_ADMIN is tested`);
        return;
      }
      await autoFallback(t, /nft/, [6960, 7960], wrap, { PATH: path_ });
      await onRefuses(t, /nft/, wrap, { PATH: path_ });
    });

    t.test('forwarding off in the relay namespace', async (t) => {
      const sysctl = (setting: string) => runIn(relay, 'sysctl', ['-q', '-w', setting]);
      t.teardown(async () => {
        await sysctl('net.ipv4.ip_forward=1');
        await sysctl('net.ipv6.conf.all.forwarding=1');
      });
      await sysctl('net.ipv4.ip_forward=0');
      await sysctl('net.ipv6.conf.all.forwarding=0');
      await autoFallback(t, /forward/i, [6970, 7970]);
      await onRefuses(t, /forward/i);

      // IPv6 forwards, IPv4 does not: the daemon starts, and IPv4 streams stay in userspace.
      await sysctl('net.ipv6.conf.all.forwarding=1');
      const d = await daemon(t, ['-l', R4, '--kernel', 'on']);
      const [a, b] = await parties(t, 6975, 7975);
      const call = await setUpCall(t, d, 'v4-no-forwarding', a, b, { relay: R4 });
      await latch(call);
      await waitState(d, call.id, { rtp: /^userspace\(forwarding\)$/ });
      t.pass('Iv: rtp=userspace(forwarding)');
      await exchange(call, 10, 2);
      t.equal((await elements(relay, 'kfwd4')).size, 0, 'no kernel element');
      t.equal(await d.stop(), 0, 'clean exit');
    });

    t.test('--nft off: no table, no kernel path', async (t) => {
      // Whatever an earlier failure left behind.
      await nftIn(relay, ['delete', 'table', 'inet', TABLE]);
      await autoFallback(t, undefined, [6980, 7980], [], {}, ['--nft', 'off']);
      t.notOk((await nftTables(relay)).includes(`inet ${TABLE}`), 'no table');
    });
  });

  t.test("the host's own namespace is as it was", async (t) => {
    t.equal(await run('nft', ['list', 'tables']), hostTables, 'the same tables');
    t.equal(
      await run('sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']),
      hostForward,
      'the same forwarding settings',
    );
  });
});
