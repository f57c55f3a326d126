/**
 * The daemon's Prometheus metrics (docs/metrics.md), exposed by the admin listener's `/metrics`.
 *
 * Built on prom-client, the client the Node ecosystem uses for Prometheus: it writes the text
 * format, keeps the histogram and collects the process metrics. Nothing here runs per packet:
 * the values are read at scrape time from the counters the relay keeps anyway (GlobalStats, the
 * streams, the kernel path's figures), and only commands are observed as they are answered.
 * Labels are bounded: verbs, E-codes, causes and reasons from fixed lists, never a call-id or an
 * address.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Family } from '../base/net.ts';
import { COMMAND_SPECS } from '../control/commands.ts';
import { ECODES } from '../control/ecodes.ts';
import { verbOf } from '../control/parse.ts';
import type { PortUsage } from '../media/port-allocator.ts';
import type { StreamCounters } from '../media/stream.ts';
import type { NotifyCounters } from '../notify/notifier.ts';
import type { OffloadFigures } from '../session/offload.ts';
import type { EndReason } from '../session/session-end.ts';
import type { GlobalStats } from '../util/stats.ts';

/** What the metrics read from the daemon at scrape time. */
export interface MetricsSource {
  readonly stats: GlobalStats;
  /** Live sessions. */
  sessions(): number;
  /** The streams of the live sessions: what ended sessions left in GlobalStats is added. */
  streams(): Iterable<StreamCounters>;
  ports(): Readonly<Record<Family, PortUsage>>;
  /** The kernel fast path: on or not, its transactions, and what it forwarded. */
  kernel(): {
    readonly on: boolean;
    readonly committed: number;
    readonly failed: number;
    readonly figures: OffloadFigures;
  };
  /** Media workers: how many, the busiest one's load (0..1) and lateness (ms). */
  workers(): { readonly count: number; readonly load: number; readonly lateMs: number };
  /** The main thread's load (0..1), as `Il` reports it. */
  load(): number;
  overloaded(): boolean;
  draining(): boolean;
  /** Recording files; undefined without `-r`. */
  recordings():
    { readonly open: number; readonly bytesWritten: number; readonly failures: number } | undefined;
  /** The timeout notification client's counters; undefined without `-n`. */
  notifications(): Readonly<NotifyCounters> | undefined;
}

/** Seconds; from a cached reply's tens of microseconds to a U that waits for a worker. */
const COMMAND_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

const VERBS = Object.keys(COMMAND_SPECS);
/** The ng commands with a verb label of their own (docs/ng.md). */
const NG_VERBS: ReadonlySet<string> = new Set([
  'ping',
  'offer',
  'answer',
  'delete',
  'query',
  'list',
  'statistics',
  'start recording',
  'stop recording',
  'play media',
  'stop media',
  'block media',
  'unblock media',
]);
const ERROR_CODES = new Set<number>(Object.values(ECODES).map((e) => e.code));
const ERROR_REPLY = /^E(\d+)/;
const OVERLOAD_REPLY = `E${String(ECODES.OVERLOAD.code)}`;

/** Causes of the destroyed-sessions counter, by the session-end reason. */
const END_CAUSES: Readonly<Record<EndReason, string>> = {
  delete: 'delete',
  'delete-all': 'delete_all',
  admin: 'admin',
  timeout: 'timeout',
  shutdown: 'shutdown',
};

/** The label value of a reply: `ok`, or its E-code (`E50`); an unknown code is `E?`. */
function commandResult(reply: string): string {
  const code = ERROR_REPLY.exec(reply)?.[1];
  if (code === undefined) return 'ok';
  return ERROR_CODES.has(Number(code)) ? `E${code}` : 'E?';
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #commands: Counter<'verb' | 'result'>;
  readonly #duration: Histogram<'verb'>;
  readonly #overloadRefusals: Counter;

  constructor(source: MetricsSource, version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const stats = source.stats;

    new Gauge({
      name: 'rtpproxy_info',
      help: 'Always 1; the version label says which daemon this is.',
      labelNames: ['version'],
      registers,
    }).set({ version }, 1);

    // Sessions.
    this.#gauge('rtpproxy_sessions_active', 'Sessions alive now.', () => source.sessions());
    this.#counter(
      'rtpproxy_sessions_created_total',
      'Sessions created (U).',
      () => stats.nsessCreated,
    );
    this.#counter(
      'rtpproxy_sessions_completed_total',
      'Sessions in which both parties got a port (the answer arrived).',
      () => stats.nsessComplete,
    );
    this.#labeledCounter(
      'rtpproxy_sessions_destroyed_total',
      'Sessions ended, by cause: delete (D), delete_all (X), admin (DELETE /sessions), timeout, shutdown.',
      'cause',
      () => {
        const out: Record<string, number> = {};
        for (const [reason, cause] of Object.entries(END_CAUSES)) {
          out[cause] = stats.endedBy[reason as EndReason];
        }
        return out;
      },
    );
    this.#labeledGauge(
      'rtpproxy_streams_active',
      'Stream components (RTP, RTCP) of the live sessions, by where they are relayed.',
      'path',
      () => {
        const total = 2 * source.sessions();
        const kernel = source.kernel().figures.streams;
        return { kernel, userspace: Math.max(0, total - kernel) };
      },
    );

    // Packets and bytes. The global counters include what the kernel forwarded.
    this.#labeledCounter(
      'rtpproxy_packets_received_total',
      'RTP and RTCP packets received, by path.',
      'path',
      () => byPath(stats.npktsRcvd, source.kernel().figures.packets),
    );
    this.#labeledCounter(
      'rtpproxy_packets_relayed_total',
      'RTP and RTCP packets relayed, by path.',
      'path',
      () => byPath(stats.npktsRelayed, source.kernel().figures.packets),
    );
    this.#labeledCounter(
      'rtpproxy_bytes_received_total',
      'Bytes (UDP payload) accepted from the parties, by path.',
      'path',
      () => {
        let bytes = stats.endedBytesIn;
        for (const s of source.streams()) bytes += s.nbytesIn;
        return byPath(bytes, source.kernel().figures.bytes);
      },
    );
    this.#labeledCounter(
      'rtpproxy_packets_dropped_total',
      'Packets not relayed, by reason: no_destination (session or peer not known yet, or muted: ' +
        'towards a party hearing a prompt, from a blocked party), source ' +
        '(refused by the source check), resizer (re-packetizer overflow), send_error.',
      'reason',
      () => {
        let ignored = stats.endedIgnored;
        let sendErrors = stats.endedSendErrors;
        for (const s of source.streams()) {
          ignored += s.nignored;
          sendErrors += s.nsendErrors;
        }
        return {
          no_destination: stats.npktsDiscard,
          source: ignored,
          resizer: stats.npktsResizerDiscard,
          send_error: sendErrors,
        };
      },
    );
    this.#counter('rtpproxy_packets_played_total', 'Prompt packets sent.', () => stats.npktsPlayed);

    // Port pool.
    this.#labeledGauge(
      'rtpproxy_port_pairs',
      'RTP/RTCP port pairs in the range, on each local address.',
      'family',
      () => perFamily(source.ports(), (u) => u.capacity),
    );
    this.#labeledGauge(
      'rtpproxy_port_pairs_in_use',
      'Port pairs in use, every local address together.',
      'family',
      () => perFamily(source.ports(), (u) => u.inUse),
    );
    this.#labeledGauge(
      'rtpproxy_port_pairs_free',
      'Free port pairs on the local address that has the fewest.',
      'family',
      () => perFamily(source.ports(), (u) => u.leastFree),
    );

    // Control.
    this.#commands = new Counter({
      name: 'rtpproxy_commands_total',
      help: 'Control commands answered, by verb and result (ok or the E-code).',
      labelNames: ['verb', 'result'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'rtpproxy_command_duration_seconds',
      help: 'Time from a command’s arrival to its reply, queueing included, by verb.',
      labelNames: ['verb'],
      buckets: COMMAND_BUCKETS,
      registers,
    });
    for (const verb of VERBS) this.#commands.labels({ verb, result: 'ok' }).inc(0);
    this.#counter(
      'rtpproxy_reply_cache_hits_total',
      'Retransmitted commands answered from the reply cache.',
      () => stats.ncmdsRcvdNdups,
    );
    this.#overloadRefusals = new Counter({
      name: 'rtpproxy_overload_refusals_total',
      help: 'New sessions refused because the daemon was overloaded (E98).',
      registers,
    });
    this.#gauge('rtpproxy_overloaded', '1 while new sessions are refused for overload.', () =>
      Number(source.overloaded()),
    );
    this.#gauge('rtpproxy_draining', '1 while the daemon drains (no new sessions).', () =>
      Number(source.draining()),
    );
    this.#gauge('rtpproxy_load', 'Event-loop utilization of the main thread (0..1).', () =>
      source.load(),
    );

    // Media workers.
    this.#gauge('rtpproxy_media_workers', 'Media worker threads.', () => source.workers().count);
    this.#gauge(
      'rtpproxy_media_worker_load',
      'Event-loop utilization of the busiest media worker over its last second (0..1).',
      () => source.workers().load,
    );
    this.#gauge(
      'rtpproxy_media_worker_lateness_seconds',
      'Mean event-loop lateness of the latest media worker over its last second.',
      () => source.workers().lateMs / 1000,
    );

    // Recordings, prompts, notifications.
    this.#gauge(
      'rtpproxy_recordings_open',
      'Recording files open now.',
      () => source.recordings()?.open ?? 0,
    );
    this.#counter(
      'rtpproxy_recording_bytes_written_total',
      'Bytes written to recording files, headers included.',
      () => source.recordings()?.bytesWritten ?? 0,
    );
    this.#counter(
      'rtpproxy_recording_failures_total',
      'Recording files stopped by an error (create, write, close, move).',
      () => source.recordings()?.failures ?? 0,
    );
    this.#gauge('rtpproxy_prompts_playing', 'Prompts playing now.', () =>
      Math.max(0, stats.nplrsCreated - stats.nplrsDestroyed),
    );
    this.#counter(
      'rtpproxy_prompts_started_total',
      'Prompts started (P).',
      () => stats.nplrsCreated,
    );
    this.#counter(
      'rtpproxy_notifications_sent_total',
      'Timeout notifications handed to a connection.',
      () => source.notifications()?.sent ?? 0,
    );
    this.#counter(
      'rtpproxy_notifications_failed_total',
      'Timeout notifications dropped: queue full, connection failed, too many resends, shutdown.',
      () => source.notifications()?.dropped ?? 0,
    );

    // The kernel fast path.
    this.#gauge('rtpproxy_kernel_path', '1 while the kernel fast path forwards.', () =>
      Number(source.kernel().on),
    );
    this.#counter(
      'rtpproxy_kernel_offloads_total',
      'Stream components moved to the kernel.',
      () => source.kernel().figures.offloads,
    );
    this.#counter(
      'rtpproxy_kernel_withdrawals_total',
      'Stream components moved back to userspace, or out with their session.',
      () => source.kernel().figures.withdrawals,
    );
    this.#labeledCounter(
      'rtpproxy_kernel_transactions_total',
      'nftables transactions of the kernel path, by result.',
      'result',
      () => {
        const k = source.kernel();
        return { committed: k.committed, failed: k.failed };
      },
    );
  }

  /** The command observer of the control runner (CommandRunner). */
  readonly observeCommand = (line: string, reply: string, seconds: number): void => {
    const verb = verbOf(line) ?? 'unknown';
    const result = commandResult(reply);
    this.#commands.labels({ verb, result }).inc();
    this.#duration.labels({ verb }).observe(seconds);
    if (result === OVERLOAD_REPLY) this.#overloadRefusals.inc();
  };

  /**
   * An ng request answered (docs/ng.md): verb `ng_COMMAND` for the commands the relay knows
   * (`ng_other` for the rest, so the label stays bounded), result `ok` or `error`.
   */
  readonly observeNg = (command: string, failed: boolean, seconds: number): void => {
    const verb = NG_VERBS.has(command) ? `ng_${command.replace(/ /g, '_')}` : 'ng_other';
    this.#commands.labels({ verb, result: failed ? 'error' : 'ok' }).inc();
    this.#duration.labels({ verb }).observe(seconds);
  };

  /** The text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  #labeledGauge(
    name: string,
    help: string,
    label: string,
    read: () => Readonly<Record<string, number>>,
  ): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        for (const [value, n] of Object.entries(read())) this.set({ [label]: value }, n);
      },
    });
  }

  /** A counter whose value is a running total kept elsewhere, read at scrape time. */
  #counter(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  #labeledCounter(
    name: string,
    help: string,
    label: string,
    read: () => Readonly<Record<string, number>>,
  ): void {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n);
      },
    });
  }
}

/** A total that includes the kernel's part, split by path. */
function byPath(total: number, kernel: number): Record<string, number> {
  return { userspace: Math.max(0, total - kernel), kernel };
}

function perFamily(
  usage: Readonly<Record<Family, PortUsage>>,
  pick: (u: PortUsage) => number,
): Record<string, number> {
  return { '4': pick(usage[4]), '6': pick(usage[6]) };
}
