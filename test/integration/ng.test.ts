/**
 * The ng protocol (docs/ng.md) against a real daemon on loopback, as Kamailio's rtpengine module
 * speaks it: offer and answer with real SDP, media relayed both ways, query, list, delete,
 * retransmissions, malformed input, refusals, and an rtpproxy-protocol call beside it.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { waitUntil } from '../helpers/control.ts';
import { type RunningDaemon, startDaemon, type Teardown } from '../helpers/daemon.ts';
import { waitFor } from '../helpers/netns.ts';
import { mediaPort, NgClient, type NgReplyDict, sdpOf } from '../helpers/ng.ts';
import { tempDir } from '../helpers/tmp.ts';
import { Peer, portWindow, rtpPacket, uniqueCall, waitPortsFree } from '../helpers/udp.ts';

interface Rig {
  readonly d: RunningDaemon;
  readonly ng: NgClient;
}

async function rig(test: Teardown, window = 90, extra: readonly string[] = []): Promise<Rig> {
  const d = await startDaemon(test, [
    '-l',
    '127.0.0.1',
    '-s',
    'ng:udp:127.0.0.1:0',
    ...portWindow(window),
    ...extra,
  ]);
  const port = d.daemon.controlPort(1);
  if (port === undefined) throw new Error('no ng port');
  return { d, ng: await NgClient.open(test, port) };
}

/** One party's SDP: audio on `port`, optionally a disabled video stream. */
function partySdp(port: number, extra: string[] = []): string {
  return sdpOf(
    'v=0',
    'o=- 3937005870 3937005870 IN IP4 127.0.0.1',
    's=call',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${String(port)} RTP/AVP 0 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    `a=rtcp:${String(port + 1)}`,
    'a=sendrecv',
    ...extra,
  );
}

function text(reply: NgReplyDict, key: string): string {
  const value = reply[key];
  if (typeof value !== 'string') throw new Error(`no ${key} in ${JSON.stringify(reply)}`);
  return value;
}

interface AnsweredCall {
  readonly call: ReturnType<typeof uniqueCall>;
  readonly caller: Peer;
  readonly callee: Peer;
  /** The daemon's ports facing each party. */
  readonly toCaller: number;
  readonly toCallee: number;
  /** The four media ports of the call. */
  readonly ports: readonly number[];
  /** One RTP packet each way, checked on arrival. */
  readonly relay: () => Promise<void>;
}

/** One RTP packet each way through the daemon's ports, each checked on arrival. */
async function exchange(
  legs: { caller: Peer; callee: Peer; toCaller: number; toCallee: number },
  seq: number,
): Promise<void> {
  const { caller, callee, toCaller, toCallee } = legs;
  const fromCaller = rtpPacket({ seq, ssrc: 0x1111 });
  await caller.send(fromCaller, toCaller);
  await callee.expect(fromCaller, toCallee);
  const fromCallee = rtpPacket({ seq, ssrc: 0x2222, fill: 0x55 });
  await callee.send(fromCallee, toCallee);
  await caller.expect(fromCallee, toCaller);
}

/** An ng call offered and answered between two peers on loopback. */
async function answeredCall(test: Teardown, ng: NgClient, prefix: string): Promise<AnsweredCall> {
  const call = uniqueCall(prefix);
  const caller = await Peer.open(test);
  const callee = await Peer.open(test);
  const base = { 'call-id': call.id, 'from-tag': call.from };
  const offer = await ng.request({ ...base, command: 'offer', sdp: partySdp(caller.port) });
  const toCallee = mediaPort(text(offer, 'sdp'), 1);
  const answer = await ng.request({
    ...base,
    command: 'answer',
    'to-tag': call.to,
    sdp: partySdp(callee.port),
  });
  const toCaller = mediaPort(text(answer, 'sdp'), 1);
  let seq = 0;
  const relay = async (): Promise<void> => {
    seq += 1;
    await exchange({ caller, callee, toCaller, toCallee }, seq);
  };
  return {
    call,
    caller,
    callee,
    toCaller,
    toCallee,
    ports: [toCallee, toCallee + 1, toCaller, toCaller + 1],
    relay,
  };
}

t.test('ng', async (t) => {
  const { d, ng } = await rig(t);

  t.test('ping answers pong', async (t) => {
    t.strictSame(await ng.request({ command: 'ping' }), { result: 'pong' });
  });

  t.test('offer, answer, media both ways, query, list, delete', async (t) => {
    const call = uniqueCall('ngcall');
    const caller = await Peer.open(t);
    const callee = await Peer.open(t);
    const offer = await ng.request({
      command: 'offer',
      'call-id': call.id,
      'from-tag': call.from,
      sdp: partySdp(caller.port, ['m=video 0 RTP/AVP 96']),
      flags: ['trust-address'],
      replace: ['origin'],
      'received-from': ['IP4', '127.0.0.1'],
    });
    t.equal(offer['result'], 'ok', JSON.stringify(offer));
    const offerSdp = text(offer, 'sdp');
    const toCallee = mediaPort(offerSdp, 1);
    t.match(offerSdp, /^o=- 3937005870 3937005870 IN IP4 127\.0\.0\.1\r$/m);
    t.match(
      offerSdp,
      new RegExp(`^a=rtcp:${String(toCallee + 1)} IN IP4 127\\.0\\.0\\.1\\r$`, 'm'),
    );
    t.equal(mediaPort(offerSdp, 2), 0, 'the disabled stream stays disabled');
    t.not(toCallee, caller.port);

    const answer = await ng.request({
      command: 'answer',
      'call-id': call.id,
      'from-tag': call.from,
      'to-tag': call.to,
      sdp: partySdp(callee.port, ['m=video 0 RTP/AVP 96']),
    });
    t.equal(answer['result'], 'ok', JSON.stringify(answer));
    const toCaller = mediaPort(text(answer, 'sdp'), 1);

    for (let seq = 1; seq <= 3; seq += 1) {
      await exchange({ caller, callee, toCaller, toCallee }, seq);
    }

    const query = await ng.request({ command: 'query', 'call-id': call.id, 'from-tag': call.from });
    t.equal(query['result'], 'ok');
    t.type(query['created'], 'number');
    t.match(query['totals'], {
      RTP: { packets: 6, bytes: 6 * 172, errors: 0 },
      RTCP: { packets: 0 },
    });
    t.match(query['tags'], { [call.from]: { tag: call.from }, [call.to]: { tag: call.to } });

    const list = await ng.request({ command: 'list' });
    t.ok((list['calls'] as string[]).includes(call.id));

    const deleted = await ng.request({
      command: 'delete',
      'call-id': call.id,
      'from-tag': call.from,
      'to-tag': call.to,
    });
    t.equal(deleted['result'], 'ok');
    t.match(deleted['totals'], { RTP: { packets: 6 } });
    await waitPortsFree([toCallee, toCallee + 1, toCaller, toCaller + 1], 'the call ports let go');
    t.strictSame(await ng.request({ command: 'query', 'call-id': call.id }), {
      result: 'error',
      'error-reason': 'Unknown call-id',
    });
    t.strictSame(await ng.request({ command: 'delete', 'call-id': call.id }), {
      result: 'ok',
      warning: "Call-ID not found or tags didn't match",
    });
    t.strictSame(await ng.request({ command: 'delete', 'call-id': call.id, flags: ['fatal'] }), {
      result: 'error',
      'error-reason': "Call-ID not found or tags didn't match",
    });
  });

  t.test("delete with either party's from-tag alone ends the call (a late offer)", async (t) => {
    for (const byeFrom of ['caller', 'callee'] as const) {
      const call = uniqueCall('nglate');
      const caller = await Peer.open(t);
      const callee = await Peer.open(t);
      // The offer came in the callee's 200 OK: its from-tag is the callee's, its to-tag the caller's.
      const offer = await ng.request({
        command: 'offer',
        'call-id': call.id,
        'from-tag': call.to,
        'to-tag': call.from,
        sdp: partySdp(callee.port),
      });
      t.equal(offer['result'], 'ok');
      const answer = await ng.request({
        command: 'answer',
        'call-id': call.id,
        'from-tag': call.to,
        'to-tag': call.from,
        sdp: partySdp(caller.port),
      });
      t.equal(answer['result'], 'ok');
      const tag = byeFrom === 'caller' ? call.from : call.to;
      const deleted = await ng.request({ command: 'delete', 'call-id': call.id, 'from-tag': tag });
      t.strictSame(Object.keys(deleted).includes('warning'), false, `BYE from the ${byeFrom}`);
      t.equal(deleted['result'], 'ok');
      t.match(await ng.request({ command: 'query', 'call-id': call.id }), {
        'error-reason': 'Unknown call-id',
      });
    }
  });

  t.test('delete-delay keeps the call relaying for the delay; an offer keeps it', async (t) => {
    const known = async (callId: string): Promise<boolean> =>
      (await ng.request({ command: 'query', 'call-id': callId }))['result'] === 'ok';

    const first = await answeredCall(t, ng, 'ngdelay');
    await first.relay();
    const deleted = await ng.request({
      command: 'delete',
      'call-id': first.call.id,
      'from-tag': first.call.from,
      'delete-delay': 1,
    });
    t.equal(deleted['result'], 'ok', JSON.stringify(deleted));
    t.match(deleted['totals'], { RTP: { packets: 2 } }, 'the reply carries the statistics now');
    t.ok(await known(first.call.id), 'the call is still there right after the delete');
    await first.relay();
    t.pass('media is still relayed during the delay');
    await waitPortsFree(first.ports, 'the call ends when the delay runs out');
    t.notOk(await known(first.call.id), 'then the call is gone');

    // rtpp-flags form; a re-INVITE's offer during the delay calls the delete off.
    const second = await answeredCall(t, ng, 'ngdelay');
    await second.relay();
    const delayed = await ng.request({
      command: 'delete',
      'call-id': second.call.id,
      'from-tag': second.call.from,
      'rtpp-flags': 'delete-delay=1',
    });
    t.equal(delayed['result'], 'ok');
    const reoffer = await ng.request({
      command: 'offer',
      'call-id': second.call.id,
      'from-tag': second.call.from,
      'to-tag': second.call.to,
      sdp: partySdp(9),
    });
    t.equal(reoffer['result'], 'ok', JSON.stringify(reoffer));
    await new Promise<void>((resolve) => setTimeout(resolve, 1500));
    t.ok(await known(second.call.id), 'the offer kept the call past the delay');
    const now = await ng.request({ command: 'delete', 'call-id': second.call.id });
    t.equal(now['result'], 'ok');
    t.notOk(await known(second.call.id), 'a delete without a delay ends it at once');
  });

  t.test('record-call without -r: the call goes on, with a warning', async (t) => {
    const call = uniqueCall('ngnorec');
    const offer = await ng.request({
      command: 'offer',
      'call-id': call.id,
      'from-tag': call.from,
      flags: ['record-call'],
      sdp: partySdp(40000),
    });
    t.equal(offer['result'], 'ok');
    t.match(offer['warning'], /recording is not available/);
    t.match(text(offer, 'sdp'), /^m=audio \d+ RTP\/AVP/m);
    t.equal((await ng.request({ command: 'delete', 'call-id': call.id }))['result'], 'ok');
  });

  t.test('play media plays a prompt to the party, stop media stops it', async (t) => {
    const dir = tempDir(t, 'ngplay');
    // PCMU at the player's default 10 ms: 80 bytes a packet; four packets, each recognizable.
    const prompt = Buffer.alloc(4 * 80, 0);
    for (let i = 0; i < prompt.length; i += 1) prompt[i] = (i * 7 + Math.floor(i / 80)) & 0xff;
    writeFileSync(path.join(dir, 'hello.0'), prompt);
    const { call, caller, toCaller, relay } = await answeredCall(t, ng, 'ngplay');
    await relay();
    const base = { 'call-id': call.id, 'from-tag': call.from, file: path.join(dir, 'hello') };

    const played = await ng.request({ ...base, command: 'play media' });
    t.strictSame(played, { duration: 40, result: 'ok' }, 'one play lasts 40 ms');
    const heard = [];
    for (let i = 0; i < 4; i += 1) heard.push(await caller.receive());
    t.ok(
      heard.every((p) => p.port === toCaller && p.data.length === 12 + 80),
      'four RTP packets from the daemon port facing the caller',
    );
    t.ok(
      Buffer.concat(heard.map((p) => p.data.subarray(12))).equals(prompt),
      "the caller heard the prompt's bytes, in order",
    );
    t.ok(
      heard.every((p) => (p.data[1] ?? 0) % 128 === 0),
      'as PCMU, the payload type the caller offered first',
    );

    const looping = await ng.request({ ...base, command: 'play media', 'repeat-times': 1000 });
    t.equal(looping['result'], 'ok');
    await caller.receive();
    t.strictSame(await ng.request({ ...base, command: 'stop media' }), { result: 'ok' });
    // What was in flight arrives; then nothing more of the prompt, and the call relays again.
    for (let i = 0; i < 5; i += 1) {
      try {
        await caller.receive(100);
      } catch {
        break;
      }
    }
    await caller.expectNothing(200);
    await relay();
    t.pass('relaying resumed after stop media');
    t.strictSame(await ng.request({ ...base, command: 'stop media' }), {
      result: 'error',
      'error-reason': 'Not currently playing media',
    });

    const missing = await ng.request({
      ...base,
      command: 'play media',
      file: path.join(dir, 'nope'),
    });
    t.equal(missing['result'], 'error');
    t.match(
      missing['error-reason'],
      /^Failed to start media playback: no prompt file .*nope\.PT for payload types 0 101$/,
    );
    await relay();
    t.pass('the call still relays after a failed play media');
  });

  t.test('a retransmitted cookie is answered from the cache, not run again', async (t) => {
    const call = uniqueCall('ngretrans');
    const caller = await Peer.open(t);
    const before = await d.command('G nsess_created ncmds_rcvd_ndups');
    const cookie = NgClient.cookie();
    const request = {
      command: 'offer',
      'call-id': call.id,
      'from-tag': call.from,
      sdp: partySdp(caller.port),
    };
    const first = await ng.request(request, cookie);
    const again = await ng.request(request, cookie);
    t.strictSame(again, first);
    const [created, dups] = before.trim().split(' ').map(Number);
    t.equal(
      await d.command('G nsess_created ncmds_rcvd_ndups'),
      `${String((created ?? 0) + 1)} ${String((dups ?? 0) + 1)}\n`,
    );
    await ng.request({ command: 'delete', 'call-id': call.id });
  });

  t.test('malformed messages get an error, and the daemon goes on', async (t) => {
    const cookie = NgClient.cookie();
    const bad: readonly (readonly [string, string, string])[] = [
      ['bad bencode', 'd7:command4:pin', 'Could not decode bencode dictionary'],
      ['not a dictionary', 'l4:pinge', 'Could not decode bencode dictionary'],
      ['no command', 'd7:call-id1:xe', 'Dictionary contains no key "command"'],
      ['unknown command', 'd7:command4:frobe', 'Unrecognized command'],
    ];
    for (const [name, body, reason] of bad) {
      const reply = await ng.raw(Buffer.from(`${cookie}${name.length.toString()} ${body}`));
      t.equal(
        reply.toString('latin1'),
        `${cookie}${name.length.toString()} d12:error-reason${String(reason.length)}:${reason}6:result5:errore`,
        name,
      );
    }
    const noSpace = await ng.raw(Buffer.from('d7:command4:pinge'));
    t.match(
      noSpace.toString('latin1'),
      /^d12:error-reason.*6:result5:errore$/,
      'no cookie: an error without one',
    );
    t.strictSame(await ng.request({ command: 'ping' }), { result: 'pong' });
  });

  t.test('what the relay cannot do is refused by name', async (t) => {
    const call = uniqueCall('ngrefuse');
    const base = { command: 'offer', 'call-id': call.id, 'from-tag': call.from };
    const srtp = partySdp(40000).replace('RTP/AVP', 'RTP/SAVP');
    const refusals: readonly (readonly [string, Record<string, unknown>, RegExp])[] = [
      ['SRTP', { ...base, sdp: srtp }, /SRTP\/DTLS is not supported/],
      [
        'transcoding',
        { ...base, sdp: partySdp(40000), codec: { transcode: ['PCMA'] } },
        /codec manipulation/,
      ],
      ['ICE=force', { ...base, sdp: partySdp(40000), ICE: 'force' }, /ICE=force is not supported/],
      [
        'rtcp-mux demux',
        { ...base, sdp: partySdp(40000), 'rtcp-mux': ['demux'] },
        /rtcp-mux demux/,
      ],
      [
        'transport conversion',
        { ...base, sdp: partySdp(40000), 'transport-protocol': 'RTP/SAVP' },
        /transport-protocol conversion/,
      ],
      [
        'media address of the other family',
        { ...base, sdp: partySdp(40000), 'media-address': '::1' },
        /address family conversion/,
      ],
      ['no SDP', { ...base }, /No SDP body in message/],
      ['malformed SDP', { ...base, sdp: 'hello' }, /Failed to parse SDP/],
      [
        'pause recording',
        { command: 'pause recording', 'call-id': call.id },
        /pausing a recording is not supported/,
      ],
      [
        'answer without offer',
        { ...base, command: 'answer', 'to-tag': 'x', sdp: partySdp(40000) },
        /Unknown call-id/,
      ],
    ];
    for (const [name, request, reason] of refusals) {
      const reply = await ng.request(request);
      t.equal(reply['result'], 'error', name);
      t.match(reply['error-reason'], reason, name);
    }
    const calls = (await ng.request({ command: 'list' }))['calls'] as string[];
    t.notOk(calls.includes(call.id), 'no refused offer left a session');
  });

  t.test('an rtpproxy-protocol call beside an ng call on the same daemon', async (t) => {
    const ngCall = uniqueCall('ngside');
    const rtpCall = uniqueCall('rtpside');
    const a = await Peer.open(t);
    const b = await Peer.open(t);
    const offer = await ng.request({
      command: 'offer',
      'call-id': ngCall.id,
      'from-tag': ngCall.from,
      sdp: partySdp(a.port),
    });
    t.equal(offer['result'], 'ok');
    const uPort = await d.port(`U ${rtpCall.id} 127.0.0.1 ${String(b.port)} ${rtpCall.from}`);
    t.not(uPort, mediaPort(text(offer, 'sdp')));
    const calls = (await ng.request({ command: 'list' }))['calls'] as string[];
    t.ok(calls.includes(ngCall.id) && calls.includes(rtpCall.id), 'list shows both');
    // The ng call's session answers the rtpproxy protocol's Q, as Kamailio's module tags it.
    t.match(await d.command(`Q ${ngCall.id} ${ngCall.from};1`), /^[0-9]+ 0 0 0 0\n$/);
    const stats = await ng.request({ command: 'statistics' });
    t.match(stats, { result: 'ok', statistics: { currentstatistics: { sessionstotal: Number } } });
    // This daemon has no recording directory: start recording says so.
    t.match(await ng.request({ command: 'start recording', 'call-id': ngCall.id }), {
      result: 'error',
      'error-reason': /recording directory \(-r\)/,
    });
    t.equal(await d.command(`D ${rtpCall.id} ${rtpCall.from}`), '0\n');
    t.equal((await ng.request({ command: 'delete', 'call-id': ngCall.id }))['result'], 'ok');
  });
});

/**
 * block media and unblock media over real sockets, with media on a worker (the default here) and
 * on the main thread: what the blocked party sends is dropped, what it is sent still arrives.
 */
for (const [workers, window] of [
  ['1', 93],
  ['0', 94],
] as const) {
  t.test(
    `block media drops a party's RTP until unblock media (--workers ${workers})`,
    async (t) => {
      const { d, ng } = await rig(t, window, ['--workers', workers]);
      const { call, caller, callee, toCaller, toCallee, relay } = await answeredCall(
        t,
        ng,
        'ngblock',
      );
      await relay();
      const ok = { result: 'ok' };
      const party = { 'call-id': call.id, 'from-tag': call.from };
      let seq = 100;
      const fromCaller = (): Buffer => rtpPacket({ seq: (seq += 1), ssrc: 0x1111 });
      const fromCallee = (): Buffer => rtpPacket({ seq: (seq += 1), ssrc: 0x2222, fill: 0x55 });

      t.strictSame(await ng.request({ ...party, command: 'block media' }), ok);
      const discarded = async (): Promise<number> => Number(await d.command('G npkts_discard'));
      const before = await discarded();
      await caller.send(fromCaller(), toCaller);
      await callee.expectNothing(300);
      t.pass("the blocked caller's RTP does not reach the callee");
      const reply = fromCallee();
      await callee.send(reply, toCallee);
      await caller.expect(reply, toCaller);
      t.pass('the blocked caller still hears the callee');
      await waitFor('the dropped packet counted as discarded', async () =>
        (await discarded()) > before ? true : undefined,
      );

      t.strictSame(await ng.request({ ...party, command: 'unblock media' }), ok);
      await relay();
      t.pass('unblock media: both ways again');

      t.strictSame(await ng.request({ command: 'block media', 'call-id': call.id }), ok);
      await caller.send(fromCaller(), toCaller);
      await callee.send(fromCallee(), toCallee);
      await callee.expectNothing(300);
      await caller.expectNothing(100);
      t.pass('without a from-tag the whole call is blocked');
      t.strictSame(await ng.request({ command: 'unblock media', 'call-id': call.id }), ok);
      await relay();
      t.pass('and unblocked');

      t.match(
        await ng.request({ command: 'block media', 'call-id': call.id, 'from-tag': 'nobody' }),
        { result: 'error', 'error-reason': 'From-tag given, but no such tag exists' },
      );
      t.equal((await ng.request({ ...party, command: 'delete' }))['result'], 'ok');
    },
  );
}

t.test('start recording and stop recording write both legs of the call (-r)', async (t) => {
  const dir = tempDir(t, 'ngrec');
  const d = await startDaemon(t, [
    '-l',
    '127.0.0.1',
    '-s',
    'ng:udp:127.0.0.1:0',
    '-r',
    dir,
    ...portWindow(91),
  ]);
  const port = d.daemon.controlPort(1);
  if (port === undefined) throw new Error('no ng port');
  const ng = await NgClient.open(t, port);
  const { call, relay } = await answeredCall(t, ng, 'ngrec');
  const base = { 'call-id': call.id, 'from-tag': call.from };
  t.strictSame(await ng.request({ ...base, command: 'start recording' }), { result: 'ok' });
  await relay();
  t.strictSame(await ng.request({ ...base, command: 'stop recording' }), { result: 'ok' });
  await waitUntil(() => readdirSync(dir).length >= 2, 'a recording of each leg');
  t.ok(
    readdirSync(dir).every((name) => name.startsWith(call.id)),
    'named after the call',
  );
  t.equal((await ng.request({ ...base, command: 'delete' }))['result'], 'ok');

  // record-call in the offer starts the recording with the call, as start recording does.
  const recorded = uniqueCall('ngreccall');
  const withFlag = await ng.request({
    command: 'offer',
    'call-id': recorded.id,
    'from-tag': recorded.from,
    'record-call': 'yes',
    sdp: partySdp(40000),
  });
  t.equal(withFlag['result'], 'ok');
  t.notOk('warning' in withFlag, 'no warning with -r');
  await waitUntil(
    () => readdirSync(dir).filter((name) => name.startsWith(recorded.id)).length >= 2,
    'record-call opened a recording of each leg',
  );
  t.equal((await ng.request({ command: 'delete', 'call-id': recorded.id }))['result'], 'ok');
});

t.test('the --http metrics count ng requests by command and result', async (t) => {
  const d = await startDaemon(t, [
    '-l',
    '127.0.0.1',
    '-s',
    'ng:udp:127.0.0.1:0',
    '--http',
    '127.0.0.1:0',
    ...portWindow(92),
  ]);
  const port = d.daemon.controlPort(1);
  if (port === undefined) throw new Error('no ng port');
  const ng = await NgClient.open(t, port);
  await ng.request({ command: 'ping' });
  await ng.request({ command: 'query', 'call-id': 'nosuch' });
  await ng.request({ command: 'frobnicate' });
  const res = await fetch(`http://127.0.0.1:${String(d.daemon.httpPort)}/metrics`);
  const text = await res.text();
  t.match(text, /^rtpproxy_commands_total\{verb="ng_ping",result="ok"\} 1$/m);
  t.match(text, /^rtpproxy_commands_total\{verb="ng_query",result="error"\} 1$/m);
  t.match(text, /^rtpproxy_commands_total\{verb="ng_other",result="error"\} 1$/m);
  t.match(text, /^rtpproxy_command_duration_seconds_count\{verb="ng_ping"\} 1$/m);
});
