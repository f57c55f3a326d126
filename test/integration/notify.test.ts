/**
 * Timeout notifications through the real daemon (docs/protocol.md 8): real unix and TCP listeners get
 * exactly `TAG\n` when a session expires; listeners that are down, slow or hang up do not disturb
 * relaying and later notifications still arrive; wrong targets; the wildcard; the Kamailio forms.
 * Sessions expire after -W 1 / -T 1 (about 2 s); waits poll with deadlines.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import t from 'tap';
import { waitUntil } from '../helpers/control.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { NotifyListener } from '../helpers/notify-listener.ts';
import { Peer, portWindow, rtpPacket, uniqueCall } from '../helpers/udp.ts';

const BASE = ['-l', '127.0.0.1', ...portWindow(10), '-T', '1', '-W', '1'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `G nsess_timeout` until it reaches `n`. */
async function timeouts(d: RunningDaemon, n: number, deadlineMs = 8000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const got = Number((await d.command('G nsess_timeout')).trim());
    if (got >= n) return;
    if (Date.now() > deadline) {
      throw new Error(`nsess_timeout is ${String(got)}, wanted ${String(n)}`);
    }
    await sleep(100);
  }
}

t.test('notify: unix and tcp listeners get exactly the decoded tag and LF on expiry', async (t) => {
  const unix = await NotifyListener.unix(t);
  const tcp = await NotifyListener.tcp(t);
  const tcpName = `tcp:127.0.0.1:${String(tcp.port)}`;
  const d = await startDaemon(t, [...BASE, '-n', `unix:${unix.path}`, '-n', tcpName]);
  t.equal(await d.command('VF 20081224'), '1\n', 'notifications are announced with -n');
  t.equal(await d.command('VF 20150617'), '1\n');
  // As the reference answers them: unix: prefix, bare path with both tags, unknown target.
  await d.port(`U ${uniqueCall('a').id} 127.0.0.1 40000 ft unix:${unix.path} my%20tag%2Bx`);
  await d.port(`U ${uniqueCall('b').id} 127.0.0.1 40000 ft tt ${unix.path} tag7`);
  await d.port(`U ${uniqueCall('c').id} 127.0.0.1 40000 ft tcp:127.0.0.1:9 tag8`);
  await d.port(`U ${uniqueCall('d').id} 127.0.0.1 40000 ft;1 ${tcpName} T%C3%A9l+1`);
  // Deleted before it expires: no notification.
  const deleted = uniqueCall('e');
  await d.port(`U ${deleted.id} 127.0.0.1 40000 ft ${tcpName} deleted`);
  t.equal(await d.command(`D ${deleted.id} ft`), '0\n');
  // A re-INVITE without the pair turns notification off.
  const off = uniqueCall('f');
  await d.port(`U ${off.id} 127.0.0.1 40000 ft ${tcpName} turned-off`);
  await d.port(`U ${off.id} 127.0.0.1 40000 ft`);
  await timeouts(d, 5);
  await unix.waitFor('tag7\n');
  await tcp.waitFor('\n');
  await sleep(200);
  t.equal(unix.text.length, 'my tag+x\ntag7\n'.length);
  t.same(unix.text.split('\n').sort(), ['', 'my tag+x', 'tag7'], 'both unix tags, one line each');
  t.equal(unix.connections.length, 1, 'one connection for both');
  t.same(
    [...Buffer.concat(tcp.connections.flat())],
    [...Buffer.from('Tél 1\n', 'utf8')],
    'the decoded bytes, as sent',
  );
  t.equal(tcp.connections.length, 1);
});

t.test('notify: wrong targets answer as the reference does', async (t) => {
  const call = uniqueCall(t.name);
  const plain = await startDaemon(t, BASE);
  t.equal(await plain.command('VF 20081224'), '0\n', 'no notifications without -n');
  t.equal(
    await plain.command(`U ${call.id} 127.0.0.1 40000 ft n1 n2`),
    'E75\n',
    'a notify pair without -n',
  );
  t.equal(await plain.command(`U ${call.id} 127.0.0.1 40000 ft tt n1 n2`), 'E75\n');
  t.equal(await plain.command('G nsess_created'), '0\n', 'nothing created');
  t.equal(
    await plain.command(`U ${call.id} 127.0.0.1 40000 ft n1 bad%zz`),
    'E10\n',
    'E10 comes first',
  );
  const tcp = await NotifyListener.tcp(t);
  const d = await startDaemon(t, [...BASE, '-n', `tcp:127.0.0.1:${String(tcp.port)}`]);
  t.equal(
    await d.command(`U ${call.id} 127.0.0.1 40000 ft tcp:127.0.0.1:${String(tcp.port)} 50%`),
    'E10\n',
  );
  t.match(
    await d.command(`U ${call.id} 127.0.0.1 40000 ft tcp:127.0.0.2:${String(tcp.port)} x`),
    /^[0-9]+ 127\.0\.0\.1\n$/,
    'an unknown socket: created, no notification',
  );
  t.match(
    await d.command(`U ${uniqueCall('x').id} 127.0.0.1 40000 ft 127.0.0.1:${String(tcp.port)} y`),
    /^[0-9]+ /,
    'tcp target without tcp: is unknown',
  );
  await timeouts(d, 2);
  await sleep(300);
  t.equal(tcp.connections.length, 0, 'nobody connected');
});

t.test('notify: %%CC_SELF%% connects back to the address the U came from', async (t) => {
  const tcp = await NotifyListener.tcp(t, '127.0.0.1');
  const wildcard = `tcp:%%CC_SELF%%:${String(tcp.port)}`;
  const d = await startDaemon(t, [...BASE, '-n', wildcard]);
  await d.port(`U ${uniqueCall('w1').id} 127.0.0.1 40000 ft ${wildcard} self-1`);
  await d.port(`U ${uniqueCall('w2').id} 127.0.0.1 40000 ft ${wildcard} self-2`);
  await timeouts(d, 2);
  await tcp.waitFor('self-1\n');
  await tcp.waitFor('self-2\n');
  t.equal(tcp.connections.length, 1, 'one target per address, reused');
});

t.test(
  'notify: %%CC_SELF%% follows the source address of each U, over UDP and TCP control',
  async (t) => {
    // Loopback takes any 127.x address: the U sent from 127.0.0.3 (UDP) and from 127.0.0.2 (TCP)
    // must be notified at those addresses, on the wildcard's port.
    const viaTcp = await NotifyListener.tcp(t, '127.0.0.2');
    const viaUdp = await NotifyListener.tcp(t, '127.0.0.3', viaTcp.port);
    const wildcard = `tcp:%%CC_SELF%%:${String(viaTcp.port)}`;
    const d = await startDaemon(t, [...BASE, '-s', 'tcp:127.0.0.1:0', '-n', wildcard]);
    const udp = dgram.createSocket('udp4');
    t.teardown(() => new Promise<void>((resolve) => udp.close(() => resolve())));
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.3', resolve));
    const udpReply = new Promise<string>((resolve) =>
      udp.once('message', (m) => resolve(m.toString())),
    );
    udp.send(
      `k1 U ${uniqueCall('udp').id} 127.0.0.1 40000 ft ${wildcard} from-udp`,
      d.controlPort,
      '127.0.0.1',
    );
    t.match(await udpReply, /^k1 [0-9]+ 127\.0\.0\.1\n$/);
    const tcp = net.connect({
      host: '127.0.0.1',
      port: d.daemon.controlPort(1) ?? 0,
      localAddress: '127.0.0.2',
    });
    t.teardown(() => tcp.destroy());
    const tcpReply = new Promise<string>((resolve) =>
      tcp.once('data', (m) => resolve(m.toString())),
    );
    tcp.write(`U ${uniqueCall('tcp').id} 127.0.0.1 40000 ft ${wildcard} from-tcp\n`);
    t.match(await tcpReply, /^[0-9]+ 127\.0\.0\.1\n$/);
    await timeouts(d, 2);
    await viaUdp.waitFor('from-udp\n');
    await viaTcp.waitFor('from-tcp\n');
    t.equal(viaUdp.text, 'from-udp\n');
    t.equal(viaTcp.text, 'from-tcp\n');
  },
);

t.test('notify: a listener that is down, slow or hangs up never disturbs relaying', async (t) => {
  const l = await NotifyListener.tcp(t);
  const target = `tcp:127.0.0.1:${String(l.port)}`;
  const d = await startDaemon(t, [...BASE, '-n', target]);
  // A call that keeps relaying throughout: A sends every 20 ms, B counts what arrives.
  const a = await Peer.open(t);
  const b = await Peer.open(t);
  const call = uniqueCall('media');
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  let sent = 0;
  let received = 0;
  let lastArrival = performance.now();
  let longestGap = 0;
  b.socket.on('message', () => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - lastArrival);
    lastArrival = now;
    received += 1;
  });
  const pump = setInterval(() => {
    sent += 1;
    void a.send(rtpPacket({ seq: sent, ssrc: 0x5151 }), toA);
  }, 20);
  t.teardown(() => clearInterval(pump));
  const expire = async (tag: string, n: number): Promise<void> => {
    await d.port(`U ${uniqueCall(tag).id} 127.0.0.1 40000 ft ${target} ${tag}`);
    await timeouts(d, n);
  };

  // Down: the notification is dropped (as in the reference), relaying goes on.
  await l.close();
  await expire('while-down', 1);
  await sleep(300);
  t.equal(l.connections.length, 0);

  // Back but slow: it accepts and does not read; relaying goes on.
  l.paused = true;
  await l.open();
  await expire('while-slow', 2);
  await sleep(300);
  t.equal(l.text, '', 'not read yet');
  l.resume();
  await l.waitFor('while-slow\n');

  // Hangs up after every line: the next notification goes over a new connection.
  l.closeAfterFirstLine = true;
  await expire('hang-up-1', 3);
  await l.waitFor('hang-up-1\n');
  await expire('hang-up-2', 4);
  await l.waitFor('hang-up-2\n');
  t.equal(l.text, 'while-slow\nhang-up-1\nhang-up-2\n', 'every later notification arrived, once');

  clearInterval(pump);
  // The last packets are still on their way; a shortfall is left to the assertion below.
  await waitUntil(() => received >= sent, 'the last RTP packets relayed', 2000).catch(
    () => undefined,
  );
  t.equal(received, sent, `all ${String(sent)} RTP packets relayed`);
  t.ok(longestGap < 400, `longest gap between relayed packets ${longestGap.toFixed(0)} ms`);
  t.match(await d.command(`Q ${call.id} ${call.from} ${call.to}`), / 0\n$/, 'nothing dropped');
  t.ok(toB > 0);
});

t.test('notify: --kamailio_notify reads the forms Kamailio timeout_socket sends', async (t) => {
  const tcp = await NotifyListener.tcp(t);
  const sock = `tcp:127.0.0.1:${String(tcp.port)}`;
  const off = await startDaemon(t, [...BASE, '-n', sock]);
  // Without the switch: the glued form is a T2 and the 7th token makes T2 the socket.
  await off.port(`U ${uniqueCall('k1').id} 127.0.0.1 40000 ft;1 ${sock};glued`);
  await off.port(`U ${uniqueCall('k2').id} 127.0.0.1 40000 ft;1 tt;1 ${sock}`);
  await timeouts(off, 2);
  await sleep(300);
  t.equal(tcp.text, '', 'the reference reads neither as a notify pair');

  const on = await startDaemon(t, [...BASE, '-n', sock, '--kamailio_notify']);
  const glued = uniqueCall('k3');
  await on.port(`U ${glued.id} 127.0.0.1 40000 ft;1 ${sock};dlg%3A42`);
  const old = uniqueCall('k4');
  await on.port(`U ${old.id} 127.0.0.1 40000 ft;1 tt;1 ${sock}`);
  // The well-formed pair (5.8+ with a To tag) works as always.
  await on.port(`U ${uniqueCall('k5').id} 127.0.0.1 40000 ft;1 tt;1 ${sock} plain`);
  await timeouts(on, 3);
  await tcp.waitFor('plain\n');
  await tcp.waitFor(`${old.id} ft;1 tt;1\n`);
  await tcp.waitFor('dlg:42\n');
  t.same(tcp.text.split('\n').sort(), ['', `${old.id} ft;1 tt;1`, 'dlg:42', 'plain'].sort());
});

t.test('notify: a tag that decodes to a control character cannot forge a line', async (t) => {
  const tcp = await NotifyListener.tcp(t);
  const tcpName = `tcp:127.0.0.1:${String(tcp.port)}`;
  const d = await startDaemon(t, [...BASE, '-n', tcpName, '--kamailio_notify']);
  const forged = ['a%0Aforged', 'a%0d%0Aforged', 'a%00b', 'a%1Bb', 'a%7Fb', 'a\u0001b'];
  for (const tag of forged) {
    t.equal(
      await d.command(`U ${uniqueCall(tag).id} 127.0.0.1 40000 ft ${tcpName} ${tag}`),
      'E10\n',
      `${JSON.stringify(tag)} refused`,
    );
    t.equal(
      await d.command(`U ${uniqueCall(tag).id} 127.0.0.1 40000 ft tt ${tcpName} ${tag}`),
      'E10\n',
      `${JSON.stringify(tag)} with both tags refused`,
    );
  }
  // Kamailio's glued form takes an undecodable tag as it is; %0A stays three plain characters.
  await d.port(`U ${uniqueCall('k').id} 127.0.0.1 40000 ft ${tcpName};k%0Ax`);
  await d.port(`U ${uniqueCall('ok').id} 127.0.0.1 40000 ft ${tcpName} plain%20tag`);
  t.equal(await d.command('G nsess_created'), '2\n', 'no session from a refused tag');
  await timeouts(d, 2);
  await tcp.waitFor('\n');
  await sleep(200);
  t.same(tcp.text.split('\n').sort(), ['', 'k%0Ax', 'plain tag'], 'two lines, none forged');
});
