/**
 * The daemon's admin listener (`--http`, docs/admin-api.md): the metrics over the daemon's parts,
 * and the admin API over its session manager. Built by the composition root (daemon.ts) when
 * `--http` is given.
 */
import type { Logger } from 'pino';
import type { HttpListen } from './base/config.ts';
import { DaemonMetrics } from './admin/metrics.ts';
import { AdminServer } from './admin/server.ts';
import { formatHostPort } from './util/net.ts';
import { controlSocketExposure } from './control/exposure.ts';
import type { MediaPlane } from './media/plane.ts';
import type { StreamCounters } from './media/stream.ts';
import type { TimeoutNotifier } from './notify/notifier.ts';
import type { RecorderFactory } from './record/recorder.ts';
import type { SessionManager } from './session/manager.ts';
import type { GlobalStats } from './util/stats.ts';
import { packageVersion } from './util/version.ts';

export interface AdminParts {
  readonly stats: GlobalStats;
  readonly manager: SessionManager;
  readonly media: MediaPlane;
  readonly recorders: RecorderFactory | undefined;
  readonly notifier: TimeoutNotifier | undefined;
  readonly logger: Logger;
  readonly now: () => number;
  /** The kernel path's state and transactions (DaemonNft.kernelState). */
  kernel(): { readonly state: string; readonly committed: number; readonly failed: number };
  load(): number;
  overloaded(): boolean;
  /** Starts a drain the way SIGHUP does (the process exits after the last session). */
  drain(): void;
}

export class DaemonAdmin {
  readonly metrics: DaemonMetrics;
  readonly #server: AdminServer;
  readonly #listen: HttpListen;
  readonly #logger: Logger;

  constructor(listen: HttpListen, parts: AdminParts) {
    this.#listen = listen;
    this.#logger = parts.logger;
    const { manager, media, stats } = parts;
    this.metrics = new DaemonMetrics(
      {
        stats,
        sessions: () => manager.size,
        streams: () => liveStreams(manager),
        ports: () => media.portUsage(),
        kernel: () => {
          const k = parts.kernel();
          return {
            on: k.state === 'on',
            committed: k.committed,
            failed: k.failed,
            figures: manager.kernelFigures(),
          };
        },
        workers: () => ({ count: media.workers, load: media.load(), lateMs: media.lateMs() }),
        load: () => parts.load(),
        overloaded: () => parts.overloaded(),
        draining: () => manager.draining,
        recordings: () => parts.recorders?.figures(),
        notifications: () => parts.notifier?.counters,
      },
      packageVersion(),
    );
    this.#server = new AdminServer({
      metrics: this.metrics,
      logger: parts.logger,
      refresh: async () => {
        // What media workers did, the sessions that ended, the kernel's counters.
        media.sync();
        await manager.ended();
        await manager.kernelCounts();
      },
      sessions: () => manager.sessions(),
      sessionsOf: (callId) => manager.sessionsOf(callId),
      deleteCall: (callId) => {
        const deleted = manager.deleteCall(callId);
        void media.flush();
        return deleted;
      },
      count: () => manager.size,
      draining: () => manager.draining,
      overloaded: () => parts.overloaded(),
      drain: () => {
        parts.drain();
      },
      view: () => ({
        now: parts.now(),
        placement: (session, component) => manager.placement(session, component),
      }),
    });
  }

  /** Listens; warns when other hosts can reach the listener. */
  async listen(): Promise<void> {
    const { host, port } = this.#listen;
    await this.#server.listen(host, port);
    const bound = this.#server.address;
    const exposure = controlSocketExposure(host);
    const where = formatHostPort(host, bound?.port ?? port);
    if (exposure !== undefined) {
      this.#logger.warn(
        { http: where },
        `the admin API listens on ${exposure === 'wildcard' ? 'every interface' : 'an address other hosts can reach'} (${where}) and has no authentication: anyone who can reach it can list, delete and drain calls. Bind it to 127.0.0.1 or ::1, or allow only the monitoring hosts with a firewall`,
      );
    }
    this.#logger.info({ http: where }, 'admin API and metrics listening');
  }

  /** The bound port (`--http ADDR:0` picks one). */
  get port(): number | undefined {
    return this.#server.address?.port;
  }

  close(): Promise<void> {
    return this.#server.close();
  }
}

/** The four streams of every live session. */
function* liveStreams(manager: SessionManager): IterableIterator<StreamCounters> {
  for (const session of manager.sessions()) {
    for (const leg of session.legs) {
      yield leg.rtp;
      yield leg.rtcp;
    }
  }
}
