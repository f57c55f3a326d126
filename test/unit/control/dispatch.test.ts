/**
 * Dispatch against a fake session manager: the reference's command-parser corpus
 * (test/fixtures/commands, sippy/rtpproxy tests/command_parser) reaches the right manager calls
 * with the right arguments, and the manager's results and refusals come back as the corpus's
 * replies, byte for byte. Then what the corpus does not reach: every RelayError code, unexpected
 * errors, sub-commands and the live local families.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import type { Config } from '../../../src/base/config.ts';
import type { Family } from '../../../src/base/net.ts';
import type { Side } from '../../../src/base/side.ts';
import { buildConfig, isConfigErrors } from '../../../src/cli/config.ts';
import { parseOptions } from '../../../src/cli/options.ts';
import { type DispatchManager, Dispatcher } from '../../../src/control/dispatch.ts';
import { ECODES } from '../../../src/control/ecodes.ts';
import { parseContextOf } from '../../../src/control/parse-context.ts';
import { CommandRunner, NO_ANSWER } from '../../../src/control/runner.ts';
import { RELAY_ERROR_CODES, RelayError, type RelayErrorCode } from '../../../src/session/errors.ts';
import type { FoundSession, LegAnswer, OfferRequest } from '../../../src/session/manager.ts';
import type { OffloadFigures } from '../../../src/session/offload.ts';
import type { Session } from '../../../src/session/session.ts';
import { GlobalStats } from '../../../src/util/stats.ts';

const silent = pino({ level: 'silent' });
const FIXTURES = path.join(import.meta.dirname, '../../fixtures/commands');
const lines = (name: string): string[] =>
  readFileSync(path.join(FIXTURES, name), 'latin1').split('\n').slice(0, -1);
const INPUT = lines('command_parser.input');
const OUTPUT = lines('command_parser.output');

function config(argv: readonly string[] = []): Config {
  const parsed = parseOptions(['-f', '-s', 'udp:127.0.0.1:22222', ...argv]);
  if (!parsed.ok) throw new Error(parsed.message);
  const built = buildConfig(parsed.options);
  if (isConfigErrors(built)) throw new Error('config');
  return built;
}

/** A session as query.ts reads it: counters at zero, a ttl of 60 as in the reference's run. */
function fakeSession(callId: string, tag: string): Session {
  const stream = { npktsIn: 0, nrelayed: 0, ndropped: 0, rtpStats: undefined };
  const leg = { rtp: stream };
  return { callId, tag, closed: false, ttl: () => 60, legs: [leg, leg] } as unknown as Session;
}

type Call = readonly unknown[];

/**
 * Records every call (a FoundSession is written `found`, a Session `session`, and an
 * OfferRequest without its receivedAt) and answers as the reference's daemon would with the
 * corpus's state: one session (call-id `callId`, tag `tag`) made by the first U, 23820 for U and
 * 23822 for L on a wildcard address, no -r, no -n, prompts that never play.
 */
class FakeManager implements DispatchManager {
  readonly calls: Call[] = [];
  readonly stats: GlobalStats;
  readonly callId: string;
  readonly tag: string;
  families: readonly Family[] = [4];
  session: Session | undefined;
  /** Thrown by update() when set. */
  failWith: Error | undefined;
  draining = false;

  constructor(stats: GlobalStats, callId = 'c', tag = 'ft') {
    this.stats = stats;
    this.callId = callId;
    this.tag = tag;
  }

  get size(): number {
    return this.session === undefined ? 0 : 1;
  }

  #found(callId: string, tag1: string, tag2: string | undefined): FoundSession | undefined {
    const s = this.session;
    if (s === undefined || callId !== this.callId) return undefined;
    if (tag1 === this.tag) return { session: s, legT1: 1 };
    if (tag2 === this.tag) return { session: s, legT1: 0 };
    return undefined;
  }

  #answer(session: Session, port: number, forwardLeg: Side): LegAnswer {
    return { session, forwardLeg, port, address: '0.0.0.0', family: 4, wildcard: true };
  }

  find(callId: string, tag1: string, tag2: string | undefined): FoundSession | undefined {
    this.calls.push(['find', callId, tag1, tag2]);
    return this.#found(callId, tag1, tag2);
  }

  update(req: OfferRequest): Promise<LegAnswer> {
    this.calls.push(['update', offer(req)]);
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    if (req.notify !== undefined) return Promise.reject(new RelayError('ERR_NOTIFY_DISABLED'));
    if (this.session === undefined) {
      this.session = fakeSession(this.callId, this.tag);
      this.stats.nsessCreated++;
    }
    return Promise.resolve(this.#answer(this.session, 23820, 1));
  }

  lookup(req: OfferRequest): Promise<LegAnswer | undefined> {
    this.calls.push(['lookup', offer(req)]);
    const found = this.#found(req.callId, req.tag1, req.tag2);
    if (found === undefined) return Promise.resolve(undefined);
    this.stats.nsessComplete++;
    return Promise.resolve(this.#answer(found.session, 23822, 0));
  }

  delete(callId: string, tag1: string, tag2: string | undefined, weak: boolean): boolean {
    this.calls.push(['delete', callId, tag1, tag2, weak]);
    return this.#found(callId, tag1, tag2) !== undefined;
  }

  deleteAll(): void {
    this.calls.push(['deleteAll']);
    if (this.session === undefined) return;
    // The session never saw a packet: the reference counts it as without RTP and RTCP.
    this.session = undefined;
    this.stats.nsessDestroyed++;
    this.stats.nsessNortp++;
    this.stats.nsessNortcp++;
  }

  setLegTtl(session: Session, leg: Side, seconds: number): void {
    this.calls.push(['setLegTtl', label(session), leg, seconds]);
  }

  setLegTos(session: Session, leg: Side, tos: number): boolean {
    this.calls.push(['setLegTos', label(session), leg, tos]);
    return tos !== 0;
  }

  record(callId: string, tag1: string, tag2: string | undefined, single: boolean): Promise<number> {
    this.calls.push(['record', callId, tag1, tag2, single]);
    return Promise.resolve(0);
  }

  stopRecording(callId: string, tag1: string, tag2: string | undefined, both: boolean): number {
    this.calls.push(['stopRecording', callId, tag1, tag2, both]);
    return this.#found(callId, tag1, tag2) === undefined ? 0 : 1;
  }

  copyToFile(found: FoundSession, name: string, single: boolean): Promise<void> {
    this.calls.push(['copyToFile', label(found), name, single]);
    return Promise.reject(new RelayError('ERR_COPY', 'no recording directory (-r)'));
  }

  copyToRemote(found: FoundSession, target: string): Promise<{ port: number; address: string }> {
    this.calls.push(['copyToRemote', label(found), target]);
    return Promise.reject(new RelayError('ERR_COPY', `bad copy target ${target}`));
  }

  fork(source: FoundSession, target: Session, forwardLeg: Side): Promise<void> {
    this.calls.push(['fork', label(source), label(target), forwardLeg]);
    return Promise.resolve();
  }

  play(
    found: FoundSession,
    prompt: string,
    codecs: readonly number[] | 'session',
    count: number,
  ): Promise<number> {
    this.calls.push(['play', label(found), prompt, codecs, count]);
    return Promise.reject(new RelayError('ERR_PLAYBACK'));
  }

  stopPlayback(found: FoundSession): boolean {
    this.calls.push(['stopPlayback', label(found)]);
    return false;
  }

  hasLocalFamily(family: Family): boolean {
    return this.families.includes(family);
  }

  /** No session waits for the kernel here: D and X end them at once. */
  ended(): Promise<void> {
    return Promise.resolve();
  }

  kernelCounts(): Promise<void> {
    return Promise.resolve();
  }

  kernelFigures(): OffloadFigures {
    return { streams: 0, offloads: 0, withdrawals: 0, packets: 0, bytes: 0 };
  }

  kernelPlacement(): string {
    return 'rtp=userspace(off) rtcp=userspace(off)';
  }

  *sessions(): IterableIterator<Session> {
    if (this.session !== undefined) yield this.session;
  }
}

function offer(req: OfferRequest): Partial<OfferRequest> {
  return Object.fromEntries(Object.entries(req).filter(([key]) => key !== 'receivedAt'));
}

function label(x: FoundSession | Session): string {
  return 'legT1' in x ? `found:${String(x.legT1)}` : 'session';
}

function setup(manager?: (stats: GlobalStats) => FakeManager, argv: readonly string[] = []) {
  const stats = new GlobalStats();
  const fake = manager?.(stats) ?? new FakeManager(stats);
  const cfg = config(argv);
  const dispatcher = new Dispatcher({
    manager: fake,
    stats,
    config: cfg,
    parseContext: parseContextOf(cfg),
    now: () => 0,
    load: () => 0.25,
    kernel: () => ({ state: 'off (--nft off)', committed: 0, failed: 0 }),
    logger: silent,
  });
  const runner = new CommandRunner(dispatcher.handle, stats, silent);
  return { stats, fake, dispatcher, runner };
}

// The corpus's names, spelled once.
const CALL = "*3:R9//u@-JojSdZ`-KJ!?we-mQ/'%u1AF\\{(*";
const W3 = 'W3.IT2Nl-t.gTL1SejkyqRuMoYf*E';
const T39 = '39d9ashjo';
const TAG = 'ndkshf23';
const ignored = { kind: 'ignored' } as const;
const plainOffer = {
  callId: CALL,
  tag1: TAG,
  remote: ignored,
  weak: false,
  local: { kind: 'default' },
  newPorts: false,
} as const;

/**
 * The manager calls of each corpus line (1-based, as `cat -n` numbers them); every other line is
 * refused by the parser or answered by dispatch alone, and calls nothing.
 */
const CALLS: Readonly<Record<number, readonly Call[]>> = {
  12: [['update', plainOffer]],
  15: [['update', { ...plainOffer, notify: { socket: '%%RTPP_NS%%', tag: '%%RTPP_NS_MSG%%' } }]],
  29: [['lookup', plainOffer]],
  33: [['delete', CALL, W3, undefined, false]],
  34: [['delete', CALL, W3, T39, false]],
  41: [
    ['find', CALL, TAG, undefined],
    ['play', 'found:1', W3, [], 1],
  ],
  44: [['record', CALL, W3, undefined, false]],
  45: [['record', CALL, W3, T39, false]],
  49: [['record', CALL, W3, undefined, true]],
  50: [['record', CALL, W3, T39, true]],
  55: [['find', CALL, T39, undefined]],
  57: [
    ['find', CALL, T39, TAG],
    ['copyToFile', 'found:0', W3, false],
  ],
  58: [
    ['find', CALL, T39, TAG],
    ['copyToFile', 'found:0', W3, true],
  ],
  59: [['find', CALL, T39, TAG]],
  60: [
    ['find', CALL, T39, TAG],
    ['copyToRemote', 'found:0', `udp:${W3}`],
  ],
  63: [['find', CALL, W3, undefined]],
  64: [['find', CALL, W3, T39]],
  86: [['find', CALL, W3, undefined]],
  87: [['find', CALL, W3, T39]],
  88: [['find', CALL, W3, T39]],
  89: [['find', CALL, TAG, 'whatever']],
  90: [['find', CALL, 'whatever', TAG]],
  91: [['find', CALL, TAG, 'whatever']],
  92: [['find', CALL, 'whatever', TAG]],
  93: [['find', CALL, 'whatever', TAG]],
  94: [['find', CALL, 'whatever', TAG]],
  95: [['find', CALL, 'whatever', TAG]],
  96: [['deleteAll']],
  114: [['deleteAll']],
};

/** The corpus's reply to line n of the plain run (11 and 12 commands succeeded by lines 110, 113). */
function expectedReply(n: number): string {
  const text = (OUTPUT[n - 1] ?? '')
    .replace('%%SUCCD110%%', '11')
    .replace('%%ERRS110%%', String(109 - 11))
    .replace('%%SUCCD113%%', '12')
    .replace('%%ERRS113%%', String(112 - 12));
  return `${text.split(' / ').join('\n')}\n`;
}

t.test('the command-parser corpus reaches the right manager calls and replies', async (t) => {
  t.equal(INPUT.length, OUTPUT.length, 'one reply per command');
  const { fake, runner } = setup((stats) => new FakeManager(stats, CALL, TAG));
  for (const [i, line] of INPUT.entries()) {
    const n = i + 1;
    fake.calls.length = 0;
    const reply = await runner.run(line);
    const shown = line.length > 60 ? `${line.slice(0, 60)}…` : line;
    t.equal(reply, expectedReply(n), `line ${String(n)} reply: ${shown}`);
    t.same(fake.calls, CALLS[n] ?? [], `line ${String(n)} calls: ${shown}`);
  }
});

t.test('every RelayError code comes back as its E-code', async (t) => {
  const want: Readonly<Record<RelayErrorCode, number>> = {
    ERR_SESSION_NOT_FOUND: 50,
    ERR_NO_PORTS_NEW: 72,
    ERR_NO_PORTS_EXISTING: 71,
    ERR_SHUTTING_DOWN: 99,
    ERR_OVERLOADED: 98,
    ERR_NOTIFY_DISABLED: 75,
    ERR_NO_ROUTE: 32,
    ERR_NO_LOCAL_ADDRESS: 36,
    ERR_PLAYBACK: 60,
    ERR_PROMPT_TOO_LARGE: 61,
    ERR_NO_SESSION_CODECS: 35,
    ERR_RECORDING: 50,
    ERR_COPY: 65,
  };
  const { fake, dispatcher, runner } = setup();
  for (const code of Object.keys(RELAY_ERROR_CODES) as RelayErrorCode[]) {
    fake.failWith = new RelayError(code);
    // Through the runner for a socket that cannot leave a command unanswered (stdio).
    t.equal(await runner.run('U c 192.0.2.1 5000 ft'), `E${String(want[code])}\n`, code);
  }
  fake.failWith = new RelayError('ERR_SHUTTING_DOWN');
  t.strictSame(
    await dispatcher.handle('U c 192.0.2.1 5000 ft'),
    { text: 'E99\n', failed: true, unanswered: true },
    'a new session while draining: E99, left unanswered where the socket can',
  );
});

t.test(
  'draining: V answers E99, a new session is left unanswered, the rest is served',
  async (t) => {
    const { fake, stats, runner } = setup();
    await runner.run('U c 192.0.2.1 5000 ft');
    fake.draining = true;
    t.equal(await runner.run('V'), 'E99\n', 'V: E99, so that the SIP proxy keeps the daemon out');
    t.equal(await runner.run('VF 20050322', undefined, true), '1\n', 'VF as usual');
    fake.failWith = new RelayError('ERR_SHUTTING_DOWN');
    const before = { repld: stats.ncmdsRepld, errs: stats.ncmdsErrs };
    t.equal(await runner.run('U new 192.0.2.1 5000 ft', undefined, true), NO_ANSWER, 'no answer');
    t.equal(stats.ncmdsRepld, before.repld, 'no reply counted (ncmds_repld)');
    t.equal(stats.ncmdsErrs, before.errs + 1, 'an error counted (ncmds_errs)');
    t.equal(await runner.run('U new 192.0.2.1 5000 ft'), 'E99\n', 'E99 where it must answer');
    fake.failWith = undefined;
    t.equal(await runner.run('L c 192.0.2.1 5002 ft tt', undefined, true), '23822\n', 'L as usual');
  },
);

t.test('an unexpected error is logged and answered with the internal error code', async (t) => {
  const { fake, dispatcher } = setup();
  fake.failWith = new Error('boom');
  t.equal(await dispatcher.handle('U c 192.0.2.1 5000 ft'), `E${String(ECODES.NOMEM_9.code)}\n`);
  t.equal(await dispatcher.handle('V'), '20040107\n', 'and the next command is served');
});

t.test('U and L pass the parsed request; L of no session is a counted 0', async (t) => {
  const { fake, dispatcher } = setup();
  t.strictSame(await dispatcher.handle('L c 192.0.2.1 5000 ft tt'), { text: '0\n', failed: true });
  t.equal(await dispatcher.handle('Uac0,8z20 c 192.0.2.1 5000 ft tt'), '23820\n');
  t.same(fake.calls, [
    [
      'lookup',
      {
        callId: 'c',
        tag1: 'ft',
        tag2: 'tt',
        remote: { kind: 'address', address: '192.0.2.1', port: 5000, family: 4 },
        weak: false,
        local: { kind: 'default' },
        newPorts: false,
      },
    ],
    [
      'update',
      {
        callId: 'c',
        tag1: 'ft',
        tag2: 'tt',
        remote: { kind: 'address', address: '192.0.2.1', port: 5000, family: 4 },
        asymmetric: true,
        weak: false,
        local: { kind: 'default' },
        codecs: [0, 8],
        repacketizeMs: 20,
        newPorts: false,
      },
    ],
  ]);
});

t.test('sub-commands reach the manager with the forward leg, and stop at a failure', async (t) => {
  const { fake, dispatcher } = setup();
  const line = 'U c 192.0.2.1 5000 ft tt && S ttl=30 && Sr tos=16 && C c ft tt && L 192.0.2.2 6000';
  t.equal(await dispatcher.handle(line), '23820 && 0 && 0 && 0 && 23822\n');
  t.same(fake.calls.slice(1), [
    ['setLegTtl', 'session', 1, 30],
    ['setLegTos', 'session', 0, 16],
    ['find', 'c', 'ft', 'tt'],
    ['fork', 'found:1', 'session', 1],
    [
      'lookup',
      {
        callId: 'c',
        tag1: 'ft',
        tag2: 'tt',
        remote: { kind: 'address', address: '192.0.2.2', port: 6000, family: 4 },
        weak: false,
        local: { kind: 'default' },
        newPorts: false,
      },
    ],
  ]);
  fake.calls.length = 0;
  // setLegTos answers false for tos 0 here, as for an IPv6 leg: -1, and nothing after it runs.
  t.equal(
    await dispatcher.handle('U c 192.0.2.1 5000 ft tt && S tos=0 && S ttl=9'),
    '23820 && -1\n',
  );
  t.same(fake.calls.slice(1), [['setLegTos', 'session', 1, 0]]);
  fake.calls.length = 0;
  t.equal(await dispatcher.handle('U c 192.0.2.1 5000 ft && Dw'), '23820\n');
  t.same(fake.calls.slice(1), [['delete', 'c', 'ft', undefined, true]]);
});

t.test('the other commands reach their manager call', async (t) => {
  const { fake, dispatcher } = setup();
  await dispatcher.handle('U c 192.0.2.1 5000 ft');
  fake.calls.length = 0;
  t.equal(await dispatcher.handle('D c ft tt'), '0\n');
  t.equal(await dispatcher.handle('Na c ft'), '0\n');
  t.equal(await dispatcher.handle('N c xx'), 'E50\n');
  t.equal(await dispatcher.handle('S c ft'), '0\n');
  t.equal(await dispatcher.handle('P3 c prompt session ft'), 'E60\n');
  t.equal(
    await dispatcher.handle('Il'),
    `${[
      'sessions created: 1',
      'active sessions: 1',
      'active streams: 2',
      'packets received: 0',
      'packets transmitted: 0',
      'average load: 0.250000',
    ].join('\n')}\n`,
  );
  t.same(fake.calls, [
    ['delete', 'c', 'ft', 'tt', false],
    ['stopRecording', 'c', 'ft', undefined, true],
    ['stopRecording', 'c', 'xx', undefined, false],
    ['find', 'c', 'ft', undefined],
    ['stopPlayback', 'found:1'],
    ['find', 'c', 'ft', undefined],
    ['play', 'found:1', 'prompt', 'session', 3],
  ]);
});

t.test('the local families are read from the manager before each command', async (t) => {
  const { fake, dispatcher } = setup();
  t.equal(await dispatcher.handle('U6 c ::1 5000 ft'), `E${String(ECODES.INVLARG_6.code)}\n`);
  t.same(fake.calls, [], 'refused by the parser');
  fake.families = [4, 6];
  t.equal(await dispatcher.handle('U6 c ::1 5000 ft'), '23820\n');
  t.match(fake.calls, [['update', { local: { kind: 'family', family: 6 } }]]);
});

t.test('a counter name is looked up as a name only, never as an object property', async (t) => {
  const { dispatcher } = setup();
  await dispatcher.handle('U c 192.0.2.1 5000 ft');
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    t.equal(await dispatcher.handle(`Q c ft tt ${name}`), 'E62\n', `Q ${name}`);
    t.equal(await dispatcher.handle(`G ${name}`), 'E68\n', `G ${name}`);
  }
});
