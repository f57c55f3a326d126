/**
 * The composition root: the only module that constructs the concrete pieces and wires them from
 * the Config. start() binds the control sockets; close() takes everything down in order.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from './base/config.ts';
import { Dispatcher } from './control/dispatch.ts';
import { controlSocketExposure } from './control/exposure.ts';
import { StdioControlListener, StreamControlListener } from './control/listener-stream.ts';
import { UdpControlListener } from './control/listener-udp.ts';
import { formatSocketSpec } from './control/socket-spec.ts';
import { ReplyCache } from './control/reply-cache.ts';
import { CommandRunner, type ControlListener } from './control/runner.ts';
import type { CountedReply } from './control/socket-types.ts';
import type { DaemonHandle, DaemonHooks } from './daemon-types.ts';
import { localAddresses, OwnEndpoints } from './media/own-endpoints.ts';
import { type MediaPlane, UdpMediaPlane } from './media/plane.ts';
import { WorkerMediaPlane } from './media/worker/worker-plane.ts';
import { findNft, netAdminProblem, nftRunner } from './nft/runner.ts';
import { instanceTableName, NftTable } from './nft/table.ts';
import { TosMarks, tosDefinition, TOS_ADDR_MAP, TOS_PORT_MAP } from './nft/tos.ts';
import { TimeoutNotifier } from './notify/notifier.ts';
import { parseNotifyTargets } from './notify/targets.ts';
import type {
  PlaybackHooks,
  PlaybackInfo,
  PlaybackScheduler,
  PlaybackService,
  PlayTarget,
} from './play/scheduler.ts';
import type { PromptSource } from './play/prompts.ts';
import { RecorderFactory } from './record/recorder.ts';
import { SessionManager } from './session/manager.ts';
import type { CommandOrigin } from './base/net.ts';
import { OverloadMonitor } from './util/overload.ts';
import { GlobalStats } from './util/stats.ts';

/**
 * The idle sweep's tick: once a second, as the reference's (sippy/rtpproxy src/rtpp_proc_ttl.c),
 * since the counters count whole ticks.
 */
const SWEEP_INTERVAL_MS = 1000;
/** How often pps_in and the load figure are recomputed. */
const RATE_INTERVAL_MS = 1000;
/** How long after its control sockets serve the daemon starts the work that can wait (#warmUp). */
const WARM_UP_DELAY_MS = 1000;

/** A control listener with the address it bound (tests bind port 0). */
interface BoundListener extends ControlListener {
  readonly port?: number;
  address?(): AddressInfo | string;
}

export class Daemon implements DaemonHandle {
  readonly stats = new GlobalStats();
  readonly manager: SessionManager;
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #hooks: DaemonHooks;
  readonly #runner: CommandRunner;
  readonly #cache: ReplyCache;
  readonly #listeners: BoundListener[] = [];
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #players: LazyPlayback;
  /** The timeout notification client; undefined without `-n`. */
  readonly notifier: TimeoutNotifier | undefined;
  /** `--overload_prot`'s detector; undefined without it. */
  readonly #overload: OverloadMonitor | undefined;
  readonly #media: MediaPlane;
  /** The daemon's nftables table (TOS); undefined with `--nft off` or when nft is missing. */
  readonly #nft: NftTable | undefined;
  /** Why the table cannot be used, found before trying (no nft, no CAP_NET_ADMIN, `-u`). */
  readonly #nftProblem: string | undefined;
  /** The table's creation, started by start(). */
  #nftReady: Promise<void> | undefined;
  /** Where our own sockets listen: never a media remote (media/own-endpoints.ts). */
  readonly own: OwnEndpoints;
  #load = 0;
  /** #warmUp's work, once started. */
  #warming: Promise<void> | undefined;
  /** The media workers' start, once asked for (#bootMedia). */
  #mediaRunning: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: Config, logger: Logger, hooks: DaemonHooks) {
    this.#config = config;
    this.#logger = logger;
    this.#hooks = hooks;
    const now = (): number => performance.now();
    this.own = new OwnEndpoints(
      localAddresses(
        config.addresses.flatMap((a) =>
          a.advertised === undefined ? [a.address] : [a.address, a.advertised],
        ),
      ),
      config.addresses.length === 0 ? ['0.0.0.0'] : config.addresses.map((a) => a.address),
    );
    const mediaOptions = {
      portMin: config.portMin,
      portMax: config.portMax,
      sequentialPorts: config.sequentialPorts,
      sendTwice: config.sendTwice,
      connect: config.connectMedia,
      strictSource: config.strictSource,
      own: this.own,
      stats: this.stats,
    };
    const media: MediaPlane =
      config.workers > 0
        ? new WorkerMediaPlane({
            ...mediaOptions,
            workers: config.workers,
            onFatal: (err) => {
              hooks.onFatal(err);
            },
          })
        : new UdpMediaPlane({ ...mediaOptions, now });
    this.#media = media;
    const recordLog = logger.child({ mod: 'record' });
    const recorders =
      config.recordDir === undefined
        ? undefined
        : new RecorderFactory({
            recordDir: config.recordDir,
            spoolDir: config.spoolDir,
            pcap: config.pcap,
            noRtcp: config.noRtcpRecord,
            onError: (err) => {
              recordLog.warn({ err, code: err.code, path: err.path }, 'recording stopped');
            },
          });
    const nftLog = logger.child({ mod: 'nft' });
    const nftBinary = config.nft === 'off' ? undefined : findNft(process.env['PATH'] ?? '');
    this.#nftProblem = config.nft === 'off' ? undefined : nftProblem(config, nftBinary);
    this.#nft =
      nftBinary === undefined || this.#nftProblem !== undefined
        ? undefined
        : new NftTable({
            name: nftTableName(config),
            definition: tosDefinition(),
            maps: [TOS_ADDR_MAP, TOS_PORT_MAP],
            run: nftRunner(nftBinary),
            logger: nftLog,
            now,
          });
    this.#players = new LazyPlayback(this.stats, now);
    this.notifier = this.#createNotifier(now);
    const overloadLog = logger.child({ mod: 'overload' });
    this.#overload = config.overloadProt
      ? new OverloadMonitor({
          onChange: (overloaded, lateMs) => {
            const fields = { lateMs: Math.round(lateMs) };
            if (overloaded) overloadLog.warn(fields, 'overloaded: new sessions are refused (E98)');
            else overloadLog.info(fields, 'no longer overloaded: new sessions are accepted');
          },
          otherLateMs: () => media.lateMs(),
        })
      : undefined;
    this.manager = new SessionManager(
      {
        addresses: config.addresses,
        bridge: config.bridge,
        ttl: config.ttl,
        setupTtl: config.setupTtl,
        independentTtl: config.independentTtl,
        defaultAsymmetric: config.forceAsymmetric || (config.bridge && !config.bridgeSymmetric),
        recordAll: config.recordAll,
        pcap: config.pcap,
        noRtcp: config.noRtcpRecord,
        noResolve: config.noResolve,
        tos: config.tos,
      },
      {
        media,
        own: this.own,
        stats: this.stats,
        now,
        logger: logger.child({ mod: 'session' }),
        recorders,
        players: this.#players,
        ...(this.notifier === undefined ? {} : { notifier: this.notifier }),
        ...(this.#overload === undefined
          ? {}
          : { overloaded: () => this.#overload?.overloaded === true }),
        onDrained: () => {
          hooks.onDrained();
        },
        ...(this.#nft === undefined
          ? {}
          : {
              marker: new TosMarks(this.#nft, () => {
                void this.#warmUp();
              }),
            }),
      },
    );
    const dispatcher = new Dispatcher({
      manager: this.manager,
      stats: this.stats,
      config,
      parseContext: {
        bridge: config.bridge,
        hasIpv6: config.addresses.some((a) => a.family === 6),
        defaultFamily: config.addresses[0]?.family ?? 4,
        hasFamily: (family) => this.manager.hasLocalFamily(family),
        labels: new Set(config.addresses.flatMap((a) => (a.label === undefined ? [] : [a.label]))),
        ...(config.kamailioNotify && this.notifier !== undefined
          ? { kamailioNotify: this.notifier.knows.bind(this.notifier) }
          : {}),
      },
      now,
      load: () => this.#load,
      logger: logger.child({ mod: 'dispatch' }),
    });
    // With media workers, what they did so far is taken in before each command runs, and the
    // reply waits until the ports the command released are closed, so replies (Q counters,
    // latching, G totals, ports free after D) are what in-process media would give.
    const handle =
      media.workers === 0
        ? dispatcher.handle
        : async (
            line: string,
            origin?: CommandOrigin,
            receivedAt?: number,
          ): Promise<string | CountedReply> => {
            media.sync();
            const reply = await dispatcher.handle(line, origin, receivedAt);
            await media.flush();
            return reply;
          };
    this.#runner = new CommandRunner(handle, this.stats, logger.child({ mod: 'control' }), now);
    this.#cache = new ReplyCache({ now });
  }

  /** Bound port of the i-th control socket (network kinds), for tests that bind port 0. */
  controlPort(index: number): number | undefined {
    const spec = this.#config.controlSockets[index];
    return spec !== undefined && 'port' in spec ? this.#listeners[index]?.port : undefined;
  }

  /**
   * Opens the control sockets and starts serving. The work that can wait (#warmUp) follows a
   * second later, or with the first session; with `waitForMedia` it is done first, the media
   * workers before the control sockets open and the nftables table after (tests whose timing
   * must not include a worker's start).
   */
  async start(options: { readonly waitForMedia?: boolean } = {}): Promise<void> {
    if (options.waitForMedia === true) await this.#bootMedia();
    const log = this.#logger.child({ mod: 'control' });
    for (const spec of this.#config.controlSockets) {
      let listener: BoundListener;
      switch (spec.kind) {
        case 'udp':
        case 'udp6':
          listener = new UdpControlListener({
            spec,
            runner: this.#runner,
            cache: this.#cache,
            log,
            own: this.own,
          });
          break;
        case 'stdio':
        case 'stdioc':
          listener = new StdioControlListener({
            kind: spec.kind,
            input: process.stdin,
            output: process.stdout,
            runner: this.#runner,
            log,
            ...(stdinEndsDaemon(spec.kind, this.#config.controlSockets)
              ? { onEof: () => this.#hooks.onStdioEof() }
              : {}),
          });
          break;
        case 'unix':
        case 'cunix':
        case 'tcp':
        case 'tcp6':
          listener = new StreamControlListener({
            spec,
            runner: this.#runner,
            log,
            ...this.#unixOwnership(spec),
          });
      }
      this.#listeners.push(listener);
      await listener.listen();
      if ('port' in spec) warnIfExposed(spec, listener, log);
      if ('port' in spec && listener.port !== undefined) this.own.controlPort(listener.port);
    }
    // After the control sockets: a second instance with the same socket (and so the same table
    // name) has failed before it could replace our table. With `--nft on` the start waits for the
    // table; otherwise it is created with the media workers, see #warmUp. Without a table to
    // create (`--nft off`, no nft, no capability) the line saying so comes now.
    if (this.#config.nft === 'on') {
      this.#nftReady = this.#openNft();
      await this.#nftReady;
    } else if (this.#nft === undefined) {
      this.#nftReady = this.#openNft();
    }
    if (options.waitForMedia === true) await this.#warmUp();
    this.#startTimers();
    const warmUp = setTimeout(() => {
      void this.#warmUp();
    }, WARM_UP_DELAY_MS);
    warmUp.unref();
    this.#timers.push(warmUp);
  }

  /**
   * The start's work that can wait: media workers (threads of their own) and the nftables table
   * (a run of nft). A daemon answers commands and writes its pid file without them, so that one
   * started among others on a busy host is ready sooner; they follow WARM_UP_DELAY_MS later, or at
   * once when the first session needs them (its streams boot the workers, its TOS marks the
   * table). A session's messages to a worker wait in its port until it runs; elements set before
   * the table exists go out with its first transaction. Idempotent; resolves once both are done.
   */
  #warmUp(): Promise<void> {
    if (this.#closing !== undefined) return Promise.resolve();
    this.#nftReady ??= this.#openNft();
    // Never rejects in auto mode (`--nft on` created the table in start()).
    this.#warming ??= Promise.all([this.#bootMedia(), this.#nftReady.catch(() => undefined)]).then(
      () => undefined,
    );
    return this.#warming;
  }

  /** Boots the media workers (if any), once; resolves when they run. */
  #bootMedia(): Promise<void> {
    const media = this.#media;
    this.#mediaRunning ??= media.running().then(() => {
      if (media.workers > 0) this.#logger.info({ workers: media.workers }, 'media workers running');
    });
    return this.#mediaRunning;
  }

  /**
   * Creates the nftables table, or says once why TOS is not applied (`--nft auto`), or fails
   * the start (`--nft on`).
   */
  async #openNft(): Promise<void> {
    const mode = this.#config.nft;
    const log = this.#logger.child({ mod: 'nft' });
    if (mode === 'off') {
      log.info({ tos: this.#config.tos }, 'TOS is not applied: --nft off');
      return;
    }
    let problem = this.#nftProblem;
    const table = this.#nft;
    if (problem === undefined && table === undefined) problem = 'nft is not installed';
    if (problem === undefined && table !== undefined) {
      const result = await table.create();
      if (result.ok) {
        log.info({ table: `inet ${table.name}`, tos: this.#config.tos }, 'nftables table created');
        return;
      }
      problem = result.message;
    }
    const reason = problem ?? 'unknown';
    if (mode === 'on') throw new Error(`--nft on: cannot create the nftables table: ${reason}`);
    log.warn(
      { tos: this.#config.tos, reason },
      'TOS is not applied: the nftables table cannot be created (--nft auto)',
    );
  }

  /** `-u`/`-w` for unix control sockets: chown when a user or group is given, and the mode. */
  #unixOwnership(spec: Config['controlSockets'][number]): {
    owner?: { uid: number; gid: number };
    mode?: number;
  } {
    const c = this.#config;
    if (spec.kind !== 'unix' && spec.kind !== 'cunix') return {};
    return {
      ...(c.uid === undefined && c.gid === undefined
        ? {}
        : { owner: { uid: c.uid ?? -1, gid: c.gid ?? -1 } }),
      ...(c.socketMode === undefined ? {} : { mode: c.socketMode }),
    };
  }

  drain(): void {
    this.#logger.info({ sessions: this.manager.size }, 'draining: no new sessions');
    this.manager.drain();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    // Commands already received are answered before the sockets they came from close.
    await this.#runner.drain();
    await Promise.all(this.#listeners.map((l) => l.close()));
    this.#cache.close();
    // Media workers stop receiving and hand over the packets they recorded before the recorders
    // close: a recording then holds every packet the parties were sent.
    await this.#media.stopReceiving();
    await this.manager.close();
    this.#players.close();
    this.#overload?.close();
    await this.notifier?.close();
    await this.#media.close();
    // The table goes last, once no session holds an element.
    await this.#nftReady?.catch(() => undefined);
    await this.#nft?.close();
  }

  /** The nftables table, for tests; undefined when the daemon does not use one. */
  get nftTable(): NftTable | undefined {
    return this.#nft?.open === true ? this.#nft : undefined;
  }

  /** The `-n` client (protocol.md 8), or undefined without any target. */
  #createNotifier(now: () => number): TimeoutNotifier | undefined {
    if (this.#config.notifyTargets.length === 0) return undefined;
    const { specs, errors } = parseNotifyTargets(
      this.#config.notifyTargets,
      this.#config.noResolve,
    );
    // buildConfig() refused these already; a Config built by hand gets the same message.
    if (errors.length > 0) throw new Error(`bad -n target: ${errors.join('; ')}`);
    for (const spec of specs) {
      if (spec.kind === 'tcp-self') this.own.controlPort(spec.port);
      else if (spec.kind === 'tcp') {
        if (this.own.isLocal(spec.host)) this.own.controlPort(spec.port);
        else this.own.remoteEndpoint(spec.host, spec.port);
      }
    }
    return new TimeoutNotifier({
      targets: specs,
      logger: this.#logger.child({ mod: 'notify' }),
      now,
    });
  }

  #startTimers(): void {
    const sweep = setInterval(() => {
      this.#media.sync(true);
      this.manager.sweep();
    }, SWEEP_INTERVAL_MS);
    let lastPackets = this.stats.npktsRcvd;
    let lastElu = performance.eventLoopUtilization();
    const rates = setInterval(() => {
      this.#media.sync();
      this.stats.ppsIn = this.stats.npktsRcvd - lastPackets;
      lastPackets = this.stats.npktsRcvd;
      const elu = performance.eventLoopUtilization();
      const mainLoad = performance.eventLoopUtilization(elu, lastElu).utilization;
      // The busiest event loop: the main thread's, or a media worker's.
      this.#load = Math.max(mainLoad, this.#media.load());
      lastElu = elu;
      this.#overload?.sample();
    }, RATE_INTERVAL_MS);
    sweep.unref();
    rates.unref();
    this.#timers.push(sweep, rates);
  }
}

/** The nftables table of an instance: named after its first control socket. */
function nftTableName(config: Config): string {
  const first = config.controlSockets[0];
  return instanceTableName(first === undefined ? 'none' : formatSocketSpec(first));
}

/** Why an `nft` child could not change the ruleset, known before trying; undefined if none. */
function nftProblem(config: Config, binary: string | undefined): string | undefined {
  if (binary === undefined) return 'nft is not installed';
  const euid = process.geteuid?.() ?? 0;
  if (config.uid !== undefined && config.uid !== euid) {
    return '-u switches to another user, which drops CAP_NET_ADMIN (run as that user with the ambient capability instead, see docs/operations.md)';
  }
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined; // Not Linux's procfs: nft itself will say.
  }
  return netAdminProblem(status, euid);
}

/**
 * Whether the end of stdin ends the daemon (a graceful drain: new sessions refused, exit 0 once
 * none is left), as the reference decides it (sippy/rtpproxy src/rtpp_command_async.c, init_pollset
 * and rtpp_cmd_queue_run): always for `stdioc:`, and for `stdio:` when it is the only control
 * socket read without accepting connections, that is with no udp:/udp6: socket beside it (unix:,
 * cunix:, tcp: and tcp6: listeners do not count).
 */
export function stdinEndsDaemon(
  kind: 'stdio' | 'stdioc',
  sockets: Config['controlSockets'],
): boolean {
  if (kind === 'stdioc') return true;
  const polled = sockets.filter(
    (s) => s.kind === 'udp' || s.kind === 'udp6' || s.kind === 'stdio' || s.kind === 'stdioc',
  );
  return polled.length === 1;
}

/**
 * Playback (P), loaded on the first P: neither the player nor node:crypto (random SSRCs) is
 * needed to start and answer the first commands. Every P begins with findPrompt(), which loads
 * it; start() comes only after that, and stop() has nothing to stop before.
 */
class LazyPlayback implements PlaybackService {
  readonly #stats: GlobalStats;
  readonly #now: () => number;
  #scheduler: PlaybackScheduler | undefined;
  #loading: Promise<PlaybackScheduler> | undefined;
  #closed = false;

  constructor(stats: GlobalStats, now: () => number) {
    this.#stats = stats;
    this.#now = now;
  }

  async findPrompt(
    name: string,
    payloadTypes: readonly number[],
    packetMs: number,
  ): Promise<PromptSource | undefined> {
    const scheduler = await this.#load();
    return scheduler.findPrompt(name, payloadTypes, packetMs);
  }

  start(
    target: PlayTarget,
    prompt: PromptSource,
    count: number,
    hooks: PlaybackHooks,
  ): PlaybackInfo {
    if (this.#scheduler === undefined) {
      throw new Error('playback started before a prompt was found');
    }
    return this.#scheduler.start(target, prompt, count, hooks);
  }

  stop(target: PlayTarget): boolean {
    return this.#scheduler?.stop(target) ?? false;
  }

  close(): void {
    this.#closed = true;
    this.#scheduler?.close();
  }

  #load(): Promise<PlaybackScheduler> {
    this.#loading ??= Promise.all([
      import('./play/scheduler.ts'),
      import('./play/prompts.ts'),
    ]).then(([{ PlaybackScheduler }, { PromptCache }]) => {
      const scheduler = new PlaybackScheduler({
        prompts: new PromptCache(),
        stats: this.#stats,
        now: this.#now,
      });
      // Closed while loading: what it would play is stopped at once.
      if (this.#closed) scheduler.close();
      this.#scheduler = scheduler;
      return scheduler;
    });
    return this.#loading;
  }
}

/** The DaemonFactory cli/main.ts uses. */
export function createDaemon(config: Config, logger: Logger, hooks: DaemonHooks): Daemon {
  return new Daemon(config, logger, hooks);
}

/**
 * Warns at start about a network control socket that other hosts can reach: the control
 * protocol has no authentication, so anyone who reaches it controls the daemon.
 */
function warnIfExposed(
  spec: Config['controlSockets'][number],
  listener: BoundListener,
  log: Logger,
): void {
  const bound = listener.address?.();
  if (bound === undefined || typeof bound === 'string') return;
  const exposure = controlSocketExposure(bound.address);
  if (exposure === undefined) return;
  log.warn(
    { socket: formatSocketSpec(spec), address: bound.address, port: bound.port },
    `control socket ${formatSocketSpec(spec)} listens on ${exposure === 'wildcard' ? 'every interface' : 'an address other hosts can reach'}, and the control protocol has no authentication: anyone who can reach it can control the daemon. Bind it to 127.0.0.1 or ::1, use a unix: socket, or allow only the SIP proxies with a firewall`,
  );
}
