/**
 * The composition root: the only module that constructs the concrete pieces and wires them from
 * the Config. start() binds the control sockets; close() takes everything down in order.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from './cli/config-types.ts';
import { Dispatcher } from './control/dispatch.ts';
import { StdioControlListener, StreamControlListener } from './control/listener-stream.ts';
import { UdpControlListener } from './control/listener-udp.ts';
import { ReplyCache } from './control/reply-cache.ts';
import { CommandRunner, type ControlListener } from './control/runner.ts';
import type { DaemonHandle, DaemonHooks } from './daemon-types.ts';
import { type MediaPlane, UdpMediaPlane } from './media/plane.ts';
import { WorkerMediaPlane } from './media/worker-plane.ts';
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
import type { CommandOrigin } from './util/origin-types.ts';
import { OverloadMonitor } from './util/overload.ts';
import { GlobalStats } from './util/stats.ts';

/** How often idle timers are re-armed from packet activity and checked for expiry. */
const SWEEP_INTERVAL_MS = 250;
/** How often pps_in and the load figure are recomputed. */
const RATE_INTERVAL_MS = 1000;

/** A control listener with the address it bound (tests bind port 0). */
interface BoundListener extends ControlListener {
  readonly port?: number;
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
  #load = 0;
  #closing: Promise<void> | undefined;

  constructor(config: Config, logger: Logger, hooks: DaemonHooks) {
    this.#config = config;
    this.#logger = logger;
    this.#hooks = hooks;
    const now = (): number => performance.now();
    const mediaOptions = {
      portMin: config.portMin,
      portMax: config.portMax,
      sequentialPorts: config.sequentialPorts,
      sendTwice: config.sendTwice,
      connect: config.connectMedia,
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
          otherLateMs: () => media.lateMs?.() ?? 0,
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
      },
      {
        media,
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
      media.sync === undefined
        ? dispatcher.handle
        : async (line: string, origin?: CommandOrigin): Promise<string> => {
            media.sync?.();
            const reply = await dispatcher.handle(line, origin);
            await media.flush?.();
            return reply;
          };
    this.#runner = new CommandRunner(handle, this.stats, logger.child({ mod: 'control' }));
    this.#cache = new ReplyCache({ now });
  }

  /** Bound port of the i-th control socket (network kinds), for tests that bind port 0. */
  controlPort(index: number): number | undefined {
    const spec = this.#config.controlSockets[index];
    return spec !== undefined && 'port' in spec ? this.#listeners[index]?.port : undefined;
  }

  async start(): Promise<void> {
    if (this.#media instanceof WorkerMediaPlane) {
      await this.#media.start();
      this.#logger.info({ workers: this.#media.workers }, 'media workers running');
    }
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
    }
    this.#startTimers();
  }

  /** `-u`/`-w` for unix control sockets: chown when a user or group is given, chmod with a group. */
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
    await this.manager.close();
    this.#players.close();
    this.#overload?.close();
    await this.notifier?.close();
    await this.#media.close?.();
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
    return new TimeoutNotifier({
      targets: specs,
      logger: this.#logger.child({ mod: 'notify' }),
      now,
    });
  }

  #startTimers(): void {
    const sweep = setInterval(() => {
      this.#media.sync?.(true);
      this.manager.sweep(performance.now());
    }, SWEEP_INTERVAL_MS);
    let lastPackets = this.stats.npktsRcvd;
    let lastElu = performance.eventLoopUtilization();
    const rates = setInterval(() => {
      this.#media.sync?.();
      this.stats.ppsIn = this.stats.npktsRcvd - lastPackets;
      lastPackets = this.stats.npktsRcvd;
      const elu = performance.eventLoopUtilization();
      const mainLoad = performance.eventLoopUtilization(elu, lastElu).utilization;
      // The busiest event loop: the main thread's, or a media worker's.
      this.#load = Math.max(mainLoad, this.#media.load?.() ?? 0);
      lastElu = elu;
      this.#overload?.sample();
    }, RATE_INTERVAL_MS);
    sweep.unref();
    rates.unref();
    this.#timers.push(sweep, rates);
  }
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
