/**
 * A draining daemon (SIGHUP) leaves a new session's offer unanswered and answers V with E99, so
 * that Kamailio and OpenSIPS take it out of their set and offer new calls to another daemon, while
 * its calls in progress are served as usual (docs/operations.md, "Drain"). Over every control
 * socket kind that can leave a command unanswered: udp (an empty datagram, again for a
 * retransmission), unix (the connection closes), cunix and tcp (the connection closes after the
 * replies before it). The daemon runs in-process.
 */
import { join } from 'node:path';
import t from 'tap';
import {
  StreamControlClient,
  UdpControlClient,
  unixCommand,
  withTimeout,
} from '../helpers/control.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { tempDir } from '../helpers/tmp.ts';
import { portWindow, uniqueCall } from '../helpers/udp.ts';

t.test(
  'draining: new sessions go unanswered, V answers E99, calls in progress are served',
  async (t) => {
    const dir = tempDir(t, 'drain');
    const unix = join(dir, 'u.sock');
    const cunix = join(dir, 'c.sock');
    const d = await startDaemon(t, [
      '-l',
      '127.0.0.1',
      ...portWindow(13),
      '-s',
      `unix:${unix}`,
      '-s',
      `cunix:${cunix}`,
      '-s',
      'tcp:127.0.0.1:0',
    ]);
    const tcpPort = d.daemon.controlPort(3);
    if (tcpPort === undefined) throw new Error('no tcp control port');
    const call = uniqueCall('in-progress');
    await d.port(`U ${call.id} 127.0.0.1 40000 ${call.from}`);
    t.equal(await d.command('V'), '20040107\n', 'V before the drain');

    d.daemon.drain();
    const offer = (name: string): string => `U ${uniqueCall(name).id} 127.0.0.1 40000 ft`;

    await t.test('udp: an empty datagram, for the command and its retransmission', async (t) => {
      const client = await UdpControlClient.open(d.controlPort, '127.0.0.1');
      t.teardown(() => client.close());
      const line = `drain-1 ${offer('udp')}`;
      await client.sendRaw(line);
      t.equal(await client.receive(), '', 'an empty datagram');
      await client.sendRaw(line);
      t.equal(await client.receive(), '', 'the retransmission gets it again');
      t.equal(await client.command('V'), 'E99\n', 'V answers E99');
      t.equal(await client.command('VF 20050322'), '1\n', 'VF as usual');
    });

    await t.test('unix: the connection closes without a reply', async (t) => {
      t.equal(await unixCommand(unix, offer('unix')), '', 'no reply');
      t.equal(await unixCommand(unix, 'V'), 'E99\n', 'V answers E99');
    });

    for (const [kind, target] of [
      ['cunix', { path: cunix }],
      ['tcp', { host: '127.0.0.1', port: tcpPort }],
    ] as const) {
      await t.test(`${kind}: the connection closes after the replies before it`, async (t) => {
        const client = await StreamControlClient.connect(target);
        t.teardown(() => client.close());
        t.equal(await client.command('V'), 'E99\n', 'V answers E99');
        const before = client.command(`Q ${call.id} ${call.from}`);
        const refused = client.command(offer(kind));
        t.match(await before, /^\d+ /, 'the command before it is answered');
        await t.rejects(refused, /connection closed before the reply/, 'the offer: no reply');
      });
    }

    t.equal(await d.command('G nsess_created'), '1\n', 'no session was created while draining');
    t.match(
      await d.command(`L ${call.id} 127.0.0.1 40002 ${call.from} ${call.to}`),
      /^\d+ 127\.0\.0\.1\n$/,
      'the call in progress is answered (L)',
    );
    t.equal(await d.command(`D ${call.id} ${call.from}`), '0\n', 'and deleted (D)');
    await withTimeout(d.drained, 2000, 'the drain to end');
    t.pass('the drain ended with the last session');
  },
);
