import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { OwnEndpoints } from '../media/own-endpoints.ts';
import type { CommandOrigin } from '../base/net.ts';
import type { ReplyCache } from './reply-cache.ts';
import { NO_ANSWER, type CommandRunner, type ControlListener } from './runner.ts';
import { formatSocketSpec } from './socket-spec.ts';
import { InFlight } from '../util/in-flight.ts';

/** Bytes of a datagram that are read as the command; the rest is dropped (docs/protocol.md 2.8). */
const MAX_DATAGRAM_COMMAND = 8191;

/**
 * Longest cookie accepted, in bytes. Kamailio's are about 20 bytes and OpenSIPS' about 30; the
 * reference takes any length that fits the datagram, so an 8,000-byte cookie made every reply and
 * reply cache entry 16 KB. A longer one is answered `E5` without the cookie (a reply must not echo
 * it: replies are at most 1024 bytes) and is neither executed nor cached.
 */
export const MAX_COOKIE_LENGTH = 128;

/** At most one log line per listener per this interval about cookies that are too long. */
const LONG_COOKIE_LOG_INTERVAL_MS = 10_000;

/** SO_RCVBUF of a datagram control socket, as the reference sets it. */
const CONTROL_RCVBUF = 16 * 1024;

/** At most one log line per this interval about datagrams from our own media sockets. */
const OWN_MEDIA_LOG_MS = 60_000;

/** How long close() waits for replies already handed to the socket. */
const CLOSE_SEND_WAIT_MS = 1000;

/** A datagram control socket spec: `udp:`/`udp6:`, or the ng protocol's `ng:udp:`/`ng:udp6:`. */
export interface UdpControlSpec {
  readonly kind: 'udp' | 'udp6' | 'ng-udp' | 'ng-udp6';
  readonly host: string;
  readonly port: number;
}

/**
 * How a datagram socket's payload is framed and run: the rtpproxy protocol's (the default) or the
 * ng protocol's. Both put a cookie and a space before the command and the reply; the listener
 * keeps the cookie, the reply cache and the sockets, the framing the rest.
 */
export interface DatagramFraming {
  /** Bytes of a datagram that are read; the rest is dropped. */
  readonly maxBytes: number;
  /** The cookie and the command after it; undefined when there is no cookie. */
  split(data: Buffer): { readonly cookie: string; readonly body: Buffer } | undefined;
  /**
   * Runs a command (through the runner's queue); resolves with the reply after the cookie, or
   * undefined to leave it unanswered (an empty datagram).
   */
  run(body: Buffer, origin: CommandOrigin): Promise<Buffer | undefined>;
  /** The reply to a datagram without a usable cookie (none, or too long): sent without cookie. */
  uncookied(): Promise<Buffer>;
}

/** The rtpproxy protocol's framing (docs/protocol.md 2.4, 2.5). */
function rtpproxyFraming(runner: CommandRunner): DatagramFraming {
  return {
    maxBytes: MAX_DATAGRAM_COMMAND,
    split: (data) => {
      // latin1 maps each byte to one char, so NUL and high bytes reach the parser unchanged.
      const parts = splitCookie(data.toString('latin1'));
      return parts === undefined
        ? undefined
        : { cookie: parts.cookie, body: Buffer.from(parts.line, 'latin1') };
    },
    // The source address is where a `%%CC_SELF%%` notify target connects back to (8.3).
    run: (body, origin) =>
      runner
        .run(body.toString('latin1'), origin, true)
        .then((reply) => (reply === NO_ANSWER ? undefined : Buffer.from(reply, 'latin1'))),
    // No usable cookie to echo: the parser answers E5 to the empty line.
    uncookied: () => runner.run('').then((reply) => Buffer.from(reply, 'latin1')),
  };
}

/** Collaborators of {@link UdpControlListener}. */
export interface UdpControlListenerOptions {
  readonly spec: UdpControlSpec;
  readonly runner: CommandRunner;
  /** Shared by all datagram listeners of the daemon (docs/protocol.md 2.7). */
  readonly cache: ReplyCache;
  readonly log: Logger;
  /**
   * The daemon's own endpoints: a datagram sent by one of our own media sockets is media that was
   * misdirected here, never a command (docs/architecture.md, "Own endpoints").
   */
  readonly own?: OwnEndpoints;
  /** The protocol's framing; the rtpproxy protocol's by default. */
  readonly framing?: DatagramFraming;
}

// Separator bytes of the tokenizer (docs/protocol.md 2.4), as latin1 characters.
const SEPARATORS = ' \t\r\n';

/**
 * Splits a datagram into its cookie (first token) and the command text after it, with the
 * separators between them removed. `undefined` when the datagram holds no token at all.
 */
export function splitCookie(text: string): { cookie: string; line: string } | undefined {
  let start = 0;
  while (start < text.length && SEPARATORS.includes(text.charAt(start))) start++;
  if (start === text.length) return undefined;
  let end = start;
  while (end < text.length && !SEPARATORS.includes(text.charAt(end))) end++;
  let rest = end;
  while (rest < text.length && SEPARATORS.includes(text.charAt(rest))) rest++;
  return { cookie: text.slice(start, end), line: text.slice(rest) };
}

/**
 * A datagram control socket: one datagram is one command, prefixed by a cookie that the reply
 * echoes. Retransmissions are answered from the shared reply cache.
 */
export class UdpControlListener implements ControlListener {
  readonly #spec: UdpControlSpec;
  readonly #runner: CommandRunner;
  readonly #framing: DatagramFraming;
  readonly #cache: ReplyCache;
  readonly #log: Logger;
  readonly #own: OwnEndpoints | undefined;
  readonly #socket: dgram.Socket;
  /** Datagrams dropped because one of our own media sockets sent them. */
  droppedFromMedia = 0;
  #ownMediaLoggedAt = Number.NEGATIVE_INFINITY;
  #listening = false;
  /** The address the socket is bound on, read once it listens (for command origins). */
  #localAddress: string | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Replies handed to the socket whose send has not completed yet. */
  readonly #sending = new InFlight();
  /** The socket was closed (close() waited for the replies in flight, or gave up on them). */
  #socketClosed = false;
  #longCookies = 0;
  #longCookieLoggedAt = -Infinity;

  constructor(options: UdpControlListenerOptions) {
    this.#spec = options.spec;
    this.#runner = options.runner;
    this.#framing = options.framing ?? rtpproxyFraming(options.runner);
    this.#cache = options.cache;
    this.#log = options.log;
    this.#own = options.own;
    this.#socket = dgram.createSocket(
      options.spec.kind === 'udp6' || options.spec.kind === 'ng-udp6' ? 'udp6' : 'udp4',
    );
    // Attached before bind: an unhandled 'error' would crash the daemon.
    this.#socket.on('error', (err) => {
      if (this.#listening) this.#log.error({ err, socket: this.#name() }, 'control socket error');
    });
    this.#socket.on('message', (msg, rinfo) => {
      this.#onMessage(msg, rinfo);
    });
  }

  /** Binds the socket; rejects with an Error naming the spec. */
  listen(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`control socket ${this.#name()} is closed`));
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#socket.off('listening', onListening);
        reject(
          new Error(`cannot bind control socket ${this.#name()}: ${err.message}`, { cause: err }),
        );
      };
      const onListening = (): void => {
        this.#socket.off('error', onError);
        this.#listening = true;
        this.#localAddress = this.#socket.address().address;
        try {
          this.#socket.setRecvBufferSize(CONTROL_RCVBUF);
        } catch (err) {
          // The reference ignores this failure too; the default buffer is larger anyway.
          this.#log.debug(
            { err, socket: this.#name() },
            'cannot set control socket receive buffer',
          );
        }
        resolve();
      };
      this.#socket.once('error', onError);
      this.#socket.once('listening', onListening);
      this.#socket.bind({ address: this.#spec.host, port: this.#spec.port });
    });
  }

  /** The bound address; throws before `listen()` resolved. */
  address(): AddressInfo {
    return this.#socket.address();
  }

  /** The bound port (the kernel's choice when the spec gave port 0). */
  get port(): number {
    return this.address().port;
  }

  /**
   * Closes the socket once the replies of the commands received so far are sent (at most
   * {@link CLOSE_SEND_WAIT_MS}; the daemon lets every queued command finish first). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#closing = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#sending.abandon();
      }, CLOSE_SEND_WAIT_MS);
      void this.#sending.idle().then(() => {
        clearTimeout(timer);
        this.#closeSocket(resolve);
      });
    });
    return this.#closing;
  }

  #closeSocket(resolve: () => void): void {
    this.#socketClosed = true;
    try {
      this.#socket.close(() => {
        resolve();
      });
    } catch {
      // Never bound (or already closed by a failed bind): nothing left to release.
      resolve();
    }
  }

  #name(): string {
    return formatSocketSpec(this.#spec);
  }

  #origin(rinfo: dgram.RemoteInfo): CommandOrigin {
    const local = this.#localAddress;
    return local === undefined ? { remote: rinfo.address } : { remote: rinfo.address, local };
  }

  #onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#closed) return;
    if (this.#own?.isOwnMedia(rinfo.address, rinfo.port) === true) {
      this.#dropOwnMedia(rinfo);
      return;
    }
    const framing = this.#framing;
    const data = msg.length > framing.maxBytes ? msg.subarray(0, framing.maxBytes) : msg;
    const parts = framing.split(data);
    if (parts === undefined || parts.cookie.length > MAX_COOKIE_LENGTH) {
      if (parts !== undefined) this.#noteLongCookie(parts.cookie.length, rinfo);
      // Answered without a cookie, neither run nor cached.
      void framing.uncookied().then((reply) => {
        this.#send(reply, rinfo);
      });
      return;
    }
    const { cookie, body } = parts;
    const claim = this.#cache.claim(cookie);
    switch (claim.kind) {
      case 'hit':
        this.#runner.noteDuplicate();
        this.#send(claim.reply, rinfo);
        return;
      case 'pending':
        this.#runner.noteDuplicate();
        void claim.reply.then((reply) => {
          this.#send(reply, rinfo);
        });
        return;
      case 'miss':
        // A command left unanswered gets an empty datagram, which Kamailio and OpenSIPS read as a
        // failed exchange (their retransmissions get it again, from the cache). Its reply counts
        // as being sent from now on: close() waits for it, as it waits for replies handed to the
        // socket (a D that ends a drain closes the sockets right after it ran).
        this.#sending.begin();
        void framing.run(body, this.#origin(rinfo)).then((reply) => {
          const bytes =
            reply === undefined
              ? Buffer.alloc(0)
              : Buffer.concat([Buffer.from(`${cookie} `, 'latin1'), reply]);
          this.#cache.complete(cookie, bytes);
          this.#transmit(bytes, rinfo);
          this.#sending.end();
        });
        return;
    }
  }

  #noteLongCookie(length: number, from: dgram.RemoteInfo): void {
    this.#longCookies++;
    const now = performance.now();
    if (now - this.#longCookieLoggedAt < LONG_COOKIE_LOG_INTERVAL_MS) return;
    this.#log.warn(
      {
        socket: this.#name(),
        from: from.address,
        port: from.port,
        length,
        limit: MAX_COOKIE_LENGTH,
        refused: this.#longCookies,
      },
      'control command refused: cookie too long (count is refusals since the last such line)',
    );
    this.#longCookieLoggedAt = now;
    this.#longCookies = 0;
  }

  /** Media from one of our own sockets: dropped and counted, never executed nor answered. */
  #dropOwnMedia(rinfo: dgram.RemoteInfo): void {
    this.droppedFromMedia += 1;
    const now = performance.now();
    if (now - this.#ownMediaLoggedAt < OWN_MEDIA_LOG_MS) return;
    this.#ownMediaLoggedAt = now;
    this.#log.warn(
      {
        socket: this.#name(),
        from: rinfo.address,
        port: rinfo.port,
        dropped: this.droppedFromMedia,
      },
      'datagram from one of our own media sockets on the control socket: dropped',
    );
  }

  #send(bytes: Buffer, to: dgram.RemoteInfo): void {
    if (this.#closed) {
      this.#log.debug({ socket: this.#name() }, 'control socket closed, reply dropped');
      return;
    }
    this.#transmit(bytes, to);
  }

  /** Hands a reply to the socket unless it is closed already (close() waits for what is sent). */
  #transmit(bytes: Buffer, to: dgram.RemoteInfo): void {
    if (this.#socketClosed) {
      this.#log.debug({ socket: this.#name() }, 'control socket closed, reply dropped');
      return;
    }
    this.#sending.begin();
    const onSent = (err: Error | null): void => {
      this.#sending.end();
      if (err !== null) {
        this.#log.warn(
          { err, socket: this.#name(), to: to.address, port: to.port },
          'cannot send control reply',
        );
      }
    };
    try {
      this.#socket.send(bytes, to.port, to.address, onSent);
    } catch (err) {
      onSent(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
