import t from 'tap';
import { decodeBencode, encodeBencode, type NgOut } from '../../../src/ng/bencode.ts';
import { parseNgRequest } from '../../../src/ng/message.ts';

function parse(dict: NgOut): ReturnType<typeof parseNgRequest> {
  const decoded = decodeBencode(encodeBencode(dict));
  if (!decoded.ok) throw new Error(decoded.error);
  return parseNgRequest(decoded.value);
}

t.test('what Kamailio sends for an offer', async (t) => {
  const got = parse({
    sdp: 'v=0\r\n',
    'call-id': 'c1@host',
    'via-branch': 'z9hG4bK1',
    'from-tag': 'ft',
    command: 'offer',
    'sip-message-type': 'SIP request',
    flags: ['trust-address', 'SIP-source-address'],
    replace: ['origin', 'session-connection'],
    direction: ['internal', 'external'],
    'received-from': ['IP4', '192.0.2.7'],
    ICE: 'remove',
    'rtcp-mux': ['accept'],
    supports: ['load limit'],
  });
  if (!got.ok) throw new Error(got.error);
  const r = got.request;
  t.equal(r.command, 'offer');
  t.equal(r.callId, 'c1@host');
  t.equal(r.fromTag, 'ft');
  t.equal(r.toTag, undefined);
  t.equal(r.viaBranch, 'z9hG4bK1');
  t.equal(r.sdp, 'v=0\r\n');
  t.strictSame([...r.flags], ['trust address', 'sip source address']);
  t.strictSame([...r.replace], ['origin', 'session connection']);
  t.strictSame(r.direction, ['internal', 'external']);
  t.strictSame(r.receivedFrom, { family: 'IP4', address: '192.0.2.7' });
  t.equal(r.ice, 'remove');
  t.strictSame(r.rtcpMux, ['accept']);
  t.equal(r.codec, false);
});

t.test("what OpenSIPS's rtpengine module sends (modules/rtpengine/rtpengine.c)", async (t) => {
  // rtpengine_offer("trust-address replace-origin RTP/AVP address-family=IP4 media-address=...")
  const offer = parse({
    sdp: 'v=0\r\n',
    'call-id': 'c2@host',
    'received-from': ['IP4', '192.0.2.9'],
    'from-tag': 'ft2',
    command: 'offer',
    flags: ['trust-address'],
    replace: ['origin'],
    'transport-protocol': 'RTP/AVP',
    'address family': 'IP4',
    'media-address': '198.51.100.3',
  });
  if (!offer.ok) throw new Error(offer.error);
  t.equal(offer.request.command, 'offer');
  t.ok(offer.request.flags.has('trust address'));
  t.ok(offer.request.replace.has('origin'));
  t.equal(offer.request.transportProtocol, 'RTP/AVP');
  t.equal(offer.request.addressFamily, 'IP4');
  t.equal(offer.request.mediaAddress, '198.51.100.3');
  t.strictSame(offer.request.receivedFrom, { family: 'IP4', address: '192.0.2.9' });
  // rtpengine_delete("delete-delay=10"): an integer key.
  const del = parse({
    'call-id': 'c2@host',
    'from-tag': 'ft2',
    command: 'delete',
    'delete-delay': 10,
  });
  t.equal(del.ok && del.request.deleteDelay, 10);
});

t.test('keys with spaces, hyphens and underscores are the same key', async (t) => {
  const got = parse({
    command: 'start_recording',
    'call id': 'c',
    'address-family': 'ip6',
    limit: '5',
  });
  if (!got.ok) throw new Error(got.error);
  t.equal(got.request.command, 'start recording');
  t.equal(got.request.callId, 'c');
  t.equal(got.request.addressFamily, 'IP6');
  t.equal(got.request.limit, 5);
});

t.test('rtpp-flags: words are flags, key=value pairs are keys', async (t) => {
  const got = parse({
    command: 'offer',
    'rtpp-flags': 'trust-address replace-origin ICE=remove direction=internal direction=external',
  });
  if (!got.ok) throw new Error(got.error);
  t.ok(got.request.flags.has('trust address'));
  t.ok(got.request.flags.has('replace origin'));
  t.equal(got.request.ice, 'remove');
  t.strictSame(got.request.direction, ['internal', 'external']);
});

t.test('delete-delay: an integer, as a key or in rtpp-flags', async (t) => {
  const key = parse({ command: 'delete', 'delete-delay': 5 });
  t.equal(key.ok && key.request.deleteDelay, 5);
  const flag = parse({ command: 'delete', 'rtpp-flags': 'delete-delay=7' });
  t.equal(flag.ok && flag.request.deleteDelay, 7);
  const junk = parse({ command: 'delete', 'delete delay': 'soon' });
  t.equal(junk.ok && junk.request.deleteDelay, undefined, 'not a number: no delay');
});

t.test('record-call: yes/on/start, no/off/stop, or the bare flag', async (t) => {
  const value = (dict: NgOut): boolean | undefined => {
    const got = parse(dict);
    return got.ok ? got.request.recordCall : undefined;
  };
  t.equal(value({ command: 'offer', 'record-call': 'yes' }), true);
  t.equal(value({ command: 'offer', 'record call': 'ON' }), true);
  t.equal(value({ command: 'offer', 'rtpp-flags': 'record-call=off' }), false);
  t.equal(value({ command: 'offer', flags: ['record-call'] }), true);
  t.equal(value({ command: 'offer', 'record-call': 'maybe' }), undefined);
  t.equal(value({ command: 'offer' }), undefined);
});

t.test('codec manipulation is noticed', async (t) => {
  const got = parse({ command: 'offer', codec: { transcode: ['PCMA'] } });
  t.equal(got.ok && got.request.codec, true);
});

const bad: readonly (readonly [string, NgOut, string])[] = [
  ['a list', ['command', 'ping'], 'Could not decode bencode dictionary'],
  ['a string', 'ping', 'Could not decode bencode dictionary'],
  ['no command', { 'call-id': 'x' }, 'Dictionary contains no key "command"'],
  ['a number as command', { command: 5 }, 'Dictionary contains no key "command"'],
];

for (const [name, dict, error] of bad) {
  t.test(`${name} is refused with rtpengine's text`, async (t) => {
    t.strictSame(parse(dict), { ok: false, error });
  });
}

t.test('flags that stand for list keys, as rtpengine reads them', async (t) => {
  const got = parse({
    command: 'offer',
    flags: ['replace-origin', 'SDES-off', 'rtcp-mux-demux', 'RTP/SAVP'],
  });
  if (!got.ok) throw new Error(got.error);
  t.ok(got.request.replace.has('origin'));
  t.strictSame(got.request.sdes, ['off']);
  t.strictSame(got.request.rtcpMux, ['demux']);
  t.equal(got.request.transportProtocol, 'RTP/SAVP');
  t.equal(got.request.codec, false);
  const codec = parse({ command: 'offer', 'rtpp-flags': 'codec-strip-PCMA' });
  t.equal(codec.ok && codec.request.codec, true);
});
