/**
 * The timeout notification client (docs/protocol.md 8.4), after the reference's `src/rtpp_notify.c`:
 * when a session with a notify target expires, its tag and a LF go to the target over one
 * persistent stream connection per target. The daemon is the client; the controller listens.
 *
 * Nothing here can hold up the relay: `notify()` only appends to a bounded queue, connections
 * are opened lazily and asynchronously (with a deadline), writes respect backpressure, and every
 * failure is logged (rate-limited) and counted, never thrown.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { makeRateLimiter } from '../util/logger.ts';
import type { CommandOrigin } from '../base/net.ts';
import { MAX_NOTIFY_TARGETS, matchNotifyTarget, type NotifyTargetSpec } from './targets.ts';

/** Lines waiting for one target before new ones are dropped. */
const MAX_QUEUED_PER_TARGET = 1000;
/** A connection attempt that has not succeeded by then fails. */
const CONNECT_TIMEOUT_MS = 3000;
/** A line whose send failed is re-sent on a new connection at most this many more times (the reference's 3). */
const MAX_RESENDS = 3;
/** Time close() gives open connections to flush what was written. */
const CLOSE_GRACE_MS = 500;
/** Repeated warnings about one target are logged at most once per this window. */
const WARN_WINDOW_MS = 10_000;

/** Counters of the client, for tests and operators (plain numbers). */
export interface NotifyCounters {
  /** Lines handed to the kernel on a connection. */
  sent: number;
  /** Lines dropped: queue full, connection failed, too many resends, shutdown. */
  dropped: number;
  /** Connections opened successfully. */
  connects: number;
  /** Connection attempts that failed. */
  connectFailures: number;
}

export interface NotifierOptions {
  readonly targets: readonly NotifyTargetSpec[];
  readonly logger: Logger;
  /** Monotonic milliseconds, for log rate limiting. */
  readonly now: () => number;
  /** Defaults: {@link MAX_QUEUED_PER_TARGET}, {@link CONNECT_TIMEOUT_MS}. */
  readonly maxQueued?: number;
  readonly connectTimeoutMs?: number;
}

interface Line {
  readonly bytes: Buffer;
  /** Sends tried so far. */
  tries: number;
}

interface ChannelContext {
  readonly log: Logger;
  readonly counters: NotifyCounters;
  readonly warnAllowed: (key: string) => boolean;
  readonly maxQueued: number;
  readonly connectTimeoutMs: number;
}

/** One target: its connection (when open) and the lines waiting for it. */
class Channel {
  /** The `-n` name, or `tcp:ADDR:PORT` for a target made from the wildcard. */
  readonly name: string;
  readonly #connect: net.NetConnectOpts;
  readonly #ctx: ChannelContext;
  #queue: Line[] = [];
  /** Written to the socket, write not yet confirmed: re-sent if the connection fails first. */
  #inflight: Line[] = [];
  #socket: net.Socket | undefined;
  #state: 'idle' | 'connecting' | 'open' = 'idle';
  #blocked = false;
  #closed = false;
  #lastError: Error | undefined;

  constructor(name: string, connect: net.NetConnectOpts, ctx: ChannelContext) {
    this.name = name;
    this.#connect = connect;
    this.#ctx = ctx;
  }

  /** Lines waiting or written but unconfirmed. */
  get backlog(): number {
    return this.#queue.length + this.#inflight.length;
  }

  enqueue(tag: string): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#ctx.maxQueued) {
      this.#drop(1, 'queue full');
      return;
    }
    // latin1: the tag holds the bytes of the URL-decoded command text, one char per byte.
    this.#queue.push({ bytes: Buffer.from(`${tag}\n`, 'latin1'), tries: 0 });
    this.#pump();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const lost = this.#queue.length;
    this.#queue = [];
    if (lost > 0) this.#drop(lost, 'shutting down');
    const socket = this.#socket;
    if (socket === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.#state === 'open') socket.end();
      else socket.destroy();
    });
  }

  #pump(): void {
    if (this.#closed || this.#queue.length === 0) return;
    if (this.#state === 'idle') this.#open();
    else if (this.#state === 'open') this.#flush();
  }

  #open(): void {
    this.#state = 'connecting';
    this.#lastError = undefined;
    let socket: net.Socket;
    try {
      socket = net.connect(this.#connect);
    } catch (err) {
      this.#state = 'idle';
      this.#ctx.counters.connectFailures += 1;
      const lost = this.#queue.length;
      this.#queue = [];
      this.#drop(lost, 'cannot connect', err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#socket = socket;
    const timer = setTimeout(() => {
      socket.destroy(new Error(`no connection within ${String(this.#ctx.connectTimeoutMs)} ms`));
    }, this.#ctx.connectTimeoutMs);
    socket.on('error', (err) => {
      this.#lastError = err;
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      this.#state = 'open';
      this.#ctx.counters.connects += 1;
      this.#ctx.log.debug({ target: this.name }, 'notification socket connected');
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      // Nothing is ever read from the controller; consuming the stream lets us see its FIN.
      socket.resume();
      if (this.#closed) socket.end();
      else this.#flush();
    });
    socket.on('drain', () => {
      this.#blocked = false;
      this.#flush();
    });
    socket.once('close', () => {
      clearTimeout(timer);
      this.#onClose(socket);
    });
  }

  #flush(): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    while (!this.#blocked && this.#queue.length > 0) {
      const line = this.#queue.shift();
      if (line === undefined) break;
      line.tries += 1;
      this.#inflight.push(line);
      const more = socket.write(line.bytes, (err) => {
        if (err !== null && err !== undefined) return; // 'close' re-queues what is in flight
        const i = this.#inflight.indexOf(line);
        if (i >= 0) this.#inflight.splice(i, 1);
        this.#ctx.counters.sent += 1;
      });
      if (!more) this.#blocked = true;
    }
  }

  #onClose(socket: net.Socket): void {
    if (this.#socket !== socket) return;
    const wasConnecting = this.#state === 'connecting';
    this.#socket = undefined;
    this.#state = 'idle';
    this.#blocked = false;
    const err = this.#lastError;
    if (wasConnecting) {
      if (this.#closed) return;
      this.#ctx.counters.connectFailures += 1;
      // As in the reference, a notification whose connection cannot be opened is dropped; the
      // next notification tries again.
      const lost = this.#queue.length;
      this.#queue = [];
      if (lost > 0) this.#drop(lost, 'cannot connect', err);
      return;
    }
    const retry = this.#inflight.filter((l) => l.tries <= MAX_RESENDS);
    const givenUp = this.#inflight.length - retry.length;
    this.#inflight = [];
    if (givenUp > 0) this.#drop(givenUp, 'send failed too often', err);
    if (this.#closed) return;
    if (err !== undefined || retry.length > 0) {
      this.#ctx.log.debug(
        { target: this.name, err, resend: retry.length },
        'notification socket closed',
      );
    }
    this.#queue = [...retry, ...this.#queue];
    this.#pump();
  }

  #drop(count: number, reason: string, err?: Error): void {
    this.#ctx.counters.dropped += count;
    if (this.#ctx.warnAllowed(`${this.name} ${reason}`)) {
      this.#ctx.log.warn(
        { target: this.name, dropped: count, reason, err },
        'timeout notification dropped',
      );
    }
  }
}

/** The opaque target handle the session manager keeps per session. */
export interface NotifyHandle {
  readonly name: string;
}

/**
 * The notification client: resolves NOTIFY_SOCKET strings to targets (docs/protocol.md 8.3) and sends
 * tags to them (8.4). Constructed by the daemon when at least one `-n` is given.
 */
export class TimeoutNotifier {
  readonly counters: NotifyCounters = { sent: 0, dropped: 0, connects: 0, connectFailures: 0 };
  readonly #specs: readonly NotifyTargetSpec[];
  readonly #ctx: ChannelContext;
  readonly #fixed = new Map<NotifyTargetSpec, Channel>();
  /** Targets made from a wildcard, by `ADDR:PORT`; created on first use, then reused. */
  readonly #dynamic = new Map<string, Channel>();
  #closed = false;

  constructor(options: NotifierOptions) {
    this.#specs = options.targets;
    const log = options.logger;
    this.#ctx = {
      log,
      counters: this.counters,
      warnAllowed: makeRateLimiter(WARN_WINDOW_MS, options.now),
      maxQueued: options.maxQueued ?? MAX_QUEUED_PER_TARGET,
      connectTimeoutMs: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    };
    for (const spec of this.#specs) {
      if (spec.kind === 'unix') {
        this.#fixed.set(spec, new Channel(spec.name, { path: spec.path }, this.#ctx));
      } else if (spec.kind === 'tcp') {
        this.#fixed.set(
          spec,
          new Channel(spec.name, { host: spec.host, port: spec.port, family: 4 }, this.#ctx),
        );
      }
    }
  }

  /** Whether NOTIFY_SOCKET names a configured target (for the Kamailio forms, docs/protocol.md 14.1). */
  knows(socket: string): boolean {
    return matchNotifyTarget(this.#specs, socket) !== undefined;
  }

  /**
   * The target a U's NOTIFY_SOCKET names, for a command that came from `origin`; undefined when
   * it names none (the U then succeeds without notification). A wildcard becomes TCP to the
   * command's IPv4 source address (127.0.0.1 for unix, stdio and IPv6 sources), bound to the
   * control socket's IPv4 address.
   */
  resolve(socket: string, origin: CommandOrigin | undefined): NotifyHandle | undefined {
    const spec = matchNotifyTarget(this.#specs, socket);
    if (spec === undefined) return undefined;
    if (spec.kind !== 'tcp-self') return this.#fixed.get(spec);
    const fromIpv4 = origin?.remote !== undefined && net.isIPv4(origin.remote);
    const host = fromIpv4 ? origin.remote : '127.0.0.1';
    const key = `${host}:${String(spec.port)}`;
    const known = this.#dynamic.get(key);
    if (known !== undefined) return known;
    if (this.#fixed.size + this.#dynamic.size >= MAX_NOTIFY_TARGETS) {
      if (this.#ctx.warnAllowed('wildcard limit')) {
        this.#ctx.log.warn(
          { socket, host, limit: MAX_NOTIFY_TARGETS },
          'too many notification targets; this session gets none',
        );
      }
      return undefined;
    }
    const local = fromIpv4 ? origin.local : undefined;
    const bind =
      local !== undefined && net.isIPv4(local) && local !== '0.0.0.0'
        ? { localAddress: local }
        : {};
    const channel = new Channel(
      `tcp:${key}`,
      { host, port: spec.port, family: 4, ...bind },
      this.#ctx,
    );
    this.#dynamic.set(key, channel);
    return channel;
  }

  /** Queues `tag` + LF for `target`; returns at once, never throws. */
  notify(target: NotifyHandle, tag: string): void {
    if (this.#closed || !(target instanceof Channel)) return;
    target.enqueue(tag);
  }

  /** Lines waiting or unconfirmed, over every target. */
  get backlog(): number {
    let n = 0;
    for (const c of this.#channels()) n += c.backlog;
    return n;
  }

  /** Closes every connection (what was written gets a short grace to flush). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#channels()].map((c) => c.close()));
  }

  *#channels(): IterableIterator<Channel> {
    yield* this.#fixed.values();
    yield* this.#dynamic.values();
  }
}
