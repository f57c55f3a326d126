/**
 * The interop scenarios (issue 7), shared by the test files: each file brings up one rig (daemon,
 * Kamailio over one control-socket kind) and runs the scenarios it names. A scenario whose feature
 * has not landed is reported as skipped with the issue it waits for, never as passed.
 */
import type { Test } from 'tap';
import { isRtp, PROMPT_BYTE, PROMPT_BYTES, sleep, unavailable } from './harness.ts';
import {
  checkCalls,
  DAEMON_IP,
  matchRelayed,
  recordingsOf,
  Rig,
  type CallRun,
  type RigConfig,
} from './rig.ts';

/** SIPp streams 50 packets a second; a 2 s call carries about 100 each way. */
const MIN_PACKETS = 60;

type ScenarioName =
  | 'basic'
  | 'concurrent'
  | 'reinvite'
  | 'late-offer'
  | 'cancel-early-media'
  | 'rejected'
  | 'manage'
  | 'recording'
  | 'rtpstat'
  | 'ng-rtpstat'
  | 'playback'
  | 'block'
  | 'bridge';

/** The calls every control kind runs: offer/answer, concurrency, re-INVITE, late offer, CANCEL, 486. */
export const CALL_SCENARIOS = [
  'basic',
  'concurrent',
  'reinvite',
  'late-offer',
  'cancel-early-media',
  'rejected',
] as const satisfies readonly ScenarioName[];

export interface SuiteConfig extends RigConfig {
  readonly scenarios: readonly ScenarioName[];
  /** Calls in the concurrency scenario. */
  readonly concurrentCalls?: number;
}

/** Brings the rig up (or skips/fails with the reason it cannot) and runs the scenarios. */
export async function runSuite(t: Test, config: SuiteConfig): Promise<void> {
  const why = unavailable();
  if (why !== undefined) {
    t.comment(`interop suite (${config.name}) cannot run: ${why.reason}`);
    if (why.fatal) t.fail(`interop suite (${config.name}): ${why.reason}`);
    else {
      await t.test(
        `Kamailio + SIPp interop over ${config.name}`,
        { skip: why.reason },
        () => undefined,
      );
    }
    return;
  }
  const started = Date.now();
  const rig = await Rig.start(t, config);
  const kamailioAt = `${DAEMON_IP}:${String(rig.kamailio.port)}`;
  t.comment(
    `rig up in ${String(Date.now() - started)} ms: Kamailio on ${kamailioAt}, rtpproxy over ${config.control}`,
  );

  await t.test(
    'Kamailio accepted the daemon at start-up (V, VF) and logged no error',
    async (t) => {
      t.same(rig.kamailio.problemsSince(0), [], 'no ERROR in the Kamailio log');
      t.same(
        rig.kamailio.linesSince(0, /rtpproxy.*(disabled|can't|does not respond)/),
        [],
        'rtpproxy never disabled',
      );
    },
  );

  for (const name of config.scenarios) {
    await SCENARIOS[name](t, rig, config);
  }

  await t.test('Kamailio logged no error during the whole run', async (t) => {
    t.same(rig.kamailio.problemsSince(0), []);
  });
  t.comment(`interop suite (${config.name}) took ${String(Date.now() - started)} ms`);
}

type Scenario = (t: Test, rig: Rig, config: SuiteConfig) => Promise<void>;

const calls = (n: number): string => (n === 1 ? 'call' : 'calls');

/** Plain call, re-INVITE, late offer, CANCEL and rejection with the given Kamailio variant. */
async function basicCall(t: Test, rig: Rig, service: string): Promise<CallRun> {
  const run = await rig.call(t, { title: `${service} call`, service, uac: 'uac', uas: 'uas' });
  checkCalls(t, run, {
    calls: 1,
    minPackets: MIN_PACKETS,
    uasSdpIn: 'INVITE',
    uacSdpIn: '200/INVITE',
    verbs: ['U', 'L', 'D'],
  });
  return run;
}

async function reinvite(t: Test, rig: Rig, service: string): Promise<void> {
  const run = await rig.call(t, {
    title: `${service} re-INVITE`,
    service,
    uac: 'uac-reinvite',
    uas: 'uas-reinvite',
  });
  const [v] = checkCalls(t, run, {
    calls: 1,
    minPackets: MIN_PACKETS,
    uasSdpIn: 'INVITE',
    uacSdpIn: '200/INVITE',
    verbs: ['U', 'L', 'D'],
  });
  if (v === undefined) return;
  const invites = v.toUas.filter((m) => m.method === 'INVITE' && m.sdp !== undefined);
  t.equal(invites.length, 2, 'the callee got the INVITE and the re-INVITE, both with SDP');
  t.equal(
    new Set(v.sdpToUas.map((s) => s.port)).size,
    1,
    'the re-INVITE kept the callee on the same daemon port',
  );
  t.equal(v.sdpToUac.length, 2, 'the caller got SDP in both 200 OKs');
  t.equal(
    new Set(v.sdpToUac.map((s) => s.port)).size,
    1,
    'the re-INVITE kept the caller on the same daemon port',
  );
  // Media keeps flowing through the daemon after the re-INVITE.
  const reOk = v.toUac.filter((m) => m.label === '200/INVITE')[1];
  const f = run.flows(v);
  if (reOk !== undefined) {
    const later = (list: readonly { ts: number }[]): number =>
      list.filter((p) => p.ts > reOk.ts).length;
    t.ok(
      later(f.daemonToCallee) >= 30,
      `daemon -> callee after the re-INVITE: ${String(later(f.daemonToCallee))} packets`,
    );
    t.ok(
      later(f.daemonToCaller) >= 30,
      `daemon -> caller after the re-INVITE: ${String(later(f.daemonToCaller))} packets`,
    );
  } else {
    t.fail('no 200 OK to the re-INVITE reached the caller');
  }
}

async function lateOffer(t: Test, rig: Rig, service: string): Promise<void> {
  const run = await rig.call(t, {
    title: `${service} late offer`,
    service,
    uac: 'uac-late',
    uas: 'uas-late',
  });
  const [v] = checkCalls(t, run, {
    calls: 1,
    minPackets: MIN_PACKETS,
    uasSdpIn: 'ACK',
    uacSdpIn: '200/INVITE',
    verbs: ['U', 'L', 'D'],
  });
  if (v === undefined) return;
  t.ok(
    v.toUas.some((m) => m.method === 'INVITE' && m.body.trim() === ''),
    'the callee got the INVITE without SDP',
  );
  t.ok(
    v.fromUac.some((m) => m.method === 'ACK' && m.sdp !== undefined),
    'the caller answered in the ACK',
  );
}

async function cancelEarlyMedia(t: Test, rig: Rig, service: string): Promise<void> {
  const run = await rig.call(t, {
    title: `${service} cancel`,
    service,
    uac: 'uac-cancel',
    uas: 'uas-cancel',
  });
  const [v] = checkCalls(t, run, {
    calls: 1,
    minPackets: MIN_PACKETS,
    uasSdpIn: 'INVITE',
    uacSdpIn: '183/INVITE',
    verbs: ['U', 'L', 'D'],
  });
  if (v === undefined) return;
  t.ok(
    v.toUas.some((m) => m.method === 'CANCEL'),
    'the CANCEL reached the callee',
  );
  t.ok(
    v.toUac.some((m) => m.label === '487/INVITE'),
    'the caller got 487 Request Terminated',
  );
  t.notOk(
    v.toUac.some((m) => m.label === '200/INVITE'),
    'the call was never answered',
  );
}

async function rejected(t: Test, rig: Rig, service: string): Promise<void> {
  const run = await rig.call(t, {
    title: `${service} rejected`,
    service,
    uac: 'uac-reject',
    uas: 'uas-reject',
  });
  const [v] = checkCalls(t, run, {
    calls: 1,
    minPackets: 0,
    noAnswer: true,
    uasSdpIn: 'INVITE',
    verbs: ['U', 'D'],
  });
  if (v === undefined) return;
  t.ok(
    v.toUac.some((m) => m.label === '486/INVITE'),
    'the caller got 486 Busy Here',
  );
}

const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  basic: async (t, rig) => {
    await t.test('basic call: offer in INVITE, answer in 200 OK, BYE', async (t) => {
      await basicCall(t, rig, 'basic');
    });
  },

  concurrent: async (t, rig, config) => {
    const n = config.concurrentCalls ?? 20;
    await t.test(`${String(n)} concurrent ${calls(n)} with media for 5 s`, async (t) => {
      const run = await rig.call(t, {
        title: `${String(n)} concurrent calls`,
        service: 'basic',
        uac: 'uac',
        uas: 'uas',
        calls: n,
        rate: n,
        holdMs: 5000,
      });
      checkCalls(t, run, {
        calls: n,
        minPackets: 150,
        uasSdpIn: 'INVITE',
        uacSdpIn: '200/INVITE',
        verbs: ['U', 'L', 'D'],
      });
      t.equal(run.maxActive, n, `the daemon held ${String(n)} sessions at once (I)`);
    });
  },

  reinvite: async (t, rig) => {
    await t.test('re-INVITE from the caller keeps the media on the same ports', async (t) => {
      await reinvite(t, rig, 'basic');
    });
  },

  'late-offer': async (t, rig) => {
    await t.test(
      'late offer: no SDP in the INVITE, offer in the 200 OK, answer in the ACK',
      async (t) => {
        await lateOffer(t, rig, 'basic');
      },
    );
  },

  'cancel-early-media': async (t, rig) => {
    await t.test('CANCEL after early media (183 with SDP)', async (t) => {
      await cancelEarlyMedia(t, rig, 'basic');
    });
  },

  rejected: async (t, rig) => {
    await t.test('rejected call (486): the session goes away', async (t) => {
      await rejected(t, rig, 'basic');
    });
  },

  manage: async (t, rig) => {
    await t.test('rtpproxy_manage()', async (t) => {
      await t.test('basic call', async (t) => {
        await basicCall(t, rig, 'manage');
      });
      await t.test('re-INVITE', async (t) => {
        await reinvite(t, rig, 'manage');
      });
      await t.test('late offer', async (t) => {
        await lateOffer(t, rig, 'manage');
      });
      await t.test('CANCEL after early media', async (t) => {
        await cancelEarlyMedia(t, rig, 'manage');
      });
      await t.test('rejected call', async (t) => {
        await rejected(t, rig, 'manage');
      });
    });
  },

  recording: async (t, rig, config) => {
    await t.test('start_recording(): a recording with packets appears under -r', async (t) => {
      const run = await rig.call(t, {
        title: 'recording',
        service: 'record',
        uac: 'uac',
        uas: 'uas',
      });
      const [v] = checkCalls(t, run, {
        calls: 1,
        minPackets: MIN_PACKETS,
        uasSdpIn: 'INVITE',
        uacSdpIn: '200/INVITE',
        verbs: ['U', 'L', 'R', 'D'],
      });
      if (v === undefined) return;
      // The files are flushed when the session ends; give the writer a moment.
      let files = recordingsOf(rig, v.callId);
      for (let i = 0; i < 30 && !files.some((f) => f.packets >= MIN_PACKETS); i += 1) {
        await sleep(100);
        files = recordingsOf(rig, v.callId);
      }
      t.ok(files.length > 0, `recording files for ${v.callId}`, { files });
      const rtp = files.filter((f) => f.file.endsWith('.rtp'));
      const best = [...rtp].sort((a, b) => b.packets - a.packets)[0];
      t.ok(
        best !== undefined && best.packets >= MIN_PACKETS,
        `a recording holds the call's packets (${files.map((f) => `${f.file}: ${String(f.packets)}`).join(', ')})`,
      );
      if (config.control === 'ng') {
        // Over ng, start recording records both legs of the call (docs/ng.md): one file holds
        // what the caller put on the wire, another what the callee did, packet for packet.
        const f = run.flows(v);
        for (const [who, sent] of [
          ['caller', f.callerToDaemon],
          ['callee', f.calleeToDaemon],
        ] as const) {
          const matches = rtp.map((file) => {
            const recorded = file.payloads.filter(isRtp).map((payload) => ({ payload }));
            return { file: file.file, n: recorded.length, m: matchRelayed(recorded, sent) };
          });
          // SIPp sends the same SSRC and sequence numbers both ways: the bytes tell the files apart.
          const found = matches.find(
            (x) => x.n >= MIN_PACKETS && x.m.unmatched <= run.dropped && x.m.changed === 0,
          );
          t.ok(found, `a recording holds what the ${who} sent, byte for byte`, { matches });
        }
        return;
      }
      // start_recording() in the 200 OK records the party that sent it: the callee. What is in the
      // file is what the callee put on the wire, packet for packet.
      if (best !== undefined) {
        const recorded = best.payloads.filter(isRtp).map((payload) => ({ payload }));
        const m = matchRelayed(recorded, run.flows(v).calleeToDaemon);
        t.ok(recorded.length > 0, `${String(recorded.length)} RTP packets recorded`);
        t.equal(m.changed, 0, 'the recorded packets are byte for byte what the callee sent');
        const note = `${String(m.unmatched)} unmatched, ${String(run.dropped)} not captured`;
        t.ok(m.unmatched <= run.dropped, `every recorded packet is one the callee sent (${note})`);
      }
    });
  },

  'ng-rtpstat': async (t, rig) => {
    await t.test("$rtpstat over ng: the daemon's query totals reach the SIP side", async (t) => {
      const run = await rig.call(t, {
        title: 'ng rtpstat',
        service: 'stat',
        uac: 'uac',
        uas: 'uas',
      });
      const [v] = checkCalls(t, run, {
        calls: 1,
        minPackets: MIN_PACKETS,
        uasSdpIn: 'INVITE',
        uacSdpIn: '200/INVITE',
      });
      if (v === undefined) return;
      const bye = v.toUas.find((m) => m.method === 'BYE');
      const stat = bye?.headers.get('x-rtp-stat')?.[0];
      // What Kamailio's rtpengine module prints from the query reply's totals.
      const m =
        /^RTP: (\d+) bytes, (\d+) packets, (\d+) errors; RTCP: (\d+) bytes, (\d+) packets, (\d+) errors$/.exec(
          stat ?? '',
        );
      t.ok(m !== null, `X-RTP-Stat is the module's totals line: ${String(stat)}`, {
        headers: bye === undefined ? [] : [...bye.headers],
      });
      if (m === null) return;
      const [bytes, packets, errors] = m.slice(1, 4).map(Number) as [number, number, number];
      t.ok(packets >= 2 * MIN_PACKETS, `RTP packets from both parties: ${String(packets)}`);
      t.ok(bytes >= packets * 172, `RTP bytes: ${String(bytes)}`);
      t.equal(errors, 0, 'no RTP errors');
    });
  },

  rtpstat: async (t, rig) => {
    await t.test('$rtpstat: the daemon Q reply reaches the SIP side', async (t) => {
      const run = await rig.call(t, { title: 'rtpstat', service: 'stat', uac: 'uac', uas: 'uas' });
      const [v] = checkCalls(t, run, {
        calls: 1,
        minPackets: MIN_PACKETS,
        uasSdpIn: 'INVITE',
        uacSdpIn: '200/INVITE',
        verbs: ['U', 'L', 'Q', 'D'],
      });
      if (v === undefined) return;
      const bye = v.toUas.find((m) => m.method === 'BYE');
      const stat = bye?.headers.get('x-rtp-stat')?.[0];
      t.ok(stat !== undefined, 'the BYE the callee got carries X-RTP-Stat', {
        headers: bye === undefined ? [] : [...bye.headers],
      });
      const m = /^(\d+) (\d+) (\d+) (\d+) (\d+)$/.exec(stat ?? '');
      t.ok(
        m !== null,
        `X-RTP-Stat is the Q reply "ttl npkts_ina npkts_ino nrelayed ndropped": ${String(stat)}`,
      );
      if (m !== null) {
        const [ttl, ina, ino, relayed, dropped] = m.slice(1).map(Number) as [
          number,
          number,
          number,
          number,
          number,
        ];
        t.ok(ttl > 0, `ttl ${String(ttl)}`);
        t.ok(ina >= MIN_PACKETS, `npkts_ina ${String(ina)}`);
        t.ok(ino >= MIN_PACKETS, `npkts_ino ${String(ino)}`);
        t.ok(relayed >= 2 * MIN_PACKETS, `nrelayed ${String(relayed)}`);
        t.equal(dropped, 0, 'ndropped 0');
      }
      t.ok(
        rig.kamailio
          .linesSince(run.kamailioMark, /rtpstat of /)
          .some((line) => line.includes(`${v.callId}: ${String(stat)}`)),
        'Kamailio logged the $rtpstat value',
      );
    });
  },

  playback: async (t, rig, config) => {
    for (const [fn, service, hearer] of [
      ['rtpproxy_stream2uac', 'p2uac', 'caller'],
      ['rtpproxy_stream2uas', 'p2uas', 'callee'],
    ] as const) {
      const call = config.control === 'ng' ? `play_media(from-tag of the ${hearer})` : `${fn}()`;
      const title = `${call}: the prompt reaches the ${hearer}`;
      if (rig.playbackSkip !== undefined) {
        await t.test(title, { skip: rig.playbackSkip }, () => undefined);
        continue;
      }
      await t.test(title, async (t) => {
        const run = await rig.call(t, { title: service, service, uac: 'uac', uas: 'uas' });
        const [v] = checkCalls(t, run, {
          calls: 1,
          minPackets: 0,
          uasSdpIn: 'INVITE',
          uacSdpIn: '200/INVITE',
          verbs: ['U', 'L', 'P', 'D'],
        });
        if (v === undefined) return;
        const f = run.flows(v);
        const isPrompt = (p: { payload: Buffer }): boolean =>
          p.payload.length > 12 && p.payload.subarray(12).every((b) => b === PROMPT_BYTE);
        const [toHearer, toOther] =
          hearer === 'caller'
            ? [f.daemonToCaller, f.daemonToCallee]
            : [f.daemonToCallee, f.daemonToCaller];
        const prompt = toHearer.filter(isPrompt);
        const audio = prompt.reduce((n, p) => n + p.payload.length - 12, 0);
        // The whole prompt, once (less what tcpdump says it could not capture).
        t.ok(
          audio <= PROMPT_BYTES && audio >= PROMPT_BYTES - 160 * run.dropped,
          `the ${hearer} got the whole prompt once (${String(prompt.length)} packets, ${String(audio)} of ${String(PROMPT_BYTES)} bytes)`,
        );
        t.equal(toOther.filter(isPrompt).length, 0, 'the other party got none of it');
        const last = prompt.at(-1);
        const after =
          last === undefined ? 0 : toHearer.filter((p) => p.ts > last.ts && !isPrompt(p)).length;
        t.ok(
          after >= 10,
          `relaying to the ${hearer} resumed after the prompt (${String(after)} packets)`,
        );
      });
    }
  },

  block: async (t, rig) => {
    const title =
      "block_media(from-tag of the caller): the callee hears none of the caller's RTP, the caller hears the callee";
    await t.test(title, async (t) => {
      const run = await rig.call(t, { title: 'block', service: 'block', uac: 'uac', uas: 'uas' });
      const [v] = checkCalls(t, run, {
        calls: 1,
        minPackets: 0,
        uasSdpIn: 'INVITE',
        uacSdpIn: '200/INVITE',
      });
      if (v === undefined) return;
      const callerTag = v.control.find((c) => c.verb === 'offer')?.ng?.['from-tag'];
      const block = v.control.filter((c) => c.verb === 'block media');
      t.ok(
        block.length === 1 && callerTag !== undefined && block[0]?.ng?.['from-tag'] === callerTag,
        "Kamailio sent block media once, with the caller's tag",
        { control: v.control.map((c) => [c.verb, c.ng?.['from-tag']]) },
      );
      const f = run.flows(v);
      const toCaller = matchRelayed(f.daemonToCaller, f.calleeToDaemon);
      t.ok(
        f.callerToDaemon.length >= MIN_PACKETS,
        `caller -> relay: ${String(f.callerToDaemon.length)} RTP packets`,
      );
      t.equal(f.daemonToCallee.length, 0, 'relay -> callee: none, the caller is blocked');
      t.ok(
        f.calleeToDaemon.length >= MIN_PACKETS,
        `callee -> relay: ${String(f.calleeToDaemon.length)} RTP packets`,
      );
      t.ok(
        f.daemonToCaller.length >= MIN_PACKETS,
        `relay -> caller (relayed): ${String(f.daemonToCaller.length)} RTP packets`,
      );
      t.ok(
        toCaller.changed === 0 && toCaller.unmatched <= run.dropped,
        'every packet the caller got came from the callee, unchanged',
        { ...toCaller, notCaptured: run.dropped },
      );
    });
  },

  bridge: async (t, rig, config) => {
    for (const flags of ['ie', 'ei'] as const) {
      const sides =
        flags === 'ie' ? 'caller internal, callee external' : 'caller external, callee internal';
      const how =
        config.control === 'ng'
          ? `rtpengine_manage() with direction`
          : `rtpproxy_offer/answer("${flags}")`;
      const title = `bridge mode: ${how}, ${sides}`;
      if (rig.bridgeSkip !== undefined || config.bridge === undefined) {
        await t.test(
          title,
          { skip: rig.bridgeSkip ?? 'no bridge addresses configured' },
          () => undefined,
        );
        continue;
      }
      const external = config.bridge.external;
      await t.test(title, async (t) => {
        const run = await rig.call(t, {
          title: `bridge-${flags}`,
          service: `bridge-${flags}`,
          uac: 'uac',
          uas: 'uas',
        });
        const [v] = checkCalls(t, run, {
          calls: 1,
          minPackets: MIN_PACKETS,
          uasSdpIn: 'INVITE',
          uacSdpIn: '200/INVITE',
          verbs: ['U', 'L', 'D'],
          callerSideAddress: flags === 'ie' ? DAEMON_IP : external,
          calleeSideAddress: flags === 'ie' ? external : DAEMON_IP,
        });
        if (config.control === 'ng') {
          // rtpengine_manage("direction=... direction=..."): the party that sent the SDP first.
          const sent = (v?.control ?? []).filter((c) => c.verb === 'offer' || c.verb === 'answer');
          const [caller, callee] =
            flags === 'ie' ? ['internal', 'external'] : ['external', 'internal'];
          t.ok(
            sent.length >= 2 &&
              sent.every((c) => {
                const want = c.verb === 'offer' ? [caller, callee] : [callee, caller];
                return JSON.stringify(c.ng?.['direction']) === JSON.stringify(want);
              }),
            `Kamailio sent offer (${caller}, ${callee}) and answer (${callee}, ${caller}) directions`,
            { sent: sent.map((c) => [c.verb, c.ng?.['direction']]) },
          );
        } else {
          const offers = (v?.control ?? [])
            .filter((c) => c.verb === 'U' || c.verb === 'L')
            .map((c) => c.command);
          const mods = flags.toUpperCase();
          t.ok(
            offers.length >= 2 && offers.every((c) => new RegExp(`^[UL]${mods}`).test(c)),
            `Kamailio sent U and L with the ${mods} modifiers`,
            { offers },
          );
        }
      });
    }
  },
};
