/**
 * Network topologies on loopback (docs/protocol.md 3.2, 4.6; issue 3): bridge mode between 127.0.0.1
 * and 127.0.0.2 in both directions, IPv4 <-> IPv6 bridging and automatic choice by family with
 * ::1, advertised addresses in replies while media binds the real address, labelled addresses
 * selected by `l{label}`, and `r<addr>`. Linux routes all of 127/8 to lo, so 127.0.0.2 needs no
 * set-up. Every relayed packet is checked on the receiving side: bytes, source address and port.
 */
import dgram from 'node:dgram';
import t from 'tap';
import { type RunningDaemon, startDaemon } from '../helpers/daemon.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

const PORTS = [...portWindow(30), '-b'];

/** Whether an IPv6 loopback socket can be bound here; the reason when not. */
async function ipv6LoopbackMissing(): Promise<string | false> {
  const socket = dgram.createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '::1', () => {
        resolve();
      });
    });
    return false;
  } catch (err) {
    return `no IPv6 loopback on this machine (bind [::1] failed: ${err instanceof Error ? err.message : String(err)})`;
  } finally {
    try {
      socket.close();
    } catch {
      // never bound
    }
  }
}

const noIpv6 = await ipv6LoopbackMissing();
if (noIpv6 !== false) console.log(`# skipping the IPv6 tests: ${noIpv6}`);

/** A U/L reply split into port, address and family; throws on anything else. */
async function answer(
  d: RunningDaemon,
  line: string,
): Promise<{ port: number; address?: string; family: 4 | 6; text: string }> {
  const text = await d.command(line);
  const m = /^([0-9]+)(?: (\S+)( 6)?)?\n$/.exec(text);
  if (m === null) throw new Error(`${line} -> ${JSON.stringify(text)}`);
  return {
    port: Number(m[1]),
    ...(m[2] === undefined ? {} : { address: m[2] }),
    family: m[3] === undefined ? 4 : 6,
    text,
  };
}

/**
 * Sends a few packets each way between two peers through the relay and checks that each arrives
 * intact from the address and port the other side was given.
 */
async function relayBothWays(
  a: Peer,
  toA: { port: number; address: string },
  b: Peer,
  toB: { port: number; address: string },
): Promise<void> {
  for (let seq = 1; seq <= 3; seq += 1) {
    const pa = rtpPacket({ seq, ssrc: 0xaaaa });
    await a.send(pa, toA.port, toA.address);
    await b.expect(pa, toB.port, toB.address);
    const pb = rtpPacket({ seq, ssrc: 0xbbbb, fill: 0x55 });
    await b.send(pb, toB.port, toB.address);
    await a.expect(pb, toA.port, toA.address);
  }
}

t.test(
  'bridge mode: ie relays between the internal 127.0.0.1 and the external 127.0.0.2',
  async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1/127.0.0.2', ...PORTS]);
    const inside = await Peer.open(t, '127.0.0.1');
    const outside = await Peer.open(t, '127.0.0.2');
    const call = uniqueCall(t.name);
    // The caller is inside: its leg is on i, the reply (for the callee outside) on e.
    const forOutside = await answer(
      d,
      `Uie ${call.id} 127.0.0.1 ${String(inside.port)} ${call.from}`,
    );
    t.equal(forOutside.address, '127.0.0.2', 'the callee outside is given the external address');
    const forInside = await answer(
      d,
      `Lei ${call.id} 127.0.0.2 ${String(outside.port)} ${call.from} ${call.to}`,
    );
    t.equal(forInside.address, '127.0.0.1', 'the caller inside is given the internal address');
    await relayBothWays(inside, { port: forInside.port, address: '127.0.0.1' }, outside, {
      port: forOutside.port,
      address: '127.0.0.2',
    });
    t.equal(await d.command(`Q ${call.id} ${call.from} ${call.to}`), '60 3 3 6 0\n');
  },
);

t.test('bridge mode: ei relays from a caller outside to a callee inside', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1/127.0.0.2', ...PORTS]);
  const inside = await Peer.open(t, '127.0.0.1');
  const outside = await Peer.open(t, '127.0.0.2');
  const call = uniqueCall(t.name);
  const forInside = await answer(
    d,
    `Uei ${call.id} 127.0.0.2 ${String(outside.port)} ${call.from}`,
  );
  t.equal(forInside.address, '127.0.0.1');
  const forOutside = await answer(
    d,
    `Lie ${call.id} 127.0.0.1 ${String(inside.port)} ${call.from} ${call.to}`,
  );
  t.equal(forOutside.address, '127.0.0.2');
  await relayBothWays(outside, { port: forOutside.port, address: '127.0.0.2' }, inside, {
    port: forInside.port,
    address: '127.0.0.1',
  });
});

t.test('bridge mode: interface letters, defaults and their errors', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1/127.0.0.2', ...PORTS]);
  const call = uniqueCall(t.name);
  t.equal(
    (await answer(d, `U ${call.id}a 127.0.0.1 4000 ${call.from}`)).address,
    '127.0.0.1',
    'no letter: internal',
  );
  t.equal(
    (await answer(d, `Uee ${call.id}b 127.0.0.2 4000 ${call.from}`)).address,
    '127.0.0.2',
    'ee',
  );
  t.equal(
    (await answer(d, `Uii ${call.id}c 127.0.0.1 4000 ${call.from}`)).address,
    '127.0.0.1',
    'ii',
  );
  // One letter names the leg facing the sender; the reply leg keeps the first address.
  t.equal(
    (await answer(d, `Ue ${call.id}d 127.0.0.2 4000 ${call.from}`)).address,
    '127.0.0.1',
    'e alone',
  );
  t.equal(
    (await answer(d, `L ${call.id}d 127.0.0.1 4002 ${call.from} ${call.to}`)).address,
    '127.0.0.2',
    'its L',
  );
  // On an existing session the letters move the reply leg only with n and both letters.
  t.equal(
    (await answer(d, `Uie ${call.id}a 127.0.0.1 4000 ${call.from}`)).address,
    '127.0.0.1',
    'ignored without n',
  );
  t.equal(
    (await answer(d, `Unie ${call.id}a 127.0.0.1 4000 ${call.from}`)).address,
    '127.0.0.2',
    'n and ie',
  );
  t.equal(
    await d.command(`Uiee ${call.id}e 127.0.0.1 4000 ${call.from}`),
    'E11\n',
    'a third letter',
  );
  t.equal(await d.command(`Ueii ${call.id}e 127.0.0.1 4000 ${call.from}`), 'E12\n');
});

t.test('outside bridge mode i and e are refused', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...PORTS]);
  const call = uniqueCall(t.name);
  t.equal(await d.command(`Ui ${call.id} 127.0.0.1 4000 ${call.from}`), 'E12\n');
  t.equal(await d.command(`Ue ${call.id} 127.0.0.1 4000 ${call.from}`), 'E11\n');
});

t.test(
  'bridge mode: IPv4 inside, IPv6 outside (-l 127.0.0.1 -6 /::1)',
  { skip: noIpv6 },
  async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1', '-6', '/::1', ...PORTS]);
    const v4 = await Peer.open(t, '127.0.0.1');
    const v6 = await Peer.open(t, '::1');
    const call = uniqueCall(t.name);
    const forV6 = await answer(d, `Uie ${call.id} 127.0.0.1 ${String(v4.port)} ${call.from}`);
    t.equal(
      forV6.text,
      `${String(forV6.port)} ::1 6\n`,
      'the IPv6 side gets ::1 and the trailing 6',
    );
    const forV4 = await answer(d, `L6ei ${call.id} ::1 ${String(v6.port)} ${call.from} ${call.to}`);
    t.equal(forV4.text, `${String(forV4.port)} 127.0.0.1\n`);
    await relayBothWays(v4, { port: forV4.port, address: '127.0.0.1' }, v6, {
      port: forV6.port,
      address: '::1',
    });
    // And the other way round: the caller on IPv6.
    const call2 = uniqueCall(t.name);
    const back4 = await answer(d, `U6ei ${call2.id} ::1 ${String(v6.port)} ${call2.from}`);
    t.equal(back4.address, '127.0.0.1');
    const back6 = await answer(
      d,
      `Lie ${call2.id} 127.0.0.1 ${String(v4.port)} ${call2.from} ${call2.to}`,
    );
    t.equal(back6.text, `${String(back6.port)} ::1 6\n`);
    await relayBothWays(v6, { port: back6.port, address: '::1' }, v4, {
      port: back4.port,
      address: '127.0.0.1',
    });
  },
);

t.test(
  'automatic choice by family: 6 uses the IPv6 address of an IPv4 daemon',
  { skip: noIpv6 },
  async (t) => {
    const d = await startDaemon(t, ['-l', '127.0.0.1', '-6', 'v6@::1', ...PORTS]);
    const a = await Peer.open(t, '::1');
    const b = await Peer.open(t, '::1');
    const call = uniqueCall(t.name);
    const forB = await answer(d, `U6 ${call.id} ::1 ${String(a.port)} ${call.from}`);
    t.equal(forB.text, `${String(forB.port)} ::1 6\n`);
    const forA = await answer(d, `L6 ${call.id} ::1 ${String(b.port)} ${call.from} ${call.to}`);
    t.equal(forA.text, `${String(forA.port)} ::1 6\n`);
    await relayBothWays(a, { port: forA.port, address: '::1' }, b, {
      port: forB.port,
      address: '::1',
    });
    const v4 = await answer(d, `U ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`);
    t.equal(v4.text, `${String(v4.port)} 127.0.0.1\n`, 'without 6 the default IPv4 address');
  },
);

t.test('automatic choice by family: E36 when no address of that family exists', async (t) => {
  const v4only = await startDaemon(t, ['-l', '127.0.0.1', ...PORTS]);
  t.equal(await v4only.command(`U6 ${uniqueCall(t.name).id} ::1 4000 ft`), 'E36\n');
  t.equal(
    await v4only.command(`U6 ${uniqueCall(t.name).id} 1.2 3 ft`),
    'E36\n',
    'even with an ignored address',
  );
  t.equal(await v4only.command('VF 20090810'), '1\n', 'automatic bridging is a capability');
});

t.test(
  'an IPv6-only daemon answers E36 for IPv4 remotes and serves IPv6 ones',
  { skip: noIpv6 },
  async (t) => {
    const d = await startDaemon(t, ['-6', '::1', ...PORTS]);
    t.equal(await d.command(`U ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`), 'E36\n');
    const r = await answer(d, `U6 ${uniqueCall(t.name).id} ::1 4000 ft`);
    t.equal(r.text, `${String(r.port)} ::1 6\n`);
  },
);

t.test('advertised addresses are in the replies while media binds the real address', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1=203.0.113.7', ...PORTS]);
  const a = await Peer.open(t, '127.0.0.1');
  const b = await Peer.open(t, '127.0.0.1');
  const call = uniqueCall(t.name);
  const forB = await answer(d, `U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  t.equal(forB.text, `${String(forB.port)} 203.0.113.7\n`);
  const forA = await answer(d, `L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  t.equal(forA.address, '203.0.113.7');
  await relayBothWays(a, { port: forA.port, address: '127.0.0.1' }, b, {
    port: forB.port,
    address: '127.0.0.1',
  });
});

t.test('bridge mode: -A gives each interface its advertised address', async (t) => {
  const d = await startDaemon(t, [
    '-l',
    '127.0.0.1/127.0.0.2',
    '-A',
    '198.51.100.1/203.0.113.2',
    ...PORTS,
  ]);
  const inside = await Peer.open(t, '127.0.0.1');
  const outside = await Peer.open(t, '127.0.0.2');
  const call = uniqueCall(t.name);
  const forOutside = await answer(
    d,
    `Uie ${call.id} 127.0.0.1 ${String(inside.port)} ${call.from}`,
  );
  t.equal(forOutside.address, '203.0.113.2');
  const forInside = await answer(
    d,
    `Lei ${call.id} 127.0.0.2 ${String(outside.port)} ${call.from} ${call.to}`,
  );
  t.equal(forInside.address, '198.51.100.1');
  await relayBothWays(inside, { port: forInside.port, address: '127.0.0.1' }, outside, {
    port: forOutside.port,
    address: '127.0.0.2',
  });
});

t.test('-A is ignored outside bridge mode', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', '-A', '198.51.100.1', ...PORTS]);
  const r = await answer(d, `U ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`);
  t.equal(r.address, '127.0.0.1');
});

t.test(
  'a wildcard local address replies with the port only, even with an advertised address',
  async (t) => {
    const d = await startDaemon(t, ['-l', '*', ...PORTS]);
    const p = await answer(d, `U ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`);
    t.equal(p.text, `${String(p.port)}\n`);
    // The top of this file's window, away from the first daemon's sequential ports.
    const top = Number(portWindow(30)[3]);
    const adv = await startDaemon(t, [
      '-l',
      '0.0.0.0=203.0.113.7',
      '-m',
      String(top - 9),
      '-M',
      String(top),
    ]);
    const q = await answer(adv, `U ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`);
    t.equal(q.text, `${String(q.port)}\n`);
  },
);

t.test('labelled addresses are selected by l{label}, with their advertised address', async (t) => {
  const d = await startDaemon(t, [
    '-l',
    '127.0.0.1',
    '-l',
    'lan@127.0.0.2',
    '-l',
    'pub@127.0.0.3=203.0.113.9',
    ...PORTS,
  ]);
  const a = await Peer.open(t, '127.0.0.1');
  const b = await Peer.open(t, '127.0.0.1');
  const call = uniqueCall(t.name);
  const forB = await answer(d, `Ul{lan} ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  t.equal(forB.address, '127.0.0.2');
  const forA = await answer(d, `L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  t.equal(forA.address, '127.0.0.2', 'both legs of the session are on the label');
  await relayBothWays(a, { port: forA.port, address: '127.0.0.2' }, b, {
    port: forB.port,
    address: '127.0.0.2',
  });
  const call2 = uniqueCall(t.name);
  const c = await Peer.open(t, '127.0.0.1');
  const e = await Peer.open(t, '127.0.0.1');
  const forE = await answer(d, `Ul{pub} ${call2.id} 127.0.0.1 ${String(c.port)} ${call2.from}`);
  t.equal(forE.address, '203.0.113.9', 'the advertised address, not 127.0.0.3');
  const forC = await answer(
    d,
    `Ll{pub} ${call2.id} 127.0.0.1 ${String(e.port)} ${call2.from} ${call2.to}`,
  );
  await relayBothWays(c, { port: forC.port, address: '127.0.0.3' }, e, {
    port: forE.port,
    address: '127.0.0.3',
  });
  t.equal(await d.command(`Ul{nope} ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`), 'E31\n');
  t.equal(await d.command(`Ul{lan ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`), 'E15\n');
  t.equal(
    (await answer(d, `Ul127.0.0.3 ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`)).address,
    '203.0.113.9',
    'l by address',
  );
  t.equal(await d.command('VF 20260306'), '1\n');
});

t.test('r<addr> binds the local address that routes to addr', async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.2', ...PORTS]);
  const a = await Peer.open(t, '127.0.0.1');
  const b = await Peer.open(t, '127.0.0.1');
  const call = uniqueCall(t.name);
  const forB = await answer(d, `Ur127.0.0.1 ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  t.equal(
    forB.address,
    '127.0.0.1',
    'the kernel reaches 127.0.0.1 from 127.0.0.1, not from -l 127.0.0.2',
  );
  const forA = await answer(d, `L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  t.equal(forA.address, '127.0.0.1');
  await relayBothWays(a, { port: forA.port, address: '127.0.0.1' }, b, {
    port: forB.port,
    address: '127.0.0.1',
  });
  t.equal(
    (await answer(d, `U ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`)).address,
    '127.0.0.2',
    'default unchanged',
  );
  t.equal(await d.command(`Ur ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`), 'E16\n');
  t.equal(await d.command(`Ur[1:2:3:4:5] ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`), 'E32\n');
});

t.test('r[::1] picks the IPv6 loopback', { skip: noIpv6 }, async (t) => {
  const d = await startDaemon(t, ['-l', '127.0.0.1', ...PORTS]);
  const r = await answer(d, `Ur[::1] ${uniqueCall(t.name).id} 127.0.0.1 4000 ft`);
  t.equal(r.text, `${String(r.port)} ::1 6\n`);
});
