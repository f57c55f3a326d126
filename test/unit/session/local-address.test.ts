/**
 * The local address each leg binds (docs/protocol.md 3.2, 4.6), with a media plane that records the
 * address of every bind: bridge-mode interface letters on new and existing sessions, the choice by
 * family (the address configured or learnt last), `l` and `r` addresses joining the live list,
 * labels, and the advertised address carried in the answer.
 */
import t from 'tap';
import { makeManager } from '../../helpers/manager.ts';
import {
  createRelayStreams,
  localStream,
  MainThreadMedia,
  type MediaPlane,
} from '../../../src/media/plane.ts';
import type { ActivitySink, MediaStream } from '../../../src/media/stream.ts';
import {
  type ConfiguredAddress,
  MAX_LEARNT_ADDRESSES,
  type OfferRequest,
} from '../../../src/session/manager.ts';
import type { Family, LocalChoice } from '../../../src/base/net.ts';
import type { PortUsage } from '../../../src/media/port-allocator.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

class RecordingMedia extends MainThreadMedia implements MediaPlane {
  readonly capacity = 1000;

  portUsage(): Readonly<Record<Family, PortUsage>> {
    const usage = { capacity: this.capacity, inUse: 0, leastFree: this.capacity };
    return { 4: usage, 6: usage };
  }
  readonly binds: string[] = [];
  route: string | undefined = '10.9.9.9';
  #next = 30000;
  readonly #stats = new GlobalStats();
  createStreams(activity: ActivitySink) {
    return createRelayStreams({ stats: this.#stats, now: () => 0, sendTwice: false }, activity);
  }
  async bindPair(
    address: string,
    _family: 4 | 6,
    rtpStream: MediaStream,
    rtcpStream: MediaStream,
  ): Promise<boolean> {
    const rtp = localStream(rtpStream);
    const rtcp = localStream(rtcpStream);
    this.binds.push(address);
    rtp.localPort = this.#next;
    rtcp.localPort = this.#next + 1;
    this.#next += 2;
    return true;
  }
  async routeSource(): Promise<string | undefined> {
    return this.route;
  }
}

function setup(addresses: readonly ConfiguredAddress[], bridge = false) {
  const { manager, media } = makeManager({
    options: { addresses, bridge, defaultAsymmetric: bridge },
    media: () => new RecordingMedia(),
  });
  let n = 0;
  const offer = (local: LocalChoice, extra: Partial<OfferRequest> = {}): OfferRequest => ({
    callId: `c${String(++n)}`,
    tag1: 'ft',
    remote: { kind: 'ignored' },
    weak: false,
    local,
    newPorts: false,
    ...extra,
  });
  return { manager, media, offer };
}

const BRIDGE: readonly ConfiguredAddress[] = [
  { address: '10.0.0.1', family: 4, advertised: '198.51.100.1' },
  { address: '192.0.2.1', family: 4, advertised: '203.0.113.1' },
];

t.test(
  'bridge mode: the first letter is the leg facing T1, the second the reply leg',
  async (t) => {
    const { manager, offer } = setup(BRIDGE, true);
    const cases: readonly (readonly [LocalChoice, string, string])[] = [
      [{ kind: 'interfaces', first: 'i', second: 'e' }, '10.0.0.1', '192.0.2.1'],
      [{ kind: 'interfaces', first: 'e', second: 'i' }, '192.0.2.1', '10.0.0.1'],
      [{ kind: 'interfaces', first: 'e', second: 'e' }, '192.0.2.1', '192.0.2.1'],
      [{ kind: 'interfaces', first: 'e' }, '192.0.2.1', '10.0.0.1'],
      [{ kind: 'default' }, '10.0.0.1', '10.0.0.1'],
    ];
    for (const [local, facingT1, reply] of cases) {
      const req = offer(local);
      const u = await manager.update(req);
      t.equal(u.address, reply, `U ${JSON.stringify(local)}: reply leg`);
      const l = await manager.lookup({ ...req, tag2: 'tt', local: { kind: 'default' } });
      t.equal(l?.address, facingT1, `U ${JSON.stringify(local)}: the leg facing T1, bound by L`);
    }
  },
);

t.test('bridge mode: the advertised address of each interface goes into the answer', async (t) => {
  const { manager, offer } = setup(BRIDGE, true);
  const u = await manager.update(offer({ kind: 'interfaces', first: 'i', second: 'e' }));
  t.match(u, { address: '192.0.2.1', advertised: '203.0.113.1', wildcard: false });
});

t.test(
  'an existing leg moves only with n and both letters, or with l/r/the family choice',
  async (t) => {
    const { manager, media, offer } = setup(BRIDGE, true);
    const req = offer({ kind: 'default' });
    await manager.update(req);
    const again = (local: LocalChoice, newPorts: boolean) =>
      manager.update({ ...req, local, newPorts });
    t.equal(
      (await again({ kind: 'interfaces', first: 'i', second: 'e' }, false)).address,
      '10.0.0.1',
      'bound: no move',
    );
    t.equal(
      (await again({ kind: 'interfaces', first: 'e' }, true)).address,
      '10.0.0.1',
      'one letter: no move',
    );
    t.equal(
      (await again({ kind: 'interfaces', first: 'i', second: 'e' }, true)).address,
      '192.0.2.1',
      'n and ie',
    );
    t.equal(
      (await again({ kind: 'address', address: '10.0.0.1', family: 4 }, true)).address,
      '10.0.0.1',
      'n and l',
    );
    t.same(media.binds, ['10.0.0.1', '10.0.0.1', '192.0.2.1', '10.0.0.1']);
  },
);

t.test('the family choice takes the address of that family configured last', async (t) => {
  const { manager, offer } = setup([
    { address: '10.0.0.1', family: 4 },
    { address: '2001:db8::1', family: 6, label: 'a' },
    { address: '2001:db8::2', family: 6, label: 'b', advertised: '2001:db8::99' },
  ]);
  const u = await manager.update(offer({ kind: 'family', family: 6 }));
  t.match(u, { address: '2001:db8::2', family: 6, advertised: '2001:db8::99' });
  t.ok(manager.hasLocalFamily(6));
});

t.test(
  'l and r addresses join the live list, newest first, and the family choice sees them',
  async (t) => {
    const { manager, media, offer } = setup([{ address: '10.0.0.1', family: 4 }]);
    t.notOk(manager.hasLocalFamily(6));
    await t.rejects(manager.update(offer({ kind: 'family', family: 6 })), {
      code: 'ERR_NO_LOCAL_ADDRESS',
    });
    t.equal(
      (await manager.update(offer({ kind: 'address', address: '::1', family: 6 }))).address,
      '::1',
    );
    t.ok(manager.hasLocalFamily(6), 'learnt from l');
    t.equal((await manager.update(offer({ kind: 'family', family: 6 }))).address, '::1');
    media.route = '0:0::2';
    t.equal(
      (await manager.update(offer({ kind: 'route', address: '2001:db8::5', family: 6 }))).address,
      '0:0::2',
    );
    t.equal(
      (await manager.update(offer({ kind: 'family', family: 6 }))).address,
      '0:0::2',
      'the newest learnt',
    );
    t.equal(
      (await manager.update(offer({ kind: 'address', address: '::2', family: 6 }))).address,
      '0:0::2',
      'same address, other spelling',
    );
    media.route = undefined;
    await t.rejects(manager.update(offer({ kind: 'route', address: '192.0.2.1', family: 4 })), {
      code: 'ERR_NO_ROUTE',
    });
  },
);

t.test(
  'an address named by l or found by r that is configured keeps its label and advertised address',
  async (t) => {
    const { manager, media, offer } = setup([
      { address: '10.0.0.1', family: 4 },
      { address: '10.0.0.2', family: 4, label: 'pub', advertised: '203.0.113.5' },
    ]);
    t.equal(
      (await manager.update(offer({ kind: 'address', address: '10.0.0.2', family: 4 }))).advertised,
      '203.0.113.5',
    );
    media.route = '10.0.0.2';
    t.equal(
      (await manager.update(offer({ kind: 'route', address: '192.0.2.9', family: 4 }))).advertised,
      '203.0.113.5',
    );
    t.equal(
      (await manager.update(offer({ kind: 'label', label: 'pub' }))).advertised,
      '203.0.113.5',
    );
    await t.rejects(manager.update(offer({ kind: 'label', label: 'nope' })), {
      code: 'ERR_NO_LOCAL_ADDRESS',
    });
  },
);

t.test('a wildcard local address answers without an address', async (t) => {
  const { manager, offer } = setup([{ address: '0.0.0.0', family: 4, advertised: '203.0.113.5' }]);
  t.match(await manager.update(offer({ kind: 'default' })), { wildcard: true });
});

t.test('l with a new address per command does not grow the live list for good', async (t) => {
  const { manager, offer } = setup([{ address: '10.0.0.1', family: 4 }]);
  const cycles = 3 * MAX_LEARNT_ADDRESSES;
  for (let i = 0; i < cycles; i += 1) {
    const req = offer({
      kind: 'address',
      address: `10.1.${String(i >> 8)}.${String(i & 255)}`,
      family: 4,
    });
    await manager.update(req);
    t.ok(manager.delete(req.callId, req.tag1, undefined, false));
  }
  t.equal(manager.size, 0);
  t.equal(manager.learntAddresses, MAX_LEARNT_ADDRESSES, 'bounded');
  const last = `10.1.${String((cycles - 1) >> 8)}.${String((cycles - 1) & 255)}`;
  t.equal(
    (await manager.update(offer({ kind: 'family', family: 4 }))).address,
    last,
    'the newest learnt address is still the family choice',
  );
});
