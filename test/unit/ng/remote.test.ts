import t from 'tap';
import type { NgRequest } from '../../../src/ng/message.ts';
import { isPrivateAddress, remoteFor } from '../../../src/ng/remote.ts';
import type { SdpStream } from '../../../src/ng/sdp.ts';

const stream = (remote: SdpStream['remote']): SdpStream => ({
  index: 1,
  type: 'audio',
  protocol: 'RTP/AVP',
  port: 4000,
  disabled: false,
  remote,
  payloadTypes: [0],
  ptime: undefined,
});

const request = (flags: string[], received?: string): NgRequest => ({
  command: 'offer',
  flags: new Set(flags),
  replace: new Set(),
  direction: [],
  rtcpMux: [],
  sdes: [],
  codec: false,
  all: false,
  player: { blob: false, dbId: false },
  ...(received === undefined ? {} : { receivedFrom: { family: 'IP4', address: received } }),
});

const privateSdp = stream({ kind: 'address', address: '192.168.1.20', family: 4 });
const publicSdp = stream({ kind: 'address', address: '198.51.100.20', family: 4 });

const cases: readonly (readonly [string, SdpStream, NgRequest, object])[] = [
  ['public SDP address', publicSdp, request([], '203.0.113.9'), { address: '198.51.100.20' }],
  [
    'private SDP address, public source',
    privateSdp,
    request([], '203.0.113.9'),
    { address: '203.0.113.9' },
  ],
  [
    'private SDP address, trust-address',
    privateSdp,
    request(['trust address'], '203.0.113.9'),
    { address: '192.168.1.20' },
  ],
  ['private SDP address, no received from', privateSdp, request([]), { address: '192.168.1.20' }],
  [
    'private SDP address, private source',
    privateSdp,
    request([], '10.1.1.1'),
    { address: '192.168.1.20' },
  ],
  [
    'SIP-source-address',
    publicSdp,
    request(['sip source address'], '203.0.113.9'),
    { address: '203.0.113.9' },
  ],
  [
    'media address over the SDP and received from, even with trust-address',
    privateSdp,
    { ...request(['trust address'], '203.0.113.9'), mediaAddress: '198.51.100.77' },
    { address: '198.51.100.77', family: 4, port: 4000 },
  ],
  [
    'media address of the other family (the dispatcher refuses it)',
    publicSdp,
    { ...request([]), mediaAddress: '2001:db8::7' },
    { address: '2001:db8::7', family: 6 },
  ],
  [
    'a media address that is no address is ignored',
    publicSdp,
    { ...request([]), mediaAddress: 'media.example.com' },
    { address: '198.51.100.20' },
  ],
  ['hold', stream({ kind: 'hold', family: 4 }), request([], '203.0.113.9'), { kind: 'hold' }],
  ['a name in c=', stream({ kind: 'unknown', family: 4 }), request([]), { kind: 'ignored' }],
  [
    'a name in c=, received from given',
    stream({ kind: 'unknown', family: 4 }),
    request([], '203.0.113.9'),
    { kind: 'ignored' },
  ],
];

for (const [name, s, r, want] of cases) {
  t.test(name, async (t) => {
    t.match(remoteFor(s, r), want);
  });
}

t.test('the SDP port is kept', async (t) => {
  t.strictSame(remoteFor(privateSdp, request([], '203.0.113.9')), {
    kind: 'address',
    address: '203.0.113.9',
    port: 4000,
    family: 4,
  });
});

t.test('private addresses', async (t) => {
  for (const a of [
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '100.64.0.1',
    '169.254.1.1',
    'fd00::1',
    'fe80::1',
  ]) {
    t.ok(isPrivateAddress(a), a);
  }
  for (const a of ['172.32.0.1', '8.8.8.8', '127.0.0.1', '2001:db8::1', 'fd::1', 'name']) {
    t.notOk(isPrivateAddress(a), a);
  }
});
