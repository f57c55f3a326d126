/**
 * The session manager's side of timeout notifications and overload protection (docs/protocol.md 3.2
 * steps 4-5, 8.2, 8.4), with an injected notifier and overload check: deterministic, no sockets.
 */
import t from 'tap';
import { makeManager } from '../../helpers/manager.ts';
import { RelayError } from '../../../src/session/errors.ts';
import type { ManagerDeps, OfferRequest } from '../../../src/session/manager.ts';
import type { NotifyTarget, SessionNotifier } from '../../../src/session/notify-types.ts';
import type { CommandOrigin } from '../../../src/base/net.ts';

/** Knows one socket name; records what it resolves and what it is asked to send. */
class FakeNotifier implements SessionNotifier {
  readonly target: NotifyTarget = { name: 'unix:/run/n.sock' };
  readonly resolved: (readonly [string, CommandOrigin | undefined])[] = [];
  readonly sent: (readonly [string, string])[] = [];
  resolve(socket: string, origin: CommandOrigin | undefined): NotifyTarget | undefined {
    this.resolved.push([socket, origin]);
    return socket === 'unix:/run/n.sock' || socket === '/run/n.sock' ? this.target : undefined;
  }
  notify(target: NotifyTarget, tag: string): void {
    this.sent.push([target.name, tag]);
  }
}

function setup(deps: Partial<Pick<ManagerDeps, 'notifier' | 'overloaded'>>) {
  const { manager, stats, advance } = makeManager({
    options: { ttl: 5, setupTtl: 5 },
    deps,
    start: 1_000_000,
  });
  // The sweep ticks once a second: advance() sweeps once per whole second crossed.
  return { manager, stats, advance };
}

const offer = (callId: string, tag1: string, extra: Partial<OfferRequest> = {}): OfferRequest => ({
  callId,
  tag1,
  remote: { kind: 'address', address: '192.0.2.1', port: 4000, family: 4 },
  weak: false,
  local: { kind: 'default' },
  newPorts: false,
  ...extra,
});

const code = (err: unknown): string | undefined =>
  err instanceof RelayError ? err.code : undefined;

t.test('manager: a notify pair without any -n target is refused and creates nothing', async (t) => {
  const { manager, stats } = setup({});
  const err = await manager
    .update(offer('c', 'ft', { notify: { socket: 'x', tag: 'y' } }))
    .catch((e: unknown) => e);
  t.equal(code(err), 'ERR_NOTIFY_DISABLED');
  t.equal(manager.size, 0);
  t.equal(stats.nsessCreated, 0);
});

t.test('manager: only an idle timeout sends the tag, to the resolved target, once', async (t) => {
  const notifier = new FakeNotifier();
  const { manager, advance } = setup({ notifier });
  const origin = { remote: '192.0.2.9', local: '192.0.2.1' };
  await manager.update(
    offer('c1', 'ft', { notify: { socket: '/run/n.sock', tag: 'tag one' }, origin }),
  );
  await manager.update(
    offer('c2', 'ft', { notify: { socket: 'unix:/run/n.sock', tag: 'tag two' } }),
  );
  await manager.update(
    offer('c3', 'ft', { notify: { socket: 'unix:/run/n.sock', tag: 'tag three' } }),
  );
  t.same(notifier.resolved[0], ['/run/n.sock', origin], 'resolved with the command origin');
  t.ok(manager.delete('c2', 'ft', undefined, false), 'D');
  t.same(notifier.sent, [], 'D sends nothing');
  advance(4000);
  t.same(notifier.sent, [], 'nothing before the timeout');
  advance(2100);
  t.same(
    notifier.sent.map(([, tag]) => tag).sort(),
    ['tag one', 'tag three'],
    'both expired sessions notified',
  );
  advance(10_000);
  t.equal(notifier.sent.length, 2, 'never twice');
});

t.test(
  'manager: every U replaces the setting; an unknown socket or no pair means none',
  async (t) => {
    const notifier = new FakeNotifier();
    const { manager, advance } = setup({ notifier });
    await manager.update(offer('a', 'ft', { notify: { socket: '/run/n.sock', tag: 'A' } }));
    await manager.update(offer('a', 'ft')); // re-INVITE without the pair: notification off
    await manager.update(offer('b', 'ft', { notify: { socket: '/run/n.sock', tag: 'B-old' } }));
    await manager.update(offer('b', 'ft', { notify: { socket: '/run/n.sock', tag: 'B-new' } }));
    const unknown = await manager.update(
      offer('c', 'ft', { notify: { socket: 'tcp:127.0.0.1:9', tag: 'C' } }),
    );
    t.ok(unknown.port > 0, 'an unknown notify socket does not fail the U');
    await manager.update(offer('d', 'ft', { notify: { socket: '/run/n.sock', tag: 'D' } }));
    await manager.lookup({ ...offer('d', 'ft'), tag2: 'tt' }); // L leaves it alone
    advance(7000);
    t.same(notifier.sent.map(([, tag]) => tag).sort(), ['B-new', 'D']);
  },
);

t.test('manager: X and shutdown send nothing', async (t) => {
  const notifier = new FakeNotifier();
  const { manager } = setup({ notifier });
  await manager.update(offer('x1', 'ft', { notify: { socket: '/run/n.sock', tag: 'X' } }));
  manager.deleteAll();
  await manager.update(offer('x2', 'ft', { notify: { socket: '/run/n.sock', tag: 'S' } }));
  await manager.close();
  t.same(notifier.sent, []);
});

t.test('manager: overload refuses new sessions only, and only while it lasts', async (t) => {
  let overloaded = false;
  const { manager, stats } = setup({ overloaded: () => overloaded });
  await manager.update(offer('old', 'ft'));
  overloaded = true;
  const err = await manager.update(offer('new', 'ft')).catch((e: unknown) => e);
  t.equal(code(err), 'ERR_OVERLOADED');
  t.equal(manager.size, 1, 'nothing created');
  const again = await manager.update(offer('old', 'ft'));
  t.ok(again.port > 0, 'an existing session is still updated');
  const answer = await manager.lookup({ ...offer('old', 'ft'), tag2: 'tt' });
  t.ok(answer !== undefined && answer.port > 0, 'and answered (L)');
  overloaded = false;
  await manager.update(offer('new', 'ft'));
  t.equal(manager.size, 2);
  t.equal(stats.nsessCreated, 2);
});
