/**
 * The composition root: the only module that constructs the concrete pieces and wires them from
 * the Config. start() binds the control sockets; close() takes everything down in order.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config, HttpListen } from './base/config.ts';
import { Dispatcher } from './control/dispatch.ts';
import { parseContextOf } from './control/parse-context.ts';
import type { DatagramFraming } from './control/listener-udp.ts';
import { ReplyCache } from './control/reply-cache.ts';
import { CommandRunner } from './control/runner.ts';
import type { CountedReply } from './control/socket-types.ts';
import type { DaemonAdmin } from './daemon-admin.ts';
import { DaemonNft } from './daemon-nft.ts';
import { type BoundListener, createControlListener, warnIfExposed } from './daemon-listeners.ts';
import { startDaemonTimers } from './daemon-timers.ts';
import type { DaemonHandle, DaemonHooks } from './daemon-types.ts';
import { localAddresses, OwnEndpoints } from './media/own-endpoints.ts';
import { type MediaPlane, UdpMediaPlane } from './media/plane.ts';
import { WorkerMediaPlane } from './media/worker/worker-plane.ts';
import type { NftTable } from './nft/table.ts';
import { TosMarks } from './nft/tos.ts';
import { TimeoutNotifier } from './notify/notifier.ts';
import { parseNotifyTargets } from './notify/targets.ts';
import { LazyPlayback } from './play/lazy-playback.ts';
import { RecorderFactory } from './record/recorder.ts';
import { SessionManager } from './session/manager.ts';
import type { CommandOrigin } from './base/net.ts';
import { OverloadMonitor } from './util/overload.ts';
import { GlobalStats } from './util/stats.ts';

/** How long after its control sockets serve the daemon starts the work that can wait (#warmUp). */
const WARM_UP_DELAY_MS = 1000;

export class Daemon implements DaemonHandle {
  readonly stats = new GlobalStats();
  readonly manager: SessionManager;
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #hooks: DaemonHooks;
  readonly #runner: CommandRunner;
  readonly #cache: ReplyCache;
  /** The ng sockets' reply cache, once an ng socket is configured. */
  #ngCache: ReplyCache | undefined;
  readonly #listeners: BoundListener[] = [];
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #players: LazyPlayback;
  /** The timeout notification client; undefined without `-n`. */
  readonly notifier: TimeoutNotifier | undefined;
  /** `--overload_prot`'s detector; undefined without it. */
  readonly #overload: OverloadMonitor | undefined;
  readonly #media: MediaPlane;
  /** The daemon's nftables table (TOS), or why it has none. */
  readonly #nft: DaemonNft;
  /** Where our own sockets listen: never a media remote (media/own-endpoints.ts). */
  readonly own: OwnEndpoints;
  /** The admin API and metrics (`--http`), once start() built it; undefined without `--http`. */
  #admin: DaemonAdmin | undefined;
  /** The recorders (`-r`), which the metrics read. */
  readonly #recorders: RecorderFactory | undefined;
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
    this.#recorders = recorders;
    this.#nft = new DaemonNft(config, logger, now);
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
        sendTwice: config.sendTwice,
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
        ...(this.#nft.kernel === undefined ? {} : { forwarder: this.#nft.kernel }),
        ...(this.#nft.table === undefined
          ? {}
          : {
              marker: new TosMarks(this.#nft.table, () => {
                void this.#warmUp();
              }),
            }),
      },
    );
    const dispatcher = new Dispatcher({
      manager: this.manager,
      stats: this.stats,
      config,
      parseContext: parseContextOf(config),
      now,
      load: () => this.#load,
      kernel: () => this.#nft.kernelState(),
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
    this.#runner = new CommandRunner(
      handle,
      this.stats,
      logger.child({ mod: 'control' }),
      now,
      config.http === undefined
        ? undefined
        : (line, reply, seconds) => {
            this.#admin?.metrics.observeCommand(line, reply, seconds);
          },
    );
    this.#cache = new ReplyCache({ now });
  }

  /** Bound port of the admin listener (`--http`), once listening. */
  get httpPort(): number | undefined {
    return this.#admin?.port;
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
    // Before the control sockets, so that the metrics count every command.
    if (this.#config.http !== undefined) await this.#openAdmin(this.#config.http);
    const log = this.#logger.child({ mod: 'control' });
    const ng = await this.#openNg();
    for (const spec of this.#config.controlSockets) {
      const listener = createControlListener(spec, {
        config: this.#config,
        runner: this.#runner,
        cache: this.#cache,
        log,
        own: this.own,
        onStdioEof: () => {
          this.#hooks.onStdioEof();
        },
        ...(ng === undefined ? {} : { ng }),
      });
      this.#listeners.push(listener);
      await listener.listen();
      if ('port' in spec) warnIfExposed(spec, listener, log);
      if ('port' in spec && listener.port !== undefined) this.own.controlPort(listener.port);
    }
    // After the control sockets: a second instance with the same socket (and so the same table
    // name) has failed before it could replace our table. With `--nft on` the start waits for the
    // table; otherwise it is created with the media workers, see #warmUp. Without a table to
    // create (`--nft off`, no nft, no capability) the line saying so comes now.
    if (this.#config.nft === 'on' || this.#config.kernel === 'on') await this.#nft.open();
    else if (this.#nft.table === undefined) void this.#nft.open();
    if (options.waitForMedia === true) await this.#warmUp();
    const overload = this.#overload;
    this.#timers.push(
      ...startDaemonTimers({
        media: this.#media,
        stats: this.stats,
        sweep: () => {
          this.manager.sweep();
        },
        setLoad: (load) => {
          this.#load = load;
        },
        ...(overload === undefined ? {} : { sample: () => overload.sample() }),
      }),
    );
    const warmUp = setTimeout(() => {
      void this.#warmUp();
    }, WARM_UP_DELAY_MS);
    warmUp.unref();
    this.#timers.push(warmUp);
  }

  /**
   * The ng protocol (docs/ng.md) when an `ng:` socket is configured: its dispatcher, run through
   * the command queue like every other command, its framing and its reply cache. Loaded only then:
   * it brings the bencode and SDP libraries.
   */
  async #openNg(): Promise<{ framing: DatagramFraming; cache: ReplyCache } | undefined> {
    const sockets = this.#config.controlSockets;
    if (!sockets.some((s) => s.kind === 'ng-udp' || s.kind === 'ng-udp6')) return undefined;
    const { NgDispatcher, ngFraming, encodeBencode } = await import('./daemon-ng.ts');
    const first = this.#config.addresses[0];
    const dispatcher = new NgDispatcher({
      manager: this.manager,
      stats: this.stats,
      bridge: this.#config.bridge,
      defaultFamily: first?.family ?? 4,
      now: () => performance.now(),
      wallNow: () => Date.now(),
      logger: this.#logger.child({ mod: 'ng' }),
    });
    const media = this.#media;
    const crash = encodeBencode({ result: 'error', 'error-reason': 'internal error' });
    const framing = ngFraming((body, origin) =>
      this.#runner.runTask(
        async (receivedAt) => {
          // As for the rtpproxy protocol: the media workers' news first, freed ports before the reply.
          media.sync();
          const reply = await dispatcher.handle(body, origin, receivedAt);
          await media.flush();
          const seconds = (performance.now() - receivedAt) / 1000;
          this.#admin?.metrics.observeNg(reply.command, reply.failed, seconds);
          return reply;
        },
        () => crash,
      ),
    );
    this.#ngCache = new ReplyCache({ now: () => performance.now() });
    return { framing, cache: this.#ngCache };
  }

  /**
   * The admin listener (`--http`). Loaded only when asked for: the metrics library takes longer to
   * load than the rest of the daemon's start.
   */
  async #openAdmin(listen: HttpListen): Promise<void> {
    const { DaemonAdmin } = await import('./daemon-admin.ts');
    const now = (): number => performance.now();
    const admin = new DaemonAdmin(listen, {
      stats: this.stats,
      manager: this.manager,
      media: this.#media,
      recorders: this.#recorders,
      notifier: this.notifier,
      logger: this.#logger.child({ mod: 'admin' }),
      now,
      kernel: () => this.#nft.kernelState(),
      load: () => this.#load,
      overloaded: () => this.#overload?.overloaded === true,
      drain: () => {
        this.#hooks.onDrainRequested('POST /drain on the admin API');
      },
    });
    this.#admin = admin;
    await admin.listen();
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
    // Never rejects in auto mode (`--nft on` created the table in start()).
    this.#warming ??= Promise.all([
      this.#bootMedia(),
      this.#nft.open().catch(() => undefined),
    ]).then(() => undefined);
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
    await Promise.all([...this.#listeners.map((l) => l.close()), this.#admin?.close()]);
    this.#cache.close();
    this.#ngCache?.close();
    // Media workers stop receiving and hand over the packets they recorded before the recorders
    // close: a recording then holds every packet the parties were sent.
    await this.#media.stopReceiving();
    await this.manager.close();
    this.#players.close();
    this.#overload?.close();
    await this.notifier?.close();
    await this.#media.close();
    // The table goes last, once no session holds an element.
    await this.#nft.close();
  }

  /** The nftables table, for tests; undefined when the daemon does not use one. */
  get nftTable(): NftTable | undefined {
    return this.#nft.openTable;
  }

  /** The `-n` client (docs/protocol.md 8), or undefined without any target. */
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
}

/** The daemon cli/main.ts starts (a {@link DaemonHandle} to it). */
export function createDaemon(config: Config, logger: Logger, hooks: DaemonHooks): Daemon {
  return new Daemon(config, logger, hooks);
}
