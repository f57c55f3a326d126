import t from 'tap';
import { makeManager } from '../../helpers/manager.ts';
import { RelayError } from '../../../src/session/errors.ts';
import { matchSingle, prefixMatch } from '../../../src/session/keys.ts';
import type { OfferRequest } from '../../../src/session/manager.ts';

function setup(overrides: { ttl?: number; setupTtl?: number } = {}) {
  const ttl = overrides.ttl ?? 60;
  const { manager, stats, media, advance, now, drained } = makeManager({
    options: { ttl, setupTtl: overrides.setupTtl ?? ttl },
    start: 1_000_000,
  });
  // The sweep ticks once a second: advance() sweeps once per whole second crossed.
  return { manager, stats, media, advance, now, drained };
}

const offer = (
  callId: string,
  tag1: string,
  tag2?: string,
  extra: Partial<OfferRequest> = {},
): OfferRequest => ({
  callId,
  tag1,
  ...(tag2 === undefined ? {} : { tag2 }),
  remote: { kind: 'address', address: '192.0.2.1', port: 4000, family: 4 },
  weak: false,
  local: { kind: 'default' },
  newPorts: false,
  ...extra,
});

t.test('matchSingle() follows the reference rules', async (t) => {
  const s = [{ tag: 'ft;1' }, { tag: 'ft;2' }];
  t.same(matchSingle(s, 'ft;1', undefined), { session: s[0], m: 0 });
  t.same(matchSingle(s, 'tt;2', 'ft;2'), { session: s[1], m: 1 });
  t.same(matchSingle(s, 'tt;1', 'ft'), { session: s[0], m: 1 }, 'media-number rule');
  t.equal(matchSingle(s, 'tt', 'ft'), undefined, 'T1 without ; cannot use the media-number rule');
  t.equal(matchSingle(s, 'ft', undefined), undefined);
  t.equal(prefixMatch('ft;1', 'ft'), 'prefix');
  t.equal(prefixMatch('ft', 'ft'), 'exact');
  t.equal(prefixMatch('ftx;1', 'ft'), undefined);
});

t.test(
  'manager.update() creates, manager.lookup() completes, ports stay on re-INVITE',
  async (t) => {
    const { manager, stats } = setup();
    const a = await manager.update(offer('c', 'ft;1'));
    t.equal(a.port, 30000);
    t.equal(await manager.lookup(offer('nope', 'ft;1', 'tt;1')), undefined);
    const b = await manager.lookup(offer('c', 'ft;1', 'tt;1'));
    t.equal(b?.port, 30002);
    t.equal(stats.nsessComplete, 1);
    t.equal(
      (await manager.update(offer('c', 'ft;1', 'tt;1'))).port,
      30000,
      're-INVITE from caller',
    );
    t.equal(
      (await manager.update(offer('c', 'tt;1', 'ft;1'))).port,
      30002,
      're-INVITE from callee',
    );
    t.equal(
      (await manager.update(offer('c', 'ft;1', 'tt;1', { newPorts: true }))).port,
      30004,
      'n: fresh pair',
    );
  },
);

t.test('manager.update() refuses new sessions while draining and reports no ports', async (t) => {
  const { manager, media, drained } = setup();
  await manager.update(offer('c', 'ft'));
  manager.drain();
  await t.rejects(manager.update(offer('d', 'ft')), new RelayError('ERR_SHUTTING_DOWN'));
  t.equal((await manager.update(offer('c', 'ft'))).port, 30000, 'existing sessions still served');
  t.equal(drained(), 0);
  t.ok(manager.delete('c', 'ft', undefined, false));
  t.equal(drained(), 1, 'drained once the last session ended');
  media.failBinds = true;
  const fresh = setup();
  fresh.media.failBinds = true;
  await t.rejects(fresh.manager.update(offer('e', 'ft')), { code: 'ERR_NO_PORTS_NEW' });
  t.equal(fresh.manager.size, 0, 'a failed creation leaves nothing behind');
});

t.test(
  'manager.sweep() expires on the setup timer, then the session timer, and never early',
  async (t) => {
    const { manager, stats, advance } = setup({ ttl: 5, setupTtl: 2 });
    await manager.update(offer('c', 'ft'));
    advance(2900);
    t.equal(manager.size, 1, 'alive while the -W counter counts down to 0 (two ticks)');
    advance(200);
    t.equal(manager.size, 0, 'gone at the tick that finds it at 0');
    t.equal(stats.nsessTimeout, 1);
    await manager.update(offer('d', 'ft'));
    await manager.lookup(offer('d', 'ft', 'tt'));
    t.equal(manager.find('d', 'ft', 'tt')?.session.ttl(), 5, 'complete: the counter is -T');
    advance(4900);
    t.equal(manager.size, 1, 'complete session uses -T: five ticks bring it to 0');
    const found = manager.find('d', 'ft', 'tt');
    found?.session.touch(0);
    advance(100);
    advance(5800);
    t.equal(manager.size, 1, 'a packet re-armed the shared timer');
    advance(300);
    t.equal(manager.size, 0);
    t.equal(stats.nsessNortp, 1, 'a complete session without RTP counts as no-RTP');
  },
);

t.test('manager.delete() honours strong and weak references', async (t) => {
  const { manager } = setup();
  await manager.update(offer('c', 'ft', undefined, { weak: true }));
  await manager.lookup(offer('c', 'ft', 'tt', { weak: true }));
  t.ok(manager.delete('c', 'ft', 'tt', false));
  t.equal(manager.size, 1);
  t.ok(manager.delete('c', 'ft', 'tt', true));
  t.equal(manager.size, 1);
  t.ok(manager.delete('c', 'tt', 'ft', true));
  t.equal(manager.size, 0);
  t.notOk(manager.delete('c', 'ft', 'tt', false));
});
