/**
 * TOS on the wire (`-t`, `S tos=N`, `Sr tos=N`, prompts) through the daemon's nftables table, in
 * network namespaces this test creates and deletes: the daemon runs in one (its control socket is
 * `stdio:`), the parties in another behind a veth pair, and tcpdump there reads the TOS byte of
 * what the relay sends. Also: a stale table of the same name is replaced at start, the table goes
 * at exit, `--nft off` creates nothing, and without CAP_NET_ADMIN one line says TOS is not applied
 * while the commands still answer. Nothing here touches the host's own network namespace; the
 * test checks that its table list is the same afterwards.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { tempDir } from '../helpers/tmp.ts';

const execFileP = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/rtpproxy.js', import.meta.url));
const DEADLINE_MS = 15_000;
const RELAY = '10.77.0.1';
const PARTY = '10.77.0.2';
/** The table of an instance whose first control socket is `stdio:`. */
const TABLE = 'rtpproxy_stdio';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function skipReason(): string | false {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'not root: cannot create network namespaces';
  for (const cmd of ['ip', 'nft', 'tcpdump', 'setpriv']) {
    if (!have(cmd)) return `${cmd} is not installed`;
  }
  return false;
}

async function run(cmd: string, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return stdout;
}

/** `nft ARGS` inside namespace `ns`; stdout, or the error text when nft fails. */
async function nftIn(ns: string, args: readonly string[]): Promise<string> {
  try {
    return await run('ip', ['netns', 'exec', ns, 'nft', ...args]);
  } catch (err) {
    return `error: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined) {
  const deadline = Date.now() + DEADLINE_MS;
  for (let i = 0; i < 1000; i += 1) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Two namespaces joined by a veth pair: the relay's (RELAY) and the parties' (PARTY). */
async function namespaces(t: Test): Promise<{ relay: string; party: string; veth: string }> {
  const id = String(process.pid);
  const relay = `rtpp-tos-${id}-r`;
  const party = `rtpp-tos-${id}-p`;
  const vr = `vr${id}`;
  const vp = `vp${id}`;
  t.teardown(async () => {
    await run('ip', ['netns', 'del', relay]).catch(() => undefined);
    await run('ip', ['netns', 'del', party]).catch(() => undefined);
  });
  await run('ip', ['netns', 'add', relay]);
  await run('ip', ['netns', 'add', party]);
  await run('ip', [
    '-n',
    relay,
    'link',
    'add',
    vr,
    'type',
    'veth',
    'peer',
    'name',
    vp,
    'netns',
    party,
  ]);
  await run('ip', ['-n', relay, 'addr', 'add', `${RELAY}/24`, 'dev', vr]);
  await run('ip', ['-n', party, 'addr', 'add', `${PARTY}/24`, 'dev', vp]);
  for (const [ns, dev] of [
    [relay, vr],
    [party, vp],
  ] as const) {
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  return { relay, party, veth: vp };
}

/** Lines of a child's stream, collected. */
function lines(stream: NodeJS.ReadableStream | null): string[] {
  const out: string[] = [];
  let rest = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    out.push(...parts);
  });
  return out;
}

function killAtTeardown(t: Test, child: ChildProcess): Promise<number | null> {
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

interface Daemon {
  command(line: string): Promise<string>;
  logs(): { msg: string; [k: string]: unknown }[];
  stop(): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/** The daemon in `ns`, controlled over `stdio:`; `wrap` goes before node (setpriv). */
function startDaemon(
  t: Test,
  ns: string,
  args: readonly string[],
  wrap: readonly string[] = [],
): Daemon {
  // env -u NODE_OPTIONS: tap's process-info hook would otherwise follow the child.
  const child = spawn(
    'ip',
    [
      ...['netns', 'exec', ns, ...wrap, 'env', '-u', 'NODE_OPTIONS', process.execPath, BIN],
      ...['-f', '-F', '-s', 'stdio:', '-l', RELAY, '-m', '40000', '-M', '40199'],
      ...['-d', 'INFO', '-p', '/dev/null', '--workers', '1', ...args],
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const replies = lines(child.stdout);
  const errs = lines(child.stderr);
  const exited = killAtTeardown(t, child);
  let asked = 0;
  return {
    exited,
    command: async (line) => {
      const index = asked;
      asked += 1;
      child.stdin.write(`${line}\n`);
      return waitFor(`the reply to ${line}`, () => replies[index]);
    },
    logs: () =>
      errs.flatMap((l) => {
        try {
          return [JSON.parse(l) as { msg: string }];
        } catch {
          return [];
        }
      }),
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
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
    const re =
      /\(tos (0x[0-9a-f]+),[^\n]*\)\n\s+10\.77\.0\.1\.([0-9]+) > 10\.77\.0\.2\.([0-9]+): UDP, length ([0-9]+)/g;
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

function portOf(reply: string): number {
  const m = /^([0-9]+)[ \n]/.exec(reply);
  if (m?.[1] === undefined) throw new Error(`not a port reply: ${JSON.stringify(reply)}`);
  return Number(m[1]);
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
