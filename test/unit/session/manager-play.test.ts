/**
 * SessionManager.play()/stopPlayback() with a fake playback service and a socket-less media plane:
 * the reference's order (stop, E35, P0, E60), which leg plays, and players ending with sessions.
 */
import t from 'tap';
import { makeManager } from '../../helpers/manager.ts';
import type { PromptSource } from '../../../src/play/prompts.ts';
import type { PlaybackHooks, PlaybackService, PlayTarget } from '../../../src/play/scheduler.ts';
import type { OfferRequest } from '../../../src/session/manager.ts';

class FakePlayers implements PlaybackService {
  readonly calls: string[] = [];
  readonly playing = new Map<PlayTarget, PlaybackHooks>();
  available = new Set<string>(['moh.8']);
  onFind: () => void = () => undefined;
  async findPrompt(
    name: string,
    payloadTypes: readonly number[],
    packetMs: number,
  ): Promise<PromptSource | undefined> {
    this.calls.push(`find ${name} ${payloadTypes.join(',')} ${String(packetMs)}`);
    this.onFind();
    const pt = payloadTypes.find((p) => this.available.has(`${name}.${String(p)}`));
    if (pt === undefined) return undefined;
    return {
      path: `${name}.${String(pt)}`,
      data: Buffer.alloc(80),
      framing: { payloadType: pt, payloadBytes: 80, packetMs: 10, timestampStep: 80 },
    };
  }
  start(
    target: PlayTarget,
    prompt: PromptSource,
    count: number,
    hooks: PlaybackHooks,
  ): { ssrc: number; sequence: number } {
    this.stop(target);
    this.calls.push(`start ${prompt.path} x${String(count)}`);
    this.playing.set(target, hooks);
    target.playing = true;
    return { ssrc: 1, sequence: 2 };
  }
  stop(target: PlayTarget): boolean {
    const hooks = this.playing.get(target);
    if (hooks === undefined) return false;
    this.playing.delete(target);
    target.playing = false;
    this.calls.push('stop');
    hooks.onEnd('stopped');
    return true;
  }
}

const offer = (callId: string, tag1: string, tag2?: string, codecs?: number[]): OfferRequest => ({
  callId,
  tag1,
  ...(tag2 === undefined ? {} : { tag2 }),
  remote: { kind: 'address', address: '192.0.2.1', port: 4000, family: 4 },
  weak: false,
  local: { kind: 'default' },
  newPorts: false,
  ...(codecs === undefined ? {} : { codecs }),
});

async function setup() {
  const players = new FakePlayers();
  const { manager } = makeManager({ deps: { players } });
  await manager.update(offer('c', 'ft;1', undefined, [0, 8]));
  await manager.lookup(offer('c', 'ft;1', 'tt;1', [8]));
  const found = (t1: string, t2: string) => {
    const f = manager.find('c', t1, t2);
    if (f === undefined) throw new Error('no session');
    return f;
  };
  return { manager, players, found };
}

t.test("manager.play() plays out of the leg facing T1 with that leg's codecs", async (t) => {
  const { manager, players, found } = await setup();
  const caller = found('ft;1', 'tt;1');
  t.equal(caller.legT1, 1);
  await manager.play(caller, 'moh', 'session', -1);
  t.same(players.calls, ['find moh 0,8 -1', 'start moh.8 x-1']);
  t.equal(caller.session.legs[1].rtp.playing, true);
  t.equal(caller.session.legs[0].rtp.playing, false);
  const callee = found('tt;1', 'ft;1');
  await manager.play(callee, 'moh', [8], 2);
  t.equal(caller.session.legs[0].rtp.playing, true, 'both sides may hear a prompt');
  manager.stopPlayback(caller);
  t.equal(caller.session.legs[1].rtp.playing, false);
  t.equal(caller.session.legs[0].rtp.playing, true);
});

t.test('manager.play() stops first, then answers E35, then P0 returns', async (t) => {
  const { manager, players, found } = await setup();
  const callee = found('tt;1', 'ft;1');
  await manager.play(callee, 'moh', [8], -1);
  // Leg 0 has codecs [8] from L; clear them to see E35 come after the stop.
  callee.session.legs[0].codecs = undefined;
  await t.rejects(manager.play(callee, 'moh', 'session', 1), { code: 'ERR_NO_SESSION_CODECS' });
  t.equal(callee.session.legs[0].rtp.playing, false, 'the running prompt was stopped anyway');
  await manager.play(callee, 'moh', [8], -1);
  await manager.play(callee, 'moh', [1, 2, 3], 0);
  t.equal(callee.session.legs[0].rtp.playing, false, 'P0 stopped it');
  t.notOk(players.calls.includes('find moh 1,2,3 -1'), 'P0 looks for no file');
  await t.rejects(manager.play(callee, 'none', [8], 1), { code: 'ERR_PLAYBACK' });
  await t.rejects(manager.play(callee, 'moh', [], 1), { code: 'ERR_PLAYBACK' });
});

t.test(
  'manager.play() starts nothing when the session ended while the prompt was looked up',
  async (t) => {
    const { manager, players, found } = await setup();
    const caller = found('ft;1', 'tt;1');
    players.onFind = () => {
      manager.delete('c', 'ft', 'tt', false);
    };
    await t.rejects(manager.play(caller, 'moh', [8], 1), { code: 'ERR_PLAYBACK' });
    t.equal(players.playing.size, 0);
  },
);

t.test('manager.destroy() stops the players of both legs', async (t) => {
  const { manager, players, found } = await setup();
  await manager.play(found('ft;1', 'tt;1'), 'moh', [8], -1);
  await manager.play(found('tt;1', 'ft;1'), 'moh', [8], -1);
  t.equal(players.playing.size, 2);
  manager.deleteAll();
  t.equal(players.playing.size, 0);
});
