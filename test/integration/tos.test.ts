/**
 * TOS on the wire (`-t`, `S tos=N`, `Sr tos=N`, prompts) through the daemon's nftables table, in
 * network namespaces this test creates and deletes: the daemon runs in one (its control socket is
 * `stdio:`), the parties in another behind a veth pair (the caller's host of
 * test/helpers/netns.ts), and tcpdump there reads the TOS byte of what the relay sends. Also: a
 * stale table of the same name is replaced at start, the table goes at exit, `--nft off` creates
 * nothing, and without CAP_NET_ADMIN one line says TOS is not applied while the commands still
 * answer. Nothing here touches the host's own network namespace; the test checks that its table
 * list is the same afterwards.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import {
  collectLines as lines,
  createTopology,
  netnsSkipReason,
  nftIn,
  portOf,
  run,
  startNsDaemon,
  waitFor,
  type NsDaemon,
} from '../helpers/netns.ts';
import { tempDir } from '../helpers/tmp.ts';

/** The relay's address towards the parties, and the parties' (test/helpers/netns.ts). */
let RELAY = '';
let PARTY = '';
/** The table of an instance whose first control socket is `stdio:`. */
const TABLE = 'rtpproxy_stdio';

function skipReason(): string | false {
  return netnsSkipReason(['nft', 'tcpdump', 'setpriv']);
}

/**
 * The relay's namespace and the parties' (the caller's host of the helper's topology, behind a
 * veth pair), with the parties' interface.
 */
async function namespaces(t: Test): Promise<{ relay: string; party: string; veth: string }> {
  // No forwarding: the relay relays in userspace, as the TOS checks below expect.
  const topo = await createTopology(t, 'tos', { forwarding: false });
  RELAY = topo.relayCallerSide.v4[0];
  PARTY = topo.caller.v4[0];
  return { relay: topo.relay, party: topo.caller.ns, veth: topo.caller.dev };
}

function killAtTeardown(t: Test, child: ReturnType<typeof spawn>): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      resolve(code);
    });
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return exited;
}

/** The daemon in `ns`, controlled over `stdio:`; `wrap` goes before node (setpriv). */
function startDaemon(
  t: Test,
  ns: string,
  args: readonly string[],
  wrap: readonly string[] = [],
): NsDaemon {
  return startNsDaemon(
    t,
    ns,
    ['-l', RELAY, '-m', '40000', '-M', '40199', '--workers', '1', ...args],
    { wrap },
  );
}

/** The parties: UDP sockets on PARTY in their namespace, sending on request. */
function startParties(t: Test, ns: string, ports: readonly number[]) {
  const script = `
    const dgram = require('node:dgram');
    const rl = require('node:readline').createInterface({ input: process.stdin });
    const socks = new Map();
    let pending = ${String(ports.length)};
    for (const port of ${JSON.stringify(ports)}) {
      const s = dgram.createSocket('udp4');
      s.on('message', () => undefined);
      s.on('error', () => undefined);
      s.bind(port, '${PARTY}', () => { if (--pending === 0) console.log('ready'); });
      socks.set(port, s);
    }
    rl.on('line', (line) => {
      const [from, to, count] = line.split(' ').map(Number);
      const pkt = Buffer.alloc(32, 0x5a); pkt[0] = 0x80; pkt[1] = 0;
      for (let i = 0; i < count; i += 1) socks.get(from).send(pkt, to, '${RELAY}');
      console.log('sent');
    });`;
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, 'env', '-u', 'NODE_OPTIONS', process.execPath, '-e', script],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const out = lines(child.stdout);
  void killAtTeardown(t, child);
  let seen = 1;
  return {
    ready: waitFor('the parties', () => (out[0] === 'ready' ? true : undefined)),
    send: async (from: number, to: number, count = 3) => {
      child.stdin.write(`${String(from)} ${String(to)} ${String(count)}\n`);
      seen += 1;
      const want = seen;
      await waitFor('the parties to send', () => (out.length >= want ? true : undefined));
    },
  };
}

interface Seen {
  readonly tos: number;
  readonly sport: number;
  readonly dport: number;
  readonly length: number;
}

/** tcpdump -v on the parties' side of the veth: what the relay sent, with its TOS byte. */
async function startCapture(t: Test, ns: string, dev: string) {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-n', '-v', '-l', 'udp and src host ' + RELAY],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  const err = lines(child.stderr);
  void killAtTeardown(t, child);
  await waitFor('tcpdump', () => (err.some((l) => l.includes('listening on')) ? true : undefined));
  const packets = (): Seen[] => {
    const dots = (a: string) => a.replaceAll('.', '\\.');
    const re = new RegExp(
      `\\(tos (0x[0-9a-f]+),[^\\n]*\\)\\n\\s+${dots(RELAY)}\\.([0-9]+) > ${dots(PARTY)}\\.([0-9]+): UDP, length ([0-9]+)`,
      'g',
    );
    return [...text.matchAll(re)].map((m) => ({
      tos: Number(m[1]),
      sport: Number(m[2]),
      dport: Number(m[3]),
      length: Number(m[4]),
    }));
  };
  return {
    /** The first packets from `sport` to `dport` after `since` packets were seen. */
    expect: (since: number, sport: number, dport: number, length?: number) =>
      waitFor(`a packet ${String(sport)} -> ${String(dport)} (seen: ${text.slice(-300)})`, () =>
        packets()
          .slice(since)
          .find(
            (p) =>
              p.sport === sport &&
              p.dport === dport &&
              (length === undefined || p.length === length),
          ),
      ),
    count: () => packets().length,
  };
}

/** Waits until the table maps `port` to `dscp` (or holds no element for it, with undefined). */
async function waitElement(ns: string, port: number, dscp: number | undefined): Promise<void> {
  const key = `${RELAY} . ${String(port)}`;
  await waitFor(`the element of ${key}`, async () => {
    const map = await nftIn(ns, ['list', 'map', 'inet', TABLE, 'tos_addr']);
    const has = map.includes(`${key} : goto dscp_`);
    if (dscp === undefined) return has ? undefined : true;
    return map.includes(`${key} : goto dscp_${String(dscp)}`) ? true : undefined;
  });
}

// Namespaces, tcpdump and a few daemons take about a minute on a loaded two-core host.
t.setTimeout(300_000);

const skip = skipReason();
if (skip !== false) t.comment(`skipping the TOS tests: ${skip}`);

t.test('TOS reaches the wire through the nftables table', { skip }, async (t) => {
  const hostBefore = await run('nft', ['list', 'tables']);
  const { relay, party, veth } = await namespaces(t);
  const parties = startParties(t, party, [6000, 6002, 6004, 6006, 6010]);
  await parties.ready;
  const cap = await startCapture(t, party, veth);

  t.test('-t, S tos, Sr tos and prompts; stale table replaced, table removed', async (t) => {
    // A crashed instance of the same name left its table, with a chain of its own.
    await run('ip', ['netns', 'exec', relay, 'nft', 'add', 'table', 'inet', TABLE]);
    await run('ip', ['netns', 'exec', relay, 'nft', 'add', 'chain', 'inet', TABLE, 'leftover']);
    const dir = tempDir(t, 'tos');
    writeFileSync(path.join(dir, 'hello.0'), Buffer.alloc(160 * 5, 0xff));
    const d = startDaemon(t, relay, []);
    await waitFor('the table', () =>
      d.logs().find((l) => (l.msg === 'nftables table created' ? true : undefined)),
    );
    const table = await nftIn(relay, ['list', 'table', 'inet', TABLE]);
    t.notMatch(table, /leftover/, 'the stale table is gone');
    t.match(table, /chain tos_out/, 'ours replaced it');

    // Call 1: the default -t 184 (0xb8, DSCP 46) both ways.
    const toB = portOf(await d.command(`U c1 ${PARTY} 6000 ft1`));
    const toA = portOf(await d.command(`L c1 ${PARTY} 6002 ft1 tt1`));
    await waitElement(relay, toB, 46);
    await waitElement(relay, toA, 46);
    let since = cap.count();
    await parties.send(6000, toA);
    t.equal((await cap.expect(since, toB, 6002)).tos, 0xb8, 'relayed to B with -t');
    since = cap.count();
    await parties.send(6002, toB);
    t.equal((await cap.expect(since, toA, 6000)).tos, 0xb8, 'relayed to A with -t');

    // Call 2: S tos=32 on the L sets the stream towards the L's party (B2) only.
    const toB2 = portOf(await d.command(`U c2 ${PARTY} 6004 ft2`));
    const toA2 = portOf(await d.command(`L c2 ${PARTY} 6006 ft2 tt2 && S tos=32`));
    await waitElement(relay, toB2, 8);
    await waitElement(relay, toA2, 46);
    since = cap.count();
    await parties.send(6004, toA2);
    t.equal((await cap.expect(since, toB2, 6006)).tos, 0x20, 'S tos=32 towards B2');
    since = cap.count();
    await parties.send(6006, toB2);
    t.equal((await cap.expect(since, toA2, 6004)).tos, 0xb8, 'the other stream keeps -t');
    since = cap.count();
    await parties.send(6000, toA);
    t.equal((await cap.expect(since, toB, 6002)).tos, 0xb8, 'call 1 keeps -t');

    // Sr: the reverse stream (towards A2); the prompt played to A2 carries it too.
    t.equal(portOf(await d.command(`L c2 ${PARTY} 6006 ft2 tt2 && Sr tos=96`)), toA2);
    await waitElement(relay, toA2, 24);
    since = cap.count();
    t.equal(await d.command(`P c2 ${dir}/hello 0 ft2 tt2`), '0');
    // 10 ms of PCMU a packet: 80 bytes after the 12-byte RTP header.
    const prompt = await cap.expect(since, toA2, 6004, 92);
    t.equal(prompt.tos, 0x60, 'the prompt to A2 leaves with Sr tos=96');

    // A remote copy of what A sends leaves with the TOS of A's leg, as in the reference.
    const copyPort = portOf(await d.command(`Cp c1 udp:${PARTY}:6010 ft1 tt1`));
    await waitElement(relay, copyPort, 46);
    since = cap.count();
    await parties.send(6000, toA);
    t.equal((await cap.expect(since, copyPort, 6010)).tos, 0xb8, 'the remote copy carries -t');

    // D removes the session's elements; the exit removes the table.
    t.equal(await d.command('D c1 ft1 tt1'), '0');
    await waitElement(relay, toA, undefined);
    await waitElement(relay, toB, undefined);
    await waitElement(relay, copyPort, undefined);
    t.equal(await d.stop(), 0, 'clean exit');
    t.notMatch(await nftIn(relay, ['list', 'tables']), new RegExp(TABLE), 'the table is removed');
  });

  t.test('--nft off creates nothing', async (t) => {
    // Whatever an earlier failure left behind.
    await nftIn(relay, ['flush', 'ruleset']);
    const d = startDaemon(t, relay, ['--nft', 'off']);
    t.equal(await d.command('V'), '20040107');
    const port = portOf(await d.command(`U c3 ${PARTY} 6000 ft3 && S tos=32`));
    t.ok(port > 0, 'U with S tos answers');
    t.equal(
      d.logs().filter((l) => l.msg.startsWith('TOS is not applied')).length,
      1,
      'one line says TOS is not applied',
    );
    t.equal(await nftIn(relay, ['list', 'tables']), '', 'no table in the namespace');
    t.equal(await d.stop(), 0);
  });

  t.test('without CAP_NET_ADMIN: one line, and the commands answer', async (t) => {
    await nftIn(relay, ['flush', 'ruleset']);
    const noNetAdmin = ['setpriv', '--inh-caps=-all', '--bounding-set=-net_admin'];
    const d = startDaemon(t, relay, [], noNetAdmin);
    t.equal(await d.command('V'), '20040107');
    const toB = portOf(await d.command(`U c4 ${PARTY} 6000 ft4`));
    const toA = portOf(await d.command(`L c4 ${PARTY} 6002 ft4 tt4 && S tos=32`));
    t.ok(toA > 0 && toB > 0, 'U and L with S tos answer as the reference does');
    const lines = await waitFor('the log line', () => {
      const found = d.logs().filter((l) => l.msg.startsWith('TOS is not applied'));
      return found.length > 0 ? found : undefined;
    });
    t.equal(lines.length, 1, 'said once');
    t.match(lines[0], { reason: /CAP_NET_ADMIN/ });
    // Packets flow, with the kernel's default TOS.
    const since = cap.count();
    await parties.send(6000, toA);
    t.equal((await cap.expect(since, toB, 6002)).tos, 0, 'unmarked');
    t.equal(await nftIn(relay, ['list', 'tables']), '', 'no table in the namespace');
    t.equal(await d.stop(), 0);

    const on = startDaemon(t, relay, ['--nft', 'on'], noNetAdmin);
    t.equal(await on.exited, 1, '--nft on refuses to start');
  });

  t.test('the host namespace has no new table', async (t) => {
    t.equal(await run('nft', ['list', 'tables']), hostBefore);
  });
});
