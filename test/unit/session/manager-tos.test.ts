import t from 'tap';
import { makeManager } from '../../helpers/manager.ts';
import type { ConfiguredAddress, OfferRequest } from '../../../src/session/manager.ts';
import type { PacketMarker } from '../../../src/session/mark-types.ts';

/** A manager with `-t 184` over fake media, and a marker that records what it is told. */
function setup(address: ConfiguredAddress) {
  const marks = new Map<object, string>();
  const marker: PacketMarker = {
    mark: (owner, addr, port, tos) => {
      marks.set(owner, `${addr}:${String(port)}=${String(tos)}`);
    },
    unmark: (owner) => {
      marks.delete(owner);
    },
  };
  const { manager } = makeManager({
    options: { addresses: [address], tos: 184 },
    deps: { marker },
  });
  return { manager, marks: () => [...marks.values()].sort() };
}

const offer = (callId: string, family: 4 | 6, tag2?: string): OfferRequest => ({
  callId,
  tag1: 'ft',
  ...(tag2 === undefined ? {} : { tag2 }),
  remote:
    family === 4
      ? { kind: 'address', address: '192.0.2.1', port: 4000, family: 4 }
      : { kind: 'address', address: '2001:db8::1', port: 4000, family: 6 },
  weak: false,
  local: { kind: 'default' },
  newPorts: false,
});

t.test(
  'legs are marked with -t when they bind, with S tos after, and unmarked at the end',
  async (t) => {
    const { manager, marks } = setup({ address: '127.0.0.1', family: 4 });
    const u = await manager.update(offer('c', 4));
    t.same(marks(), [`127.0.0.1:${String(u.port)}=184`], 'the U leg, with -t');
    // S tos=32 on the U: the leg facing the U's party, not bound yet, keeps it for its sockets.
    t.ok(manager.setLegTos(u.session, u.forwardLeg, 32));
    t.equal(marks().length, 1, 'nothing to mark before the bind');
    const l = await manager.lookup(offer('c', 4, 'tt'));
    t.ok(l !== undefined);
    t.same(marks(), [`127.0.0.1:${String(l?.port)}=32`, `127.0.0.1:${String(u.port)}=184`].sort());
    t.ok(manager.setLegTos(u.session, 0, 96), 'the other leg (Sr)');
    t.same(marks(), [`127.0.0.1:${String(l?.port)}=32`, `127.0.0.1:${String(u.port)}=96`].sort());
    t.ok(manager.delete('c', 'ft', 'tt', false));
    t.same(marks(), [], 'unmarked when the session ends');
  },
);

t.test('S tos on an IPv6 leg is refused, as in the reference', async (t) => {
  const { manager, marks } = setup({ address: '::1', family: 6 });
  const u = await manager.update(offer('c6', 6));
  t.same(marks(), [], 'IPv6 legs are never marked');
  t.notOk(manager.setLegTos(u.session, u.forwardLeg, 32));
});
