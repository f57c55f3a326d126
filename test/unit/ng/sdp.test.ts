import t from 'tap';
import fc from 'fast-check';
import {
  parseSdp,
  rewriteSdp,
  type ParsedSdp,
  type StreamAnswer,
  unsupportedTransport,
} from '../../../src/ng/sdp.ts';

const sdp = (...lines: string[]): string => `${lines.join('\r\n')}\r\n`;

function parsed(text: string): ParsedSdp {
  const got = parseSdp(text);
  if (!got.ok) throw new Error(got.error);
  return got.sdp;
}

const plain = { replaceOrigin: false, rejectRtcpMux: false };
const relay = (index: number, port: number, address = '203.0.113.5'): StreamAnswer => ({
  index,
  port,
  address,
  family: address.includes(':') ? 6 : 4,
});

const AUDIO_VIDEO = sdp(
  'v=0',
  'o=alice 4611731400430051336 4611731400430051337 IN IP4 192.0.2.10',
  's=-',
  'c=IN IP4 192.0.2.10',
  't=0 0',
  'm=audio 4000 RTP/AVP 0 8 101',
  'a=rtpmap:101 telephone-event/8000',
  'a=rtcp:4001',
  'a=sendrecv',
  'm=video 0 RTP/AVP 96',
  'm=video 4002 RTP/AVP 96',
  'c=IN IP4 192.0.2.11',
  'a=rtpmap:96 H264/90000',
);

t.test(
  'streams: index, port, disabled, the address at media level before session level',
  async (t) => {
    const s = parsed(AUDIO_VIDEO);
    t.strictSame(
      s.streams.map((x) => [x.index, x.type, x.port, x.disabled, x.remote]),
      [
        [1, 'audio', 4000, false, { kind: 'address', address: '192.0.2.10', family: 4 }],
        [2, 'video', 0, true, { kind: 'address', address: '192.0.2.10', family: 4 }],
        [3, 'video', 4002, false, { kind: 'address', address: '192.0.2.11', family: 4 }],
      ],
    );
  },
);

t.test(
  'rewrite: ports, c= at both levels, a=rtcp, the disabled stream and o= left alone',
  async (t) => {
    const out = rewriteSdp(parsed(AUDIO_VIDEO), [relay(1, 35000), relay(3, 35002)], plain);
    t.equal(
      out,
      sdp(
        'v=0',
        // sdp-transform reads these as doubles; the line goes out as it came.
        'o=alice 4611731400430051336 4611731400430051337 IN IP4 192.0.2.10',
        's=-',
        'c=IN IP4 203.0.113.5',
        't=0 0',
        'm=audio 35000 RTP/AVP 0 8 101',
        'a=rtpmap:101 telephone-event/8000',
        'a=rtcp:35001 IN IP4 203.0.113.5',
        'a=sendrecv',
        'm=video 0 RTP/AVP 96',
        'm=video 35002 RTP/AVP 96',
        'c=IN IP4 203.0.113.5',
        'a=rtpmap:96 H264/90000',
      ),
    );
  },
);

t.test('replace origin puts the relay address into o=', async (t) => {
  const out = rewriteSdp(parsed(AUDIO_VIDEO), [relay(1, 35000)], { ...plain, replaceOrigin: true });
  t.match(out, /^o=alice 4611731400430051336 4611731400430051337 IN IP4 203\.0\.113\.5\r$/m);
});

t.test('media-level c= only: each stream gets its own, no session-level c= appears', async (t) => {
  const text = sdp(
    'v=0',
    'o=- 1 1 IN IP4 192.0.2.10',
    's=-',
    't=0 0',
    'm=audio 4000 RTP/AVP 0',
    'c=IN IP4 192.0.2.10',
  );
  const out = rewriteSdp(parsed(text), [relay(1, 35000)], plain);
  t.notMatch(out, /^c=.*\r\nt=/m);
  t.match(out, /m=audio 35000 RTP\/AVP 0\r\nc=IN IP4 203\.0\.113\.5\r\n/);
});

t.test('IPv6', async (t) => {
  const text = sdp(
    'v=0',
    'o=- 1 1 IN IP6 2001:db8::10',
    's=-',
    'c=IN IP6 2001:db8::10',
    't=0 0',
    'm=audio 4000 RTP/AVP 0',
  );
  const s = parsed(text);
  t.strictSame(s.streams[0]?.remote, { kind: 'address', address: '2001:db8::10', family: 6 });
  const out = rewriteSdp(s, [relay(1, 35000, '2001:db8::5')], plain);
  t.match(out, /^c=IN IP6 2001:db8::5\r$/m);
  t.match(out, /^m=audio 35000 /m);
});

t.test('hold: an all-zero c= is a held stream and stays all zeros', async (t) => {
  const text = sdp(
    'v=0',
    'o=- 1 2 IN IP4 192.0.2.10',
    's=-',
    'c=IN IP4 0.0.0.0',
    't=0 0',
    'm=audio 4000 RTP/AVP 0',
    'a=sendonly',
  );
  const s = parsed(text);
  t.strictSame(s.streams[0]?.remote, { kind: 'hold', family: 4 });
  const out = rewriteSdp(s, [relay(1, 35000)], plain);
  t.notMatch(out, /203\.0\.113\.5/);
  t.match(out, /^m=audio 35000 RTP\/AVP 0\r$/m);
  t.match(out, /^a=sendonly\r$/m);
});

t.test('ICE candidates and credentials are removed, rtcp-mux kept unless rejected', async (t) => {
  const text = sdp(
    'v=0',
    'o=- 1 1 IN IP4 192.0.2.10',
    's=-',
    'a=ice-ufrag:sess',
    'c=IN IP4 192.0.2.10',
    't=0 0',
    'm=audio 4000 RTP/AVP 0',
    'a=ice-ufrag:abcd',
    'a=ice-pwd:0123456789012345678901',
    'a=ice-options:trickle',
    'a=candidate:1 1 UDP 2130706431 192.0.2.10 4000 typ host',
    'a=candidate:2 1 UDP 1694498815 198.51.100.1 4000 typ srflx raddr 192.0.2.10 rport 4000',
    'a=remote-candidates:1 192.0.2.20 5000',
    'a=end-of-candidates',
    'a=rtcp-mux',
  );
  const out = rewriteSdp(parsed(text), [relay(1, 35000)], plain);
  t.notMatch(out, /candidate|ice-/);
  t.match(out, /^a=rtcp-mux\r$/m);
  const rejected = rewriteSdp(parsed(text), [relay(1, 35000)], { ...plain, rejectRtcpMux: true });
  t.notMatch(rejected, /rtcp-mux/);
});

t.test('transports: SRTP and DTLS are named, plain RTP and UDPTL pass', async (t) => {
  const of = (proto: string): string | undefined =>
    unsupportedTransport(
      parsed(
        sdp(
          'v=0',
          'o=- 1 1 IN IP4 192.0.2.1',
          's=-',
          'c=IN IP4 192.0.2.1',
          't=0 0',
          `m=audio 4000 ${proto} 0`,
        ),
      ),
    );
  t.equal(of('RTP/AVP'), undefined);
  t.equal(of('RTP/AVPF'), undefined);
  t.equal(of('udptl'), undefined);
  t.match(of('RTP/SAVP'), /SRTP\/DTLS is not supported: media 1 uses RTP\/SAVP/);
  t.match(of('UDP/TLS/RTP/SAVPF'), /SRTP\/DTLS is not supported/);
  t.match(of('TCP/MSRP'), /transport TCP\/MSRP of media 1 is not supported/);
});

const malformed: readonly (readonly [string, string, string])[] = [
  ['not SDP', 'hello world', 'Failed to parse SDP'],
  ['no v=0 first', sdp('o=- 1 1 IN IP4 192.0.2.1', 'v=0'), 'Failed to parse SDP'],
  ['a line without type', sdp('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 'junk'), 'Failed to parse SDP'],
  ['an m= line without port', sdp('v=0', 's=-', 'm=audio RTP/AVP 0'), 'Failed to parse SDP'],
  [
    'a port above 65535',
    sdp('v=0', 'c=IN IP4 192.0.2.1', 'm=audio 70000 RTP/AVP 0'),
    'Failed to parse SDP',
  ],
  [
    'a stream without c=',
    sdp('v=0', 's=-', 'm=audio 4000 RTP/AVP 0'),
    'Incomplete SDP specification',
  ],
];

for (const [name, text, error] of malformed) {
  t.test(`malformed SDP: ${name}`, async (t) => {
    t.strictSame(parseSdp(text), { ok: false, error });
  });
}

t.test('parseSdp and rewriteSdp never throw, whatever the lines', async (t) => {
  const line = fc.oneof(
    fc.constantFrom(
      'v=0',
      'o=- 1 1 IN IP4 192.0.2.1',
      'c=IN IP4 192.0.2.1',
      'c=IN IP6 ::',
      'c=IN IP4 host.example',
      'm=audio 4000 RTP/AVP 0',
      'm=video 0 RTP/AVP 96',
      'm=audio 99999999999999999999 RTP/AVP 0',
      'a=rtcp:4001',
      'a=candidate:1 1 UDP 1 192.0.2.1 4000 typ host',
      'a=sendonly',
    ),
    fc.string({ maxLength: 20 }).map((s) => `a=${s}`),
    fc.string({ maxLength: 20 }),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
      const got = parseSdp(sdp('v=0', ...lines));
      if (!got.ok) return true;
      const answers = got.sdp.streams.filter((s) => !s.disabled).map((s) => relay(s.index, 35000));
      return (
        typeof rewriteSdp(got.sdp, answers, { replaceOrigin: true, rejectRtcpMux: true }) ===
        'string'
      );
    }),
    { numRuns: 1000 },
  );
  t.pass('no input threw');
});
