/**
 * One interop rig: our daemon (or, to compare, the reference rtpengine over ng), Kamailio driving
 * it (over the UDP or the unix control socket, or ng) and, per scenario, a SIPp caller and callee
 * with tcpdump capturing everything they and the daemon exchange. `Rig.call()` runs one scenario and returns what the wire showed; `checkCalls()` holds
 * the checks every scenario shares (SDP points at the daemon, RTP relayed both ways, no session
 * left, Kamailio logged no error). With `set`, Kamailio's set 0 holds several daemons, each with its
 * own media window and weight, and a call's checks count them all.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { inKernelPass } from '../helpers/kernel-mode.ts';
import { decodeNg, type NgReplyDict } from '../helpers/ng.ts';
import {
  Capture,
  deadline,
  freePortBlock,
  freeUdpPort,
  isRtp,
  Kamailio,
  parseSip,
  PROMPT_BYTE,
  PROMPT_BYTES,
  readPcap,
  removeDir,
  RtpengineDaemon,
  RtpproxyDaemon,
  rtpId,
  sleep,
  startSipp,
  tempDir,
  waitBound,
  writeTone,
  type Exit,
  type Packet,
  type Proc,
  type Relay,
  type Sdp,
  type SipMessage,
} from './harness.ts';

export interface RigConfig {
  readonly name: string;
  /**
   * How Kamailio reaches the daemon: its rtpproxy module over the UDP or the unix control socket,
   * or its rtpengine module over the ng protocol.
   */
  readonly control: 'udp' | 'unix' | 'ng';
  /**
   * The relay under test: ours (the default), or the reference rtpengine (Debian's
   * rtpengine-daemon, userspace), which Kamailio then drives over ng (`control: 'ng'`).
   */
  readonly relay?: 'ours' | 'rtpengine';
  readonly uacIp: string;
  readonly uasIp: string;
  /** The daemon's media window (`-m`/`-M`) on 127.0.0.1. */
  readonly portMin: number;
  readonly portMax: number;
  /** Probe bridge mode (issue 3) with a second daemon on `-l 127.0.0.1/EXTERNAL`. */
  readonly bridge?: {
    readonly external: string;
    readonly portMin: number;
    readonly portMax: number;
  };
  /** Probe playback (issue 5). */
  readonly playback?: boolean;
  /**
   * Several daemons in Kamailio's set 0 (UDP control sockets), instead of one daemon on
   * `portMin`..`portMax`, which must then span every member's window.
   */
  readonly set?: readonly SetMember[];
  /** `-T` of the daemons (their default otherwise). */
  readonly ttl?: number;
  /** Kamailio's rtpproxy_disable_tout and rtpproxy_retr (the module's defaults otherwise). */
  readonly kamailio?: { readonly disableTimeout: number; readonly retries: number };
}

/** One daemon of a set: its weight in rtpproxy_sock and its media window. */
export interface SetMember {
  readonly weight: number;
  readonly portMin: number;
  readonly portMax: number;
}

export const DAEMON_IP = '127.0.0.1';

export interface CallSpec {
  readonly title: string;
  /** The Request-URI user: the Kamailio variant (kamailio.cfg). */
  readonly service: string;
  readonly uac: string;
  readonly uas: string;
  readonly calls?: number;
  /** How long media flows before the caller hangs up (or cancels). */
  readonly holdMs?: number;
  /** Calls started per second. */
  readonly rate?: number;
  /**
   * Other calls run on the daemons at the same time: the daemon-wide figures (sessions created and
   * left, packets relayed) are not this run's alone, and checkCalls() leaves them out.
   */
  readonly shared?: boolean;
}

/**
 * A control command Kamailio sent and the reply it got (UDP control socket, or the ng socket: then
 * `verb` is the ng command, `ng` the request dictionary).
 */
export interface ControlExchange {
  /** The control port of the daemon it went to. */
  readonly port: number;
  readonly command: string;
  readonly verb: string;
  readonly callId: string;
  readonly reply: string | undefined;
  readonly ng?: NgReplyDict;
}

export class Rig {
  readonly config: RigConfig;
  readonly dir: string;
  /** The first daemon of set 0, as started. */
  readonly daemon: Relay;
  readonly kamailio: Kamailio;
  readonly controlPort: number;
  readonly bridgeDaemon: Relay | undefined;
  /** Why bridge mode is not tested (undefined: it is). */
  readonly bridgeSkip: string | undefined;
  /** Why playback is not tested (undefined: it is). */
  readonly playbackSkip: string | undefined;
  readonly prompt: string;
  readonly recordDir: string;
  readonly #members: Relay[];
  readonly #running: Relay[];
  readonly #t: Test;
  #runs = 0;

  private constructor(fields: {
    t: Test;
    config: RigConfig;
    dir: string;
    members: Relay[];
    running: Relay[];
    kamailio: Kamailio;
    controlPort: number;
    bridgeDaemon: Relay | undefined;
    bridgeSkip: string | undefined;
    playbackSkip: string | undefined;
    prompt: string;
    recordDir: string;
  }) {
    this.#t = fields.t;
    this.config = fields.config;
    this.dir = fields.dir;
    this.#members = fields.members;
    this.#running = fields.running;
    const first = fields.members[0];
    if (first === undefined) throw new Error('a rig needs a daemon');
    this.daemon = first;
    this.kamailio = fields.kamailio;
    this.controlPort = fields.controlPort;
    this.bridgeDaemon = fields.bridgeDaemon;
    this.bridgeSkip = fields.bridgeSkip;
    this.playbackSkip = fields.playbackSkip;
    this.prompt = fields.prompt;
    this.recordDir = fields.recordDir;
  }

  static async start(t: Test, config: RigConfig): Promise<Rig> {
    const dir = tempDir(`rtpproxy-interop-${config.name}-`);
    // Registered first, so it runs first: stop everything in order (Kamailio talks to the
    // daemons), keep the logs, and remove the files unless something failed.
    const running: { kamailio?: Kamailio; daemons: Relay[] } = { daemons: [] };
    t.teardown(async () => {
      await running.kamailio?.stop();
      for (const d of running.daemons) await d.stop();
      if (running.kamailio !== undefined) {
        writeFileSync(join(dir, 'kamailio.log'), running.kamailio.proc.output());
      }
      for (const d of running.daemons) {
        writeFileSync(join(dir, `${d.proc.name}.log`), d.proc.output());
      }
      if (t.passing()) removeDir(dir);
      else t.comment(`interop files kept in ${dir}`);
    });
    const recordDir = join(dir, 'recordings');
    mkdirSync(recordDir);
    const controlPort = await freeUdpPort(DAEMON_IP);
    const unixSocket = join(dir, 'rtpproxy.sock');
    const ttl = config.ttl === undefined ? {} : { ttl: config.ttl };
    const ngPort = config.control === 'ng' ? await freeUdpPort(DAEMON_IP) : undefined;
    const reference = config.relay === 'rtpengine';
    if (reference && ngPort === undefined) throw new Error('rtpengine is driven over ng only');
    const daemon: Relay =
      reference && ngPort !== undefined
        ? await RtpengineDaemon.start(t, `rtpengine(${config.name})`, {
            controlPort: ngPort,
            listen: DAEMON_IP,
            portMin: config.portMin,
            portMax: config.portMax,
            recordDir,
          })
        : await RtpproxyDaemon.start(t, `rtpproxy(${config.name})`, {
            controlPort,
            ...(config.control === 'unix' ? { unixSocket } : {}),
            ...(ngPort === undefined ? {} : { ngPort }),
            listen: DAEMON_IP,
            portMin: config.set?.[0]?.portMin ?? config.portMin,
            portMax: config.set?.[0]?.portMax ?? config.portMax,
            recordDir,
            ...ttl,
          });
    running.daemons.push(daemon);
    // The other members of set 0.
    const members = [daemon];
    for (const [i, member] of (config.set ?? []).slice(1).entries()) {
      const peer = await RtpproxyDaemon.start(t, `rtpproxy-${String(i + 2)}(${config.name})`, {
        controlPort: await freeUdpPort(DAEMON_IP),
        listen: DAEMON_IP,
        portMin: member.portMin,
        portMax: member.portMax,
        recordDir,
        ...ttl,
      });
      running.daemons.push(peer);
      members.push(peer);
    }
    const udpSock = (d: Relay): string => `udp:${DAEMON_IP}:${String(d.options.controlPort)}`;
    const set = config.set;
    const rtpproxySock =
      set !== undefined
        ? members.map((d, i) => `${udpSock(d)}=${String(set[i]?.weight ?? 1)}`).join(' ')
        : config.control === 'unix'
          ? `unix:${unixSocket}`
          : udpSock(daemon);

    // Playback (issue 5): a prompt in the reference's layout (NAME.<payload type>, raw PCMU).
    const prompt = join(dir, 'prompt');
    writeFileSync(`${prompt}.0`, Buffer.alloc(PROMPT_BYTES, PROMPT_BYTE));
    let playbackSkip: string | undefined = 'not probed in this file';
    if (config.playback === true) {
      playbackSkip =
        daemon instanceof RtpproxyDaemon
          ? await probePlayback(daemon, prompt)
          : 'rtpengine plays media files through ffmpeg, not the prompts of this suite';
    }

    // Bridge mode (issue 3): a second daemon with an internal and an external address.
    let bridgeDaemon: Relay | undefined;
    let bridgeSkip: string | undefined = 'not probed in this file';
    let bridgeNgPort: number | undefined;
    if (config.bridge !== undefined) {
      const bridge = config.bridge;
      const bridgePort = await freeUdpPort(DAEMON_IP);
      bridgeNgPort = ngPort === undefined ? undefined : await freeUdpPort(DAEMON_IP);
      const options = {
        listen: `${DAEMON_IP}/${bridge.external}`,
        portMin: bridge.portMin,
        portMax: bridge.portMax,
        recordDir,
      };
      try {
        if (reference && bridgeNgPort !== undefined) {
          bridgeDaemon = await RtpengineDaemon.start(t, `rtpengine-bridge(${config.name})`, {
            ...options,
            controlPort: bridgeNgPort,
          });
          running.daemons.push(bridgeDaemon);
          bridgeSkip = undefined;
        } else {
          const ours = await RtpproxyDaemon.start(t, `rtpproxy-bridge(${config.name})`, {
            ...options,
            controlPort: bridgePort,
            ...(bridgeNgPort === undefined ? {} : { ngPort: bridgeNgPort }),
          });
          bridgeDaemon = ours;
          running.daemons.push(ours);
          bridgeSkip = await probeBridge(ours, bridge.external);
        }
      } catch (err) {
        const first = err instanceof Error ? err.message.split('\n')[0] : String(err);
        bridgeSkip = `bridge mode is not available (issue 3): the daemon does not start with -l A/B: ${String(first)}`;
      }
      if (bridgeSkip !== undefined && bridgeDaemon !== undefined) {
        await bridgeDaemon.stop();
        bridgeDaemon = undefined;
      }
    }

    const kamailio = await Kamailio.start(t, `kamailio(${config.name})`, {
      port: await freeUdpPort(DAEMON_IP),
      rtpproxySock: ngPort === undefined ? rtpproxySock : `udp:${DAEMON_IP}:${String(ngPort)}`,
      ...(ngPort === undefined ? {} : { ng: true }),
      ...(config.kamailio === undefined
        ? {}
        : { disableTimeout: config.kamailio.disableTimeout, retries: config.kamailio.retries }),
      ...(bridgeDaemon === undefined
        ? {}
        : {
            bridgeSock: `udp:${DAEMON_IP}:${String(bridgeNgPort ?? bridgeDaemon.options.controlPort)}`,
          }),
      prompt,
      workDir: join(dir, 'kamailio'),
    });
    running.kamailio = kamailio;
    const rig = new Rig({
      t,
      config,
      dir,
      members,
      running: running.daemons,
      kamailio,
      controlPort,
      bridgeDaemon,
      bridgeSkip,
      playbackSkip,
      prompt,
      recordDir,
    });
    return rig;
  }

  /** The daemons of set 0 now, in rtpproxy_sock order (a restarted one replaces its old self). */
  get members(): readonly Relay[] {
    return this.#members;
  }

  /**
   * Starts member `index` again with the same control port and media window, once its process has
   * exited (a SIGTERM, the end of a drain).
   */
  async restart(index: number): Promise<RtpproxyDaemon> {
    const old = this.#members[index];
    if (!(old instanceof RtpproxyDaemon)) throw new Error(`no daemon of ours at ${String(index)}`);
    if (old.proc.running()) throw new Error(`${old.proc.name} is still running`);
    const again = await RtpproxyDaemon.start(this.#t, `${old.proc.name}-again`, old.options);
    this.#running.push(again);
    this.#members[index] = again;
    return again;
  }

  /** Runs one scenario: capture on, callee, caller, wait for both, no session left, capture off. */
  async call(t: Test, spec: CallSpec): Promise<CallRun> {
    this.#runs += 1;
    const dir = join(
      this.dir,
      `${String(this.#runs).padStart(2, '0')}-${spec.title.replace(/[^A-Za-z0-9]+/g, '-')}`,
    );
    mkdirSync(dir, { recursive: true });
    writeTone(join(dir, 'tone.pcmu'));
    const { uacIp, uasIp } = this.config;
    const calls = spec.calls ?? 1;
    const holdMs = spec.holdMs ?? 2000;
    // SIP and media ports of each user agent, free right now, in one block so that they cannot
    // overlap: the SIP port first, then the media ports (SIPp's rtp_stream takes one even port per
    // call upwards from -mp, and binds -mp itself at start).
    const uacPort = freePortBlock(uacIp, 2 * calls + 6);
    const uasPort = freePortBlock(uasIp, 2 * calls + 6);
    const uacMedia = uacPort + 2;
    const uasMedia = uasPort + 2;
    const daemons =
      spec.service.startsWith('bridge') && this.bridgeDaemon !== undefined
        ? [this.bridgeDaemon]
        : [...this.#members];

    const mark = this.kamailio.mark();
    const before = await Promise.all(daemons.map(figures));
    const hosts = [
      uacIp,
      uasIp,
      ...(this.config.bridge === undefined ? [] : [this.config.bridge.external]),
    ];
    const ports = daemons.flatMap((d) => [
      `port ${String(d.options.controlPort)}`,
      ...(d.options.ngPort === undefined ? [] : [`port ${String(d.options.ngPort)}`]),
    ]);
    const filter = `udp and (${[...hosts.map((h) => `host ${h}`), ...ports].join(' or ')})`;
    const capture = await Capture.start(
      t,
      `tcpdump(${spec.title})`,
      join(dir, 'wire.pcap'),
      filter,
      uacIp,
    );

    const timeoutS =
      Math.ceil((holdMs + 3000) / 1000) + Math.ceil(calls / (spec.rate ?? calls)) + 15;
    const uas = startSipp(t, {
      name: 'uas',
      scenario: spec.uas,
      cwd: dir,
      ip: uasIp,
      port: uasPort,
      mediaPort: uasMedia,
      calls,
      timeoutS,
    });
    await waitBound(uas, uasIp, uasPort);
    const uac = startSipp(t, {
      name: 'uac',
      scenario: spec.uac,
      cwd: dir,
      ip: uacIp,
      port: uacPort,
      mediaPort: uacMedia,
      calls,
      timeoutS,
      client: {
        proxy: `${DAEMON_IP}:${String(this.kamailio.port)}`,
        service: spec.service,
        uas: `${uasIp}:${String(uasPort)}`,
        holdMs,
        rate: spec.rate ?? calls,
      },
    });

    // Sample the daemons' active sessions while the calls run.
    let maxActive = 0;
    const sampling = (async () => {
      while (uac.running()) {
        let active = 0;
        for (const d of daemons) {
          try {
            if (d.proc.running()) active += await d.activeSessions();
          } catch {
            // A slow reply (or a daemon that just stopped): the next sample will do.
          }
        }
        maxActive = Math.max(maxActive, active);
        await sleep(250);
      }
    })();
    const uacExit = await waitExit(uac, (timeoutS + 10) * 1000);
    const uasExit = await waitExit(uas, 10_000);
    await sampling;
    let activeAfter = 0;
    for (const d of daemons) {
      if (!d.proc.running()) continue;
      // Beside other calls, sessions may rightly be left: one look, no wait.
      const left = spec.shared === true ? d.activeSessions() : d.drained(3000);
      activeAfter += await left.catch(() => 0);
    }
    const { packets, dropped, complete } = await capture.stop();
    const after = await Promise.all(daemons.map(figures));
    const delta = (k: 'created' | 'relayed', i: number): number | undefined => {
      const [a, b] = [after[i]?.[k], before[i]?.[k]];
      return a === undefined || b === undefined ? undefined : a - b;
    };
    const createdBy = daemons.map((_d, i) => delta('created', i));
    const sum = (list: (number | undefined)[]): number =>
      list.reduce<number>((n, v) => n + (v ?? 0), 0);
    return new CallRun({
      rig: this,
      spec,
      dir,
      daemons,
      createdBy,
      uac,
      uas,
      uacExit,
      uasExit,
      uacSip: `${uacIp}:${String(uacPort)}`,
      uasSip: `${uasIp}:${String(uasPort)}`,
      packets,
      dropped,
      complete,
      maxActive,
      activeAfter,
      sessionsCreated: sum(createdBy),
      relayed: sum(daemons.map((_d, i) => delta('relayed', i))),
      problems: this.kamailio.problemsSince(mark),
      kamailioMark: mark,
    });
  }
}

/**
 * A relay's sessions created and packets relayed so far; undefined when it does not run (stopped,
 * or it ends its drain during the call).
 */
async function figures(d: Relay): Promise<{ created: number; relayed: number } | undefined> {
  if (!d.proc.running()) return undefined;
  try {
    return await d.figures();
  } catch {
    return undefined;
  }
}

async function waitExit(proc: Proc, ms: number): Promise<Exit> {
  try {
    return await deadline(proc.exited, ms, `${proc.name} to finish`);
  } catch {
    return proc.stop('SIGTERM', 2000);
  }
}

/** undefined when `P` plays a prompt; otherwise why the playback scenarios are skipped. */
async function probePlayback(daemon: RtpproxyDaemon, prompt: string): Promise<string | undefined> {
  const cid = `probe-playback-${String(process.pid)}`;
  await daemon.command(`Uc0 ${cid} ${DAEMON_IP} 9 pb;1`);
  const reply = await daemon.command(`P1 ${cid} ${prompt} session pb;1`);
  await daemon.command(`D ${cid} pb`);
  return reply === '0'
    ? undefined
    : `playback is not available (issue 5): P with a valid PCMU prompt answered ${reply}`;
}

/** undefined when `UIE` answers with the external address; otherwise why bridge mode is skipped. */
async function probeBridge(daemon: RtpproxyDaemon, external: string): Promise<string | undefined> {
  const cid = `probe-bridge-${String(process.pid)}`;
  const reply = await daemon.command(`UIE ${cid} 127.0.0.2 9 pb;1`);
  await daemon.command(`D ${cid} pb`);
  return new RegExp(`^\\d+ ${external.replace(/\./g, '\\.')}$`).test(reply)
    ? undefined
    : `bridge mode is not available (issue 3): UIE answered ${reply}, not a port on ${external}`;
}

/** One call's view of the wire. */
export interface CallView {
  readonly callId: string;
  /** SIP messages that reached the caller / the callee, and that they sent. */
  readonly toUac: readonly SipMessage[];
  readonly toUas: readonly SipMessage[];
  readonly fromUac: readonly SipMessage[];
  readonly fromUas: readonly SipMessage[];
  /** The SDP each side received (in order) and the SDP it sent. */
  readonly sdpToUac: readonly Sdp[];
  readonly sdpToUas: readonly Sdp[];
  readonly sdpFromUac: readonly Sdp[];
  readonly sdpFromUas: readonly Sdp[];
  /** Control commands about this call (UDP control socket only). */
  readonly control: readonly ControlExchange[];
}

export interface Flows {
  readonly callerToDaemon: readonly Packet[];
  readonly daemonToCallee: readonly Packet[];
  readonly calleeToDaemon: readonly Packet[];
  readonly daemonToCaller: readonly Packet[];
}

const ep = (ip: string, port: number): string => `${ip}:${String(port)}`;

export class CallRun {
  readonly rig: Rig;
  readonly spec: CallSpec;
  readonly dir: string;
  /** The daemons the calls could go to (set 0, or the bridge daemon). */
  readonly daemons: readonly Relay[];
  /** Sessions each of them created during the run (undefined: it was not running at one end). */
  readonly createdBy: readonly (number | undefined)[];
  readonly uac: Proc;
  readonly uas: Proc;
  readonly uacExit: Exit;
  readonly uasExit: Exit;
  readonly uacSip: string;
  readonly uasSip: string;
  readonly packets: readonly Packet[];
  readonly dropped: number;
  /** tcpdump wrote everything up to the end of the call. */
  readonly complete: boolean;
  readonly maxActive: number;
  readonly activeAfter: number;
  /** Sums over the daemons that ran from start to end. */
  readonly sessionsCreated: number;
  readonly relayed: number;
  readonly problems: readonly string[];
  readonly kamailioMark: number;
  readonly sip: readonly SipMessage[];
  readonly rtp: readonly Packet[];
  readonly control: readonly ControlExchange[];

  constructor(
    fields: Omit<CallRun, 'sip' | 'rtp' | 'control' | 'callIds' | 'view' | 'flows' | 'describe'>,
  ) {
    this.rig = fields.rig;
    this.spec = fields.spec;
    this.dir = fields.dir;
    this.daemons = fields.daemons;
    this.createdBy = fields.createdBy;
    this.uac = fields.uac;
    this.uas = fields.uas;
    this.uacExit = fields.uacExit;
    this.uasExit = fields.uasExit;
    this.uacSip = fields.uacSip;
    this.uasSip = fields.uasSip;
    this.packets = fields.packets;
    this.dropped = fields.dropped;
    this.complete = fields.complete;
    this.maxActive = fields.maxActive;
    this.activeAfter = fields.activeAfter;
    this.sessionsCreated = fields.sessionsCreated;
    this.relayed = fields.relayed;
    this.problems = fields.problems;
    this.kamailioMark = fields.kamailioMark;
    const sip: SipMessage[] = [];
    const rtp: Packet[] = [];
    const ctrl = new Set(
      this.daemons.flatMap((d) => [
        d.options.controlPort,
        d.options.ngPort ?? d.options.controlPort,
      ]),
    );
    const commands = new Map<string, { port: number; command: string }>();
    const replies = new Map<string, string>();
    for (const p of this.packets) {
      if (ctrl.has(p.dport) || ctrl.has(p.sport)) {
        const text = p.payload.toString('latin1').trim();
        const space = text.indexOf(' ');
        if (space < 0) continue;
        const [cookie, rest] = [text.slice(0, space), text.slice(space + 1)];
        if (ctrl.has(p.dport)) commands.set(cookie, { port: p.dport, command: rest });
        else replies.set(cookie, rest);
        continue;
      }
      const msg = parseSip(p);
      if (msg !== undefined) sip.push(msg);
      else if (isRtp(p.payload)) rtp.push(p);
    }
    this.sip = sip;
    this.rtp = rtp;
    this.control = [...commands].map(([cookie, { port, command }]) => {
      const ng = ngRequest(command);
      if (ng !== undefined) {
        const text = (v: unknown): string => (typeof v === 'string' ? v : '');
        return {
          port,
          command,
          verb: text(ng['command']),
          callId: text(ng['call-id']),
          reply: replies.get(cookie),
          ng,
        };
      }
      const tokens = command.split(/\s+/);
      return {
        port,
        command,
        verb: /^VF/i.test(tokens[0] ?? '') ? 'VF' : (tokens[0] ?? '').slice(0, 1).toUpperCase(),
        callId: tokens[1] ?? '',
        reply: replies.get(cookie),
      };
    });
  }

  /** Call-IDs of the INVITEs the caller sent. */
  callIds(): string[] {
    return [
      ...new Set(
        this.sip
          .filter((m) => m.from === this.uacSip && m.method === 'INVITE')
          .map((m) => m.callId),
      ),
    ];
  }

  view(callId: string): CallView {
    const mine = this.sip.filter((m) => m.callId === callId);
    const toUac = mine.filter((m) => m.to === this.uacSip);
    const toUas = mine.filter((m) => m.to === this.uasSip);
    const fromUac = mine.filter((m) => m.from === this.uacSip);
    const fromUas = mine.filter((m) => m.from === this.uasSip);
    const sdps = (list: SipMessage[]): Sdp[] =>
      list.flatMap((m) => (m.sdp === undefined ? [] : [m.sdp]));
    return {
      callId,
      toUac,
      toUas,
      fromUac,
      fromUas,
      sdpToUac: sdps(toUac),
      sdpToUas: sdps(toUas),
      sdpFromUac: sdps(fromUac),
      sdpFromUas: sdps(fromUas),
      control: this.control.filter((c) => c.callId === callId),
    };
  }

  /** RTP of one call, by direction, from the endpoints its SDP named. */
  flows(v: CallView): Flows {
    const uacMedia = v.sdpFromUac[0];
    const uasMedia = v.sdpFromUas[0];
    const toCaller = v.sdpToUac[0];
    const toCallee = v.sdpToUas[0];
    const pick = (src: Sdp | undefined, dst: Sdp | undefined): Packet[] =>
      src === undefined || dst === undefined
        ? []
        : this.rtp.filter(
            (p) =>
              ep(p.src, p.sport) === ep(src.address, src.port) &&
              ep(p.dst, p.dport) === ep(dst.address, dst.port),
          );
    return {
      callerToDaemon: pick(uacMedia, toCaller),
      daemonToCallee: pick(toCallee, uasMedia),
      calleeToDaemon: pick(uasMedia, toCallee),
      daemonToCaller: pick(toCaller, uacMedia),
    };
  }

  /** Diagnostics for a failed assertion. */
  describe(): Record<string, unknown> {
    return {
      dir: this.dir,
      uacExit: this.uacExit,
      uasExit: this.uasExit,
      uac: this.uac.tail(25),
      uas: this.uas.tail(25),
      sip: this.sip.map((m) => `${m.from} -> ${m.to} ${m.label} ${m.callId}`).slice(0, 40),
      control: this.control.map((c) => `${c.command} => ${String(c.reply)}`).slice(0, 40),
    };
  }
}

/** An ng request dictionary (`d...e`), or undefined for an rtpproxy protocol command. */
function ngRequest(command: string): NgReplyDict | undefined {
  if (!command.startsWith('d')) return undefined;
  try {
    return decodeNg(Buffer.from(command, 'latin1'));
  } catch {
    return undefined;
  }
}

export interface Expect {
  readonly calls: number;
  /** RTP relayed in both directions, at least this many packets each way per call. */
  readonly minPackets: number;
  /** The caller gets no SDP (rejected call). */
  readonly noAnswer?: boolean;
  /** SIP messages the callee must have received with the daemon's SDP. */
  readonly uasSdpIn?: string;
  /** SIP message (label) the caller must have received with the daemon's SDP. */
  readonly uacSdpIn?: string;
  /** Control verbs Kamailio must have sent for each call (checked on the UDP control socket). */
  readonly verbs?: readonly string[];
  /** Bridge mode: the addresses the caller's and the callee's SDP must carry (default: -l). */
  readonly callerSideAddress?: string;
  readonly calleeSideAddress?: string;
  /** Kamailio log lines of ERROR level that are expected (a daemon of the set was stopped). */
  readonly allowProblems?: RegExp;
}

function inWindow(rig: Rig, port: number, bridge: boolean): boolean {
  const w = bridge && rig.config.bridge !== undefined ? rig.config.bridge : rig.config;
  return port >= w.portMin && port <= w.portMax;
}

/** The checks every scenario shares. Returns the per-call views for scenario-specific checks. */
export function checkCalls(t: Test, run: CallRun, expect: Expect): CallView[] {
  const rig = run.rig;
  const bridge = expect.calleeSideAddress !== undefined || expect.callerSideAddress !== undefined;
  const callerAddress = expect.callerSideAddress ?? DAEMON_IP;
  const diag = run.describe();
  t.equal(run.uacExit.code, 0, 'the SIPp caller finished every call successfully', diag);
  t.equal(run.uasExit.code, 0, 'the SIPp callee finished every call successfully', diag);
  const ids = run.callIds();
  t.equal(ids.length, expect.calls, `${String(expect.calls)} call(s) on the wire`, diag);
  const shared = run.spec.shared === true;
  if (!shared) {
    // Ours: G nsess_created and I; rtpengine: statistics' managedsessions and list.
    t.equal(run.sessionsCreated, expect.calls, 'the relay created one session per call');
    t.equal(run.activeAfter, 0, 'the relay has no session left afterwards');
  }
  const allowed = expect.allowProblems;
  t.same(
    allowed === undefined ? run.problems : run.problems.filter((line) => !allowed.test(line)),
    [],
    allowed === undefined ? 'Kamailio logged no error' : 'Kamailio logged no unexpected error',
  );
  t.ok(run.complete, 'the capture holds the whole call (tcpdump wrote the end marker)');
  if (run.dropped > 0) t.comment(`tcpdump: ${String(run.dropped)} packets dropped by the kernel`);

  const views: CallView[] = [];
  const daemonPorts = new Set<number>();
  for (const callId of ids) {
    const v = run.view(callId);
    views.push(v);
    const label = expect.calls > 1 ? `call ${callId}: ` : '';
    // The SDP each side receives names the daemon's address and a port of its window.
    const calleeAddress = expect.calleeSideAddress ?? DAEMON_IP;
    t.ok(v.sdpToUas.length > 0, `${label}the callee received SDP`, diag);
    for (const sdp of v.sdpToUas) {
      t.equal(
        sdp.address,
        calleeAddress,
        `${label}the callee's SDP points at the daemon (${calleeAddress})`,
      );
      t.ok(
        inWindow(rig, sdp.port, bridge),
        `${label}the callee's SDP port ${String(sdp.port)} is in the daemon's range`,
      );
    }
    if (expect.uasSdpIn !== undefined) {
      t.ok(
        v.toUas.some((m) => m.label === expect.uasSdpIn && m.sdp !== undefined),
        `${label}the callee got the daemon's SDP in the ${expect.uasSdpIn}`,
      );
    }
    if (expect.noAnswer === true) {
      t.equal(v.sdpToUac.length, 0, `${label}the caller received no SDP`);
    } else {
      t.ok(v.sdpToUac.length > 0, `${label}the caller received SDP`, diag);
      for (const sdp of v.sdpToUac) {
        t.equal(
          sdp.address,
          callerAddress,
          `${label}the caller's SDP points at the daemon (${callerAddress})`,
        );
        t.ok(
          inWindow(rig, sdp.port, bridge),
          `${label}the caller's SDP port ${String(sdp.port)} is in the daemon's range`,
        );
      }
      if (expect.uacSdpIn !== undefined) {
        t.ok(
          v.toUac.some((m) => m.label === expect.uacSdpIn && m.sdp !== undefined),
          `${label}the caller got the daemon's SDP in the ${expect.uacSdpIn}`,
        );
      }
      const [a, b] = [v.sdpToUac[0], v.sdpToUas[0]];
      // Own endpoints: in bridge mode the two sides are on different addresses, where the daemon's
      // port tables (one per local address) may hand out the same port number.
      const endpoint = (s: Sdp | undefined): string | undefined =>
        s === undefined ? undefined : `${s.address} ${String(s.port)}`;
      t.not(endpoint(a), endpoint(b), `${label}each side got its own daemon endpoint`);
      for (const s of [a, b]) if (s !== undefined) daemonPorts.add(s.port);
    }
    // The ports came from the daemon: they are what it answered to Kamailio's U and L.
    if (rig.config.control === 'udp' && expect.verbs !== undefined) {
      const verbs = v.control.map((c) => c.verb);
      for (const verb of expect.verbs) {
        t.ok(verbs.includes(verb), `${label}Kamailio sent ${verb}`, { verbs });
      }
      const allocated = new Set(
        v.control.flatMap((c) => {
          const m = /^\d+/.exec(c.reply ?? '');
          return m === null ? [] : [Number(m[0])];
        }),
      );
      for (const sdp of [...v.sdpToUas, ...v.sdpToUac]) {
        t.ok(
          allocated.has(sdp.port),
          `${label}SDP port ${String(sdp.port)} is one the daemon answered to U/L`,
          {
            control: v.control,
          },
        );
      }
    }
    if (expect.minPackets > 0) {
      const f = run.flows(v);
      // What the daemon sent on is what it got from the other side, packet for packet. A packet
      // tcpdump dropped (it says how many) cannot be matched, so that many may go unmatched. In
      // the kernel pass a packet the kernel forwarded was rewritten before it reached the wire, so
      // only its relayed copy was captured: it must belong to a stream the other side sent.
      const kernel = inKernelPass();
      const toCallee = matchRelayed(f.daemonToCallee, f.callerToDaemon, kernel);
      const toCaller = matchRelayed(f.daemonToCaller, f.calleeToDaemon, kernel);
      for (const [list, what, forwarded] of [
        [f.callerToDaemon, 'caller -> daemon', toCallee.kernel],
        [f.daemonToCallee, 'daemon -> callee (relayed)', 0],
        [f.calleeToDaemon, 'callee -> daemon', toCaller.kernel],
        [f.daemonToCaller, 'daemon -> caller (relayed)', 0],
      ] as const) {
        const inKernel = forwarded > 0 ? ` (and ${String(forwarded)} forwarded by the kernel)` : '';
        t.ok(
          list.length + forwarded >= expect.minPackets,
          `${label}${what}: ${String(list.length)} RTP packets${inKernel}`,
        );
      }
      for (const [m, what] of [
        [toCallee, 'the callee got came from the caller'],
        [toCaller, 'the caller got came from the callee'],
      ] as const) {
        t.equal(m.changed, 0, `${label}every packet ${what}, unchanged`);
        const note = `${String(m.unmatched)} unmatched, ${String(run.dropped)} not captured`;
        t.ok(m.unmatched <= run.dropped, `${label}every packet ${what} (${note})`);
      }
    }
  }
  if (expect.calls > 1 && expect.noAnswer !== true) {
    t.equal(daemonPorts.size, 2 * expect.calls, 'every call got its own pair of daemon ports');
  }
  if (expect.minPackets > 0 && !shared) {
    const want = 2 * expect.minPackets * expect.calls;
    t.ok(run.relayed >= want, `the relay counted ${String(run.relayed)} relayed packets`);
  }
  return views;
}

/**
 * Matches what the daemon sent (`out`) against what it received (`inn`) by SSRC and sequence
 * number: `unmatched` packets of `out` have no counterpart, `changed` ones differ in their bytes.
 * With `kernel` (the kernel pass), a packet without a counterpart whose SSRC is one of `inn`'s
 * counts as `kernel`: forwarded by the kernel, which rewrote it before it reached the wire.
 */
export function matchRelayed(
  out: readonly { payload: Buffer }[],
  inn: readonly { payload: Buffer }[],
  kernel = false,
): { unmatched: number; changed: number; kernel: number } {
  const sent = new Map(inn.map((p) => [rtpId(p.payload), p.payload]));
  const streams = new Set(inn.map((p) => p.payload.readUInt32BE(8)));
  let unmatched = 0;
  let changed = 0;
  let forwarded = 0;
  for (const p of out) {
    const original = sent.get(rtpId(p.payload));
    if (original !== undefined) {
      if (!original.equals(p.payload)) changed += 1;
    } else if (kernel && streams.has(p.payload.readUInt32BE(8))) forwarded += 1;
    else unmatched += 1;
  }
  return { unmatched, changed, kernel: forwarded };
}

/** Recordings (files under -r) of one call, with the number of packets in each (pcap, -P). */
export function recordingsOf(
  rig: Rig,
  callId: string,
): { file: string; packets: number; bytes: number; payloads: Buffer[] }[] {
  const prefix = `${callId.replace(/\//g, '_')}=`;
  return readdirSync(rig.recordDir)
    .filter((name) => name.startsWith(prefix))
    .map((name) => {
      const file = join(rig.recordDir, name);
      const bytes = statSync(file).size;
      let payloads: Buffer[];
      try {
        payloads = readPcap(readFileSync(file)).map((p) => p.payload);
      } catch {
        payloads = [];
      }
      return { file: name, packets: payloads.length, bytes, payloads };
    });
}
