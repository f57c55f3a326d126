import fc from 'fast-check';
import { pino } from 'pino';
import t from 'tap';
import type { LocalChoice } from '../../../src/base/net.ts';
import { RelayError } from '../../../src/session/errors.ts';
import type { LegAnswer, OfferRequest } from '../../../src/session/manager.ts';
import type { FoundSession } from '../../../src/session/manager-types.ts';
import type { Session } from '../../../src/session/session.ts';
import {
  decodeBencode,
  encodeBencode,
  isDict,
  bytesText,
  type NgOut,
} from '../../../src/ng/bencode.ts';
import { NgDispatcher } from '../../../src/ng/dispatch-ng.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

/** A manager that records the U and L it is asked for and answers port 30000 + 2n. */
class FakeManager {
  readonly calls: { op: 'update' | 'lookup'; req: OfferRequest }[] = [];
  readonly sessions = new Map<string, Session[]>();
  failAt: number | undefined;
  deletedCalls: string[] = [];

  answer(op: 'update' | 'lookup', req: OfferRequest): LegAnswer {
    this.calls.push({ op, req });
    if (this.failAt === this.calls.length) throw new RelayError('ERR_NO_PORTS_NEW');
    const existing = this.sessions.get(req.callId)?.find((s) => s.tag === req.tag1);
    const session =
      (op === 'lookup' ? existing : undefined) ??
      ({ tag: req.tag1, callId: req.callId, createdAt: 0 } as unknown as Session);
    if (op === 'update') {
      this.sessions.set(req.callId, [...(this.sessions.get(req.callId) ?? []), session]);
    }
    return {
      session,
      forwardLeg: 1,
      port: 30000 + 2 * this.calls.length,
      address: req.local.kind === 'family' && req.local.family === 6 ? '2001:db8::5' : '192.0.2.5',
      family: req.local.kind === 'family' && req.local.family === 6 ? 6 : 4,
      wildcard: false,
    };
  }

  readonly manager = {
    update: (req: OfferRequest) => Promise.resolve(this.answer('update', req)),
    lookup: (req: OfferRequest) => Promise.resolve(this.answer('lookup', req)),
    destroy: () => undefined,
    deleteCall: (callId: string) => {
      this.deletedCalls.push(callId);
      const n = this.sessions.get(callId)?.length ?? 0;
      this.sessions.delete(callId);
      return n;
    },
    sessionsOf: (callId: string) => this.sessions.get(callId) ?? [],
    sessions: () => [...this.sessions.values()].flat()[Symbol.iterator](),
    size: 0,
    hasLocalFamily: (family: number) => family === 4 || family === 6,
    kernelCounts: () => Promise.resolve(),
    ended: () => Promise.resolve(),
    recordCall: (callId: string) => {
      this.recorded.push(callId);
      return Promise.resolve(this.recordable ? 2 * (this.sessions.get(callId)?.length ?? 0) : 0);
    },
    stopRecordingCall: (callId: string) => {
      this.stopped.push(callId);
      return 0;
    },
    play: (
      found: FoundSession,
      prompt: string,
      codecs: readonly number[] | 'session',
      count: number,
      packetMs?: number,
    ) => {
      if (this.noPrompt) return Promise.reject(new RelayError('ERR_PLAYBACK'));
      this.played.push([found.session.tag, found.legT1, prompt, codecs, count, packetMs]);
      this.playing.add(`${found.session.tag}/${String(found.legT1)}`);
      return Promise.resolve(1234);
    },
    stopPlayback: (found: FoundSession) =>
      this.playing.delete(`${found.session.tag}/${String(found.legT1)}`),
    blockMedia: (found: readonly FoundSession[], blocked: boolean) => {
      for (const f of found) {
        const key = `${f.session.tag}/${String(f.legT1)}`;
        if (blocked) this.blocked.add(key);
        else this.blocked.delete(key);
      }
      return Promise.resolve();
    },
  };
  readonly blocked = new Set<string>();
  noPrompt = false;
  readonly played: unknown[][] = [];
  readonly playing = new Set<string>();
  recordable = true;
  readonly recorded: string[] = [];
  readonly stopped: string[] = [];
}

function dispatcher(fake: FakeManager, bridge = false): NgDispatcher {
  return new NgDispatcher({
    manager: fake.manager,
    stats: new GlobalStats(),
    bridge,
    defaultFamily: 4,
    now: () => 0,
    wallNow: () => 0,
    logger: pino({ level: 'silent' }),
  });
}

async function run(d: NgDispatcher, dict: NgOut): Promise<Record<string, string>> {
  const { reply } = await d.handle(encodeBencode(dict));
  const decoded = decodeBencode(reply);
  if (!decoded.ok || !isDict(decoded.value)) throw new Error('reply is no dictionary');
  return Object.fromEntries(
    [...decoded.value].map(([k, v]) => [
      k,
      bytesText(v) ?? (typeof v === 'number' ? String(v) : ''),
    ]),
  );
}

const SDP = [
  'v=0',
  'o=- 1 1 IN IP4 192.0.2.10',
  's=-',
  'c=IN IP4 192.0.2.10',
  't=0 0',
  'm=audio 4000 RTP/AVP 0',
  'm=video 0 RTP/AVP 96',
  'm=video 4002 RTP/AVP 96',
  '',
].join('\r\n');

t.test('offer: one U per active section, tagged ;N, the SDP address and port', async (t) => {
  const fake = new FakeManager();
  const reply = await run(dispatcher(fake), {
    command: 'offer',
    'call-id': 'c1',
    'from-tag': 'ft',
    sdp: SDP,
  });
  t.equal(reply['result'], 'ok');
  t.strictSame(
    fake.calls.map((c) => [c.op, c.req.tag1, c.req.tag2, c.req.remote, c.req.local]),
    [
      [
        'update',
        'ft;1',
        undefined,
        { kind: 'address', address: '192.0.2.10', port: 4000, family: 4 },
        { kind: 'default' },
      ],
      [
        'update',
        'ft;3',
        undefined,
        { kind: 'address', address: '192.0.2.10', port: 4002, family: 4 },
        { kind: 'default' },
      ],
    ],
  );
  t.match(
    reply['sdp'],
    /m=audio 30002 RTP\/AVP 0\r\nm=video 0 RTP\/AVP 96\r\nm=video 30004 RTP\/AVP 96/,
  );
});

t.test('answer: one L per section with both tags', async (t) => {
  const fake = new FakeManager();
  const d = dispatcher(fake);
  await run(d, { command: 'offer', 'call-id': 'c1', 'from-tag': 'ft', sdp: SDP });
  const reply = await run(d, {
    command: 'answer',
    'call-id': 'c1',
    'from-tag': 'ft',
    'to-tag': 'tt',
    sdp: SDP,
  });
  t.equal(reply['result'], 'ok');
  t.strictSame(
    fake.calls.slice(2).map((c) => [c.op, c.req.tag1, c.req.tag2]),
    [
      ['lookup', 'ft;1', 'tt;1'],
      ['lookup', 'ft;3', 'tt;3'],
    ],
  );
});

t.test('symmetric/asymmetric flags, IPv6, bridge-mode direction', async (t) => {
  const fake = new FakeManager();
  await run(dispatcher(fake), {
    command: 'offer',
    'call-id': 'c6',
    'from-tag': 'ft',
    flags: ['asymmetric'],
    sdp: SDP.replace(/IN IP4 192\.0\.2\.10/g, 'IN IP6 2001:db8::10'),
  });
  t.equal(fake.calls[0]?.req.asymmetric, true);
  t.strictSame(fake.calls[0]?.req.local, { kind: 'family', family: 6 });
  const bridged = new FakeManager();
  await run(dispatcher(bridged, true), {
    command: 'offer',
    'call-id': 'cb',
    'from-tag': 'ft',
    direction: ['external', 'internal'],
    sdp: SDP,
  });
  t.strictSame(bridged.calls[0]?.req.local, {
    kind: 'interfaces',
    first: 'e',
    second: 'i',
  } satisfies LocalChoice);
  t.match(
    await run(dispatcher(new FakeManager(), true), {
      command: 'offer',
      'call-id': 'cx',
      'from-tag': 'ft',
      direction: ['pub', 'priv'],
      sdp: SDP,
    }),
    { result: 'error', 'error-reason': /unknown interface "pub"/ },
  );
});

t.test(
  'no ports for the second section: rtpengine text, and the new call is removed',
  async (t) => {
    const fake = new FakeManager();
    fake.failAt = 2;
    const reply = await run(dispatcher(fake), {
      command: 'offer',
      'call-id': 'c2',
      'from-tag': 'ft',
      sdp: SDP,
    });
    t.strictSame(reply, { result: 'error', 'error-reason': 'Ran out of ports' });
    t.strictSame(fake.deletedCalls, ['c2']);
  },
);

t.test('missing keys get rtpengine texts', async (t) => {
  const d = dispatcher(new FakeManager());
  const cases: readonly (readonly [NgOut, string])[] = [
    [{ command: 'offer', 'call-id': 'c', 'from-tag': 'f' }, 'No SDP body in message'],
    [{ command: 'offer', 'from-tag': 'f', sdp: SDP }, 'No call-id in message'],
    [{ command: 'offer', 'call-id': 'c', sdp: SDP }, 'No from-tag in message'],
    [{ command: 'answer', 'call-id': 'c', 'from-tag': 'f', sdp: SDP }, 'No to-tag in message'],
    [
      { command: 'answer', 'call-id': 'nosuch', 'from-tag': 'f', 'to-tag': 't', sdp: SDP },
      'Unknown call-id',
    ],
    [{ command: 'query' }, 'No call-id in message'],
    [{ command: 'list', limit: -1 }, 'invalid limit, must be >= 0'],
  ];
  for (const [dict, reason] of cases) {
    t.strictSame(await run(d, dict), { result: 'error', 'error-reason': reason }, reason);
  }
});

t.test('handle() answers any bytes with a dictionary and never rejects', async (t) => {
  const d = dispatcher(new FakeManager());
  const pieces = fc.oneof(
    fc.constantFrom(
      'd',
      'l',
      'e',
      'i',
      '7:command',
      '5:offer',
      '4:ping',
      '3:sdp',
      '1:',
      'i-1e',
      '0:',
    ),
    fc.string({ maxLength: 6 }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(pieces, { maxLength: 20 }), async (parts) => {
      const { reply } = await d.handle(Buffer.from(parts.join(''), 'latin1'));
      const decoded = decodeBencode(reply);
      return decoded.ok && isDict(decoded.value) && decoded.value.has('result');
    }),
    { numRuns: 500 },
  );
  t.pass('every input got a dictionary with a result');
});

t.test('start and stop recording: the whole call, as R and N do', async (t) => {
  const fake = new FakeManager();
  const d = dispatcher(fake);
  await run(d, { command: 'offer', 'call-id': 'cr', 'from-tag': 'ft', sdp: SDP });
  t.strictSame(await run(d, { command: 'start recording', 'call-id': 'cr' }), { result: 'ok' });
  t.strictSame(await run(d, { command: 'stop recording', 'call-id': 'cr' }), { result: 'ok' });
  t.strictSame([fake.recorded, fake.stopped], [['cr'], ['cr']]);
  t.strictSame(await run(d, { command: 'start recording', 'call-id': 'nosuch' }), {
    result: 'error',
    'error-reason': 'Unknown call-id',
  });
  fake.recordable = false;
  t.match(await run(d, { command: 'start recording', 'call-id': 'cr' }), {
    result: 'error',
    'error-reason': /recording directory \(-r\)/,
  });
});

t.test('an IPv6 stream on hold binds on the IPv6 address', async (t) => {
  const fake = new FakeManager();
  const reply = await run(dispatcher(fake), {
    command: 'offer',
    'call-id': 'ch',
    'from-tag': 'ft',
    sdp: SDP.replace(/IN IP4 192\.0\.2\.10/g, 'IN IP6 ::'),
  });
  t.equal(reply['result'], 'ok');
  t.strictSame(fake.calls[0]?.req.remote, { kind: 'hold' });
  t.strictSame(fake.calls[0]?.req.local, { kind: 'family', family: 6 });
  t.match(reply['sdp'], /^c=IN IP6 ::\r$/m, 'the hold goes on');
});

t.test('block media and unblock media: a party, or the whole call, in every section', async (t) => {
  const fake = new FakeManager();
  const d = dispatcher(fake);
  await run(d, { command: 'offer', 'call-id': 'c7', 'from-tag': 'ft', sdp: SDP });
  await run(d, { command: 'answer', 'call-id': 'c7', 'from-tag': 'ft', 'to-tag': 'tt', sdp: SDP });
  const blocked = (): string[] => [...fake.blocked].sort();

  const ok = { result: 'ok' };
  t.strictSame(await run(d, { 'call-id': 'c7', command: 'block media', 'from-tag': 'tt' }), ok);
  // The callee is the other party of both sessions (audio and video): leg 0 faces it.
  t.strictSame(blocked(), ['ft;1/0', 'ft;3/0'], "the from-tag's party, video included");
  t.strictSame(await run(d, { 'call-id': 'c7', command: 'unblock media', 'from-tag': 'tt' }), ok);
  t.strictSame(blocked(), []);

  t.strictSame(await run(d, { 'call-id': 'c7', command: 'block media' }), ok);
  t.strictSame(
    blocked(),
    ['ft;1/0', 'ft;1/1', 'ft;3/0', 'ft;3/1'],
    'no from-tag: the entire call, as rtpengine',
  );
  await run(d, { 'call-id': 'c7', command: 'unblock media', 'from-tag': 'ft' });
  t.strictSame(blocked(), ['ft;1/0', 'ft;3/0'], 'unblocking one party leaves the other blocked');
  await run(d, { 'call-id': 'c7', command: 'unblock media', all: 'all' });
  t.strictSame(blocked(), []);

  const errors: readonly (readonly [NgOut, string])[] = [
    [{ command: 'block media', 'from-tag': 'ft' }, 'No call-id in message'],
    [{ command: 'block media', 'call-id': 'nope' }, 'Unknown call-ID'],
    [
      { command: 'unblock media', 'call-id': 'c7', 'from-tag': 'zz' },
      'From-tag given, but no such tag exists',
    ],
  ];
  for (const [dict, reason] of errors) {
    t.strictSame(await run(d, dict), { 'error-reason': reason, result: 'error' }, reason);
  }
  t.strictSame(blocked(), [], 'an error blocks nothing');

  await run(d, { command: 'offer', 'call-id': 'c8', 'from-tag': 'f8', sdp: SDP });
  t.strictSame(await run(d, { 'call-id': 'c8', command: 'block media', all: 'all' }), ok);
  t.strictSame(
    blocked(),
    ['f8;1/0', 'f8;1/1', 'f8;3/0', 'f8;3/1'],
    'the whole call before the answer: both legs, the callee not named yet',
  );
});

t.test(
  'play media and stop media: the selected party hears a prompt in its own codecs',
  async (t) => {
    const fake = new FakeManager();
    const d = dispatcher(fake);
    const callerSdp = SDP.replace('RTP/AVP 0\r\n', 'RTP/AVP 8 0 101\r\na=ptime:20\r\n');
    const calleeSdp = SDP.replace('RTP/AVP 0\r\n', 'RTP/AVP 0 101\r\n');
    await run(d, { command: 'offer', 'call-id': 'c9', 'from-tag': 'ft', sdp: callerSdp });
    await run(d, {
      command: 'answer',
      'call-id': 'c9',
      'from-tag': 'ft',
      'to-tag': 'tt',
      sdp: calleeSdp,
    });
    const base = { 'call-id': 'c9', file: '/prompts/hello' };

    const toCaller = await run(d, { ...base, command: 'play media', 'from-tag': 'ft' });
    t.strictSame(toCaller, { duration: '1234', result: 'ok' });
    // The caller is the session's own party: leg 1 faces it; its codecs and ptime, audio only.
    t.strictSame(fake.played.shift(), ['ft;1', 1, '/prompts/hello', [8, 0, 101], 1, 20]);
    t.equal(fake.played.length, 0, 'the video stream plays nothing');

    await run(d, {
      ...base,
      command: 'play media',
      'from-tag': 'tt',
      'repeat-times': 3,
      file: '/prompts/hello.8',
    });
    t.strictSame(
      fake.played.shift(),
      ['ft;1', 0, '/prompts/hello', [0, 101], 3, -1],
      'the callee does not take 8',
    );
    await run(d, { ...base, command: 'play media', 'from-tag': 'ft', file: '/prompts/hello.0' });
    t.strictSame(fake.played.shift()?.[3], [0, 8, 101], 'the file name asks for 0 first');

    t.strictSame(await run(d, { 'call-id': 'c9', command: 'stop media', 'from-tag': 'tt' }), {
      result: 'ok',
    });
    t.strictSame(await run(d, { 'call-id': 'c9', command: 'stop media', 'from-tag': 'tt' }), {
      'error-reason': 'Not currently playing media',
      result: 'error',
    });
    await run(d, { ...base, command: 'play media', all: 'all' });
    t.strictSame(
      fake.played.splice(0).map((p) => [p[0], p[1]]),
      [
        ['ft;1', 1],
        ['ft;1', 0],
      ],
      'all: both parties',
    );

    const errors: readonly (readonly [NgOut, string])[] = [
      [{ command: 'play media', file: 'x' }, 'No call-id in message'],
      [{ ...base, command: 'play media', 'call-id': 'nope', 'from-tag': 'ft' }, 'Unknown call-ID'],
      [{ ...base, command: 'play media' }, 'No participant party specified'],
      [
        { ...base, command: 'play media', 'from-tag': 'zz' },
        'From-tag given, but no such tag exists',
      ],
      [{ 'call-id': 'c9', command: 'play media', 'from-tag': 'ft' }, 'No media file specified'],
      [
        { ...base, command: 'play media', 'from-tag': 'ft', blob: 'RIFF' },
        'media blobs are not supported: give a prompt file (file), docs/playback.md',
      ],
      [
        { ...base, command: 'play media', 'from-tag': 'ft', 'db-id': 5 },
        'media from a database (db-id) is not supported',
      ],
      [
        { ...base, command: 'play media', 'from-tag': 'ft', 'repeat-times': 0 },
        'repeat-times must be 1 or more',
      ],
      [
        { ...base, command: 'play media', 'from-tag': 'ft', 'start-pos': 2000 },
        'start-pos is not supported',
      ],
    ];
    for (const [dict, reason] of errors) {
      t.strictSame(await run(d, dict), { 'error-reason': reason, result: 'error' }, reason);
    }
    fake.noPrompt = true;
    t.strictSame(await run(d, { ...base, command: 'play media', 'from-tag': 'tt' }), {
      'error-reason':
        'Failed to start media playback: no prompt file /prompts/hello.PT for payload types 0 101',
      result: 'error',
    });
  },
);
