/**
 * Control-plane load for the benchmark: `concurrency` callers, each running U, L, D for a fresh
 * call id back to back (as Kamailio's SIP workers do, one command in flight per worker), while the
 * generator's media runs. It measures each command's round-trip time and counts the setups (a U
 * and its L both answered) per second, the figures that tell whether the proxy would keep being
 * answered or mark the relay dead under media load.
 */
import { performance } from 'node:perf_hooks';
import { ControlClient } from './control-client.ts';
import { LatencyHistogram, type LatencySummary } from './histogram.ts';

/** Callers stop after this many setups each, whatever the window (a bound for every loop). */
const MAX_SETUPS_PER_CALLER = 1_000_000;

export interface ProbeResult {
  readonly concurrency: number;
  readonly windowMs: number;
  readonly setups: number;
  readonly setupsPerS: number;
  readonly commands: number;
  /** Commands that got an error reply or no reply after every retransmission. */
  readonly failures: number;
  readonly retransmissions: number;
  readonly latency: LatencySummary;
}

export class ControlProbe {
  readonly #client: ControlClient;
  readonly #concurrency: number;
  readonly #suffix: string;
  readonly #histogram = new LatencyHistogram();
  #running = false;
  #setups = 0;
  #commands = 0;
  #failures = 0;
  #startedAt = 0;
  #callers: Promise<void>[] = [];

  private constructor(client: ControlClient, concurrency: number, tagSuffix: string) {
    this.#client = client;
    this.#concurrency = concurrency;
    this.#suffix = tagSuffix;
  }

  static async open(
    controlPort: number,
    concurrency: number,
    tagSuffix: string,
  ): Promise<ControlProbe> {
    return new ControlProbe(await ControlClient.open(controlPort), concurrency, tagSuffix);
  }

  start(): void {
    this.#running = true;
    this.#startedAt = performance.now();
    this.#callers = Array.from({ length: this.#concurrency }, (_v, i) => this.#caller(i));
  }

  async stop(): Promise<ProbeResult> {
    this.#running = false;
    const windowMs = performance.now() - this.#startedAt;
    const setups = this.#setups;
    await Promise.all(this.#callers);
    this.#client.close();
    return {
      concurrency: this.#concurrency,
      windowMs,
      setups,
      setupsPerS: windowMs > 0 ? (setups * 1000) / windowMs : 0,
      commands: this.#commands,
      failures: this.#failures,
      retransmissions: this.#client.retransmissions,
      latency: this.#histogram.summary(),
    };
  }

  async #command(line: string): Promise<string | null> {
    const t0 = performance.now();
    try {
      const reply = await this.#client.command(line);
      this.#histogram.record(performance.now() - t0);
      this.#commands++;
      if (reply.startsWith('E')) {
        this.#failures++;
        return null;
      }
      return reply;
    } catch {
      this.#failures++;
      return null;
    }
  }

  async #caller(index: number): Promise<void> {
    for (let n = 0; this.#running && n < MAX_SETUPS_PER_CALLER; n++) {
      const callId = `probe-${String(process.pid)}-${String(index)}-${String(n)}`;
      const from = `from${String(n)}${this.#suffix}`;
      const to = `to${String(n)}${this.#suffix}`;
      const u = await this.#command(`U ${callId} 127.0.0.1 9 ${from}`);
      const l = u === null ? null : await this.#command(`L ${callId} 127.0.0.1 9 ${from} ${to}`);
      if (u !== null && l !== null) this.#setups++;
      await this.#command(`D ${callId} ${from} ${to}`);
    }
  }
}
