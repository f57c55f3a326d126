/**
 * The connections one stream control socket serves, and their limits: at most
 * {@link MAX_STREAM_CONNECTIONS} at once, the idlest line-framed one closed to make room, the
 * rest refused with an orderly close, and refused or evicted sockets bounded while they close.
 */
import type net from 'node:net';
import type { Logger } from 'pino';
import type { LineChannel } from './line-channel.ts';

/** Accepted connections served at once per stream listener (as the reference polls at most 100). */
const MAX_STREAM_CONNECTIONS = 100;

/**
 * With every connection slot taken, a new connection closes the connection that has been idle
 * longest (no command running, none received for at least this long) and takes its slot. A
 * controller's persistent connection is never timed out otherwise: OpenSIPS keeps one open for
 * hours and a command on a connection we closed would fail and mark the proxy down.
 */
export const STREAM_IDLE_EVICT_MS = 5_000;

/** At most one log line per listener per this interval about refused connections. */
const REFUSED_LOG_INTERVAL_MS = 10_000;

/** How long a refused or evicted connection may take to close its side before it is destroyed. */
const CLOSE_LINGER_MS = 1_000;

/** The served and the closing connections of one stream listener. */
export class ConnectionTable {
  readonly #name: string;
  readonly #log: Logger;
  readonly #idleEvictMs: number;
  /** Connections served now; the channel of a line-framed one, undefined for `unix:`. */
  readonly #connections = new Map<net.Socket, LineChannel | undefined>();
  /** Refused or evicted connections still closing; counted so a flood cannot pile them up. */
  readonly #closingSockets = new Set<net.Socket>();
  #refusedSinceLog = 0;
  #refusedLoggedAt = -Infinity;

  /** `name` is the listener's socket spec, for the log lines. */
  constructor(name: string, log: Logger, idleEvictMs: number) {
    this.#name = name;
    this.#log = log;
    this.#idleEvictMs = idleEvictMs;
  }

  /** Number of connections being served now. */
  get size(): number {
    return this.#connections.size;
  }

  /**
   * Gives a new connection a slot, closing the idlest connection when all are taken; answers
   * false when there was none to close, after refusing the new connection.
   */
  admit(socket: net.Socket): boolean {
    if (this.#connections.size >= MAX_STREAM_CONNECTIONS && !this.#evictIdlest()) {
      this.#refuse(socket);
      return false;
    }
    this.#connections.set(socket, undefined);
    socket.on('close', () => {
      this.#connections.delete(socket);
    });
    return true;
  }

  /** Records the channel serving an admitted line-framed connection. */
  attach(socket: net.Socket, channel: LineChannel): void {
    this.#connections.set(socket, channel);
  }

  /** Stops a served line-framed connection and frees its slot at once. */
  release(socket: net.Socket, channel: LineChannel): void {
    channel.dispose();
    this.#connections.delete(socket);
    this.#closeGently(socket);
  }

  /** Destroys every served and every closing connection (the listener is closing). */
  destroyAll(): void {
    for (const socket of this.#connections.keys()) socket.destroy();
    for (const socket of this.#closingSockets) socket.destroy();
  }

  /**
   * All slots taken: closes the line-framed connection idle longest, if it has run nothing for
   * {@link STREAM_IDLE_EVICT_MS}, and answers whether a slot was freed.
   */
  #evictIdlest(): boolean {
    const now = performance.now();
    let victim: net.Socket | undefined;
    let victimChannel: LineChannel | undefined;
    let oldest = now - this.#idleEvictMs;
    for (const [socket, channel] of this.#connections) {
      const since = channel?.idleSince();
      if (channel === undefined || since === undefined || since > oldest) continue;
      oldest = since;
      victim = socket;
      victimChannel = channel;
    }
    if (victim === undefined || victimChannel === undefined) return false;
    this.#log.info(
      { socket: this.#name, limit: MAX_STREAM_CONNECTIONS, idleMs: Math.round(now - oldest) },
      'control connection limit reached: closing the connection idle longest for a new one',
    );
    this.release(victim, victimChannel);
    return true;
  }

  /**
   * Refuses a connection beyond {@link MAX_STREAM_CONNECTIONS} with an orderly close (FIN, what it
   * sent is read and dropped) rather than a reset, and says so at most once per 10 s.
   */
  #refuse(socket: net.Socket): void {
    this.#refusedSinceLog++;
    const now = performance.now();
    if (now - this.#refusedLoggedAt >= REFUSED_LOG_INTERVAL_MS) {
      this.#log.warn(
        {
          socket: this.#name,
          limit: MAX_STREAM_CONNECTIONS,
          refused: this.#refusedSinceLog,
          peer: socket.remoteAddress,
        },
        `control connection refused: all ${String(MAX_STREAM_CONNECTIONS)} connections of this socket are busy (count is refusals since the last such line)`,
      );
      this.#refusedLoggedAt = now;
      this.#refusedSinceLog = 0;
    }
    this.#closeGently(socket);
  }

  /** Ends our side, drops what the peer still sends, and destroys the socket once it closes too. */
  #closeGently(socket: net.Socket): void {
    socket.setTimeout(0);
    if (this.#closingSockets.size >= MAX_STREAM_CONNECTIONS) {
      socket.destroy();
      return;
    }
    this.#closingSockets.add(socket);
    const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      this.#closingSockets.delete(socket);
    });
    socket.on('end', () => socket.destroy());
    socket.on('data', () => undefined);
    socket.end();
    socket.resume();
  }
}
