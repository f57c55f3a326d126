import { lookup } from 'node:dns/promises';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { CommandOrigin } from '../base/net.ts';
import type { CommandRunner, ControlListener } from './runner.ts';
import { formatSocketSpec } from './socket-spec.ts';
import { errorMessage } from '../util/error-message.ts';

/** Input buffer of a line-framed stream connection; a line (with its LF) must fit (protocol.md 1.7). */
export const STREAM_LINE_BUFFER = 8192;

/** Bytes of the single read that makes a `unix:` command. */
export const MAX_UNIX_COMMAND = 8191;

/** Accepted connections served at once per stream listener (as the reference polls at most 100). */
export const MAX_STREAM_CONNECTIONS = 100;

/** How long a `unix:` connection may stay silent before its command arrives. */
export const UNIX_COMMAND_TIMEOUT_MS = 10_000;

/**
 * How long a line-framed connection (cunix, tcp) may stay open without sending its first complete
 * command line. Kamailio and OpenSIPS send a command (`V`) as soon as they connect.
 */
export const STREAM_FIRST_COMMAND_TIMEOUT_MS = 10_000;

/**
 * With every connection slot taken, a new connection closes the connection that has been idle
 * longest (no command running, none received for at least this long) and takes its slot. A
 * controller's persistent connection is never timed out otherwise: OpenSIPS keeps one open for
 * hours and a command on a connection we closed would fail and mark the proxy down.
 */
export const STREAM_IDLE_EVICT_MS = 5_000;

/**
 * Commands of one connection queued or running before we stop reading from it, so one client
 * cannot fill the command queue that every socket shares.
 */
export const MAX_PENDING_PER_CONNECTION = 16;

/**
 * Reply bytes waiting in one connection's output buffer (not yet taken by the kernel) before we
 * stop reading from it: a client that writes commands and never reads the replies gets no more
 * commands executed, and its replies cannot grow our memory.
 */
export const STREAM_REPLY_BUFFER = 64 * 1024;

/**
 * Umask a unix control socket is bound under: owner-only until the mode from `-w` (default 0660)
 * is applied, whatever the process umask, so nobody else can connect in between.
 */
const OWNER_ONLY_UMASK = 0o177;

/** At most one log line per listener per this interval about refused connections. */
const REFUSED_LOG_INTERVAL_MS = 10_000;

/** How long a refused or evicted connection may take to close its side before it is destroyed. */
const CLOSE_LINGER_MS = 1_000;

/** A stream control socket spec served by {@link StreamControlListener}. */
export type StreamControlSpec =
  | { readonly kind: 'unix' | 'cunix'; readonly path: string }
  | { readonly kind: 'tcp' | 'tcp6'; readonly host: string; readonly port: number };

/** Collaborators of {@link StreamControlListener}. */
export interface StreamControlListenerOptions {
  readonly spec: StreamControlSpec;
  readonly runner: CommandRunner;
  readonly log: Logger;
  /**
   * unix/cunix: owner given to the socket file right after bind (`-u`); -1 keeps that id. The
   * reference fails to start when it cannot (protocol.md 1.1).
   */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** unix/cunix: permission bits set right after bind (`-w`, default 0660); else owner-only. */
  readonly mode?: number;
  /** Tests shorten these; the defaults are the constants of the same names. */
  readonly firstCommandTimeoutMs?: number;
  readonly idleEvictMs?: number;
}

type FinishReason = 'eof' | 'overflow';

const EMPTY = Buffer.alloc(0);

/**
 * LF-framed commands from one input, replies in command order on one output. Used for cunix,
 * tcp and stdio; a net.Socket is both its input and its output. Reading pauses while this
 * channel has {@link MAX_PENDING_PER_CONNECTION} commands in the queue or
 * {@link STREAM_REPLY_BUFFER} reply bytes unsent, so what one connection holds is bounded: that,
 * one input chunk and the partial line (under 8192 bytes).
 */
class LineChannel {
  readonly #input: Readable;
  readonly #output: Writable;
  readonly #runner: CommandRunner;
  readonly #onFinished: (reason: FinishReason) => void;
  readonly #origin: CommandOrigin | undefined;
  /** Bytes read and not yet submitted: whole lines held back while blocked, then a partial line. */
  #buffer: Buffer = EMPTY;
  #pending = 0;
  #commands = 0;
  #lastCommandAt = performance.now();
  #writes: Promise<void> = Promise.resolve();
  #ended = false;
  #pumpScheduled = false;
  #stopped = false;
  #disposed = false;

  constructor(
    input: Readable,
    output: Writable,
    runner: CommandRunner,
    onFinished: (reason: FinishReason) => void,
    origin?: CommandOrigin,
  ) {
    this.#input = input;
    this.#output = output;
    this.#runner = runner;
    this.#onFinished = onFinished;
    this.#origin = origin;
  }

  /** Complete command lines received so far. */
  get commands(): number {
    return this.#commands;
  }

  /** Milliseconds (performance.now()) since which this channel has run nothing; undefined while busy. */
  idleSince(): number | undefined {
    if (this.#pending > 0 || this.#stopped) return undefined;
    return this.#lastCommandAt;
  }

  start(): void {
    this.#input.on('data', this.#onData);
    this.#input.on('end', this.#onEnd);
    this.#output.on('drain', this.#pump);
    this.#input.resume();
  }

  /** Stops reading and drops replies not yet written. */
  dispose(): void {
    this.#disposed = true;
    this.#detach();
  }

  readonly #onData = (chunk: Buffer | string): void => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    this.#buffer = this.#buffer.length === 0 ? data : Buffer.concat([this.#buffer, data]);
    this.#pump();
  };

  // A partial last line without LF is dropped at EOF, as the reference does.
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#pump();
  };

  #blocked(): boolean {
    return (
      this.#pending >= MAX_PENDING_PER_CONNECTION ||
      this.#output.writableLength >= STREAM_REPLY_BUFFER
    );
  }

  /** Submits the complete lines held while not blocked, then pauses or resumes reading. */
  readonly #pump = (): void => {
    if (this.#stopped) return;
    const buffer = this.#buffer;
    let from = 0;
    let blocked = this.#blocked();
    while (!blocked) {
      const lf = buffer.indexOf(0x0a, from);
      if (lf < 0) break;
      // The line and its LF did not fit the reference's 8192-byte buffer: it drops the connection.
      if (lf - from >= STREAM_LINE_BUFFER) {
        this.#stop('overflow');
        return;
      }
      this.#submit(buffer.toString('latin1', from, lf));
      from = lf + 1;
      blocked = this.#blocked();
    }
    const rest = buffer.length - from;
    if (!blocked && rest >= STREAM_LINE_BUFFER) {
      this.#stop('overflow');
      return;
    }
    // A short partial line is copied so that it does not keep the whole chunk alive.
    if (rest === 0) {
      this.#buffer = EMPTY;
    } else if (from > 0) {
      this.#buffer = blocked ? buffer.subarray(from) : Buffer.from(buffer.subarray(from));
    }
    if (blocked) {
      this.#input.pause();
      return;
    }
    if (this.#ended) {
      this.#stop('eof');
      return;
    }
    this.#input.resume();
  };

  /**
   * Pumps again after the event loop has polled for I/O: replies resolve in microtasks, so pumping
   * from there would let one busy connection run command after command without the other sockets
   * ever being read.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled || this.#stopped) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #submit(line: string): void {
    // Submitted at once, so the runner sees commands in arrival order across all sockets; the
    // write chain keeps this connection's replies in command order.
    const reply = this.#runner.run(line, this.#origin);
    this.#pending++;
    this.#commands++;
    this.#lastCommandAt = performance.now();
    this.#writes = this.#writes.then(async () => {
      const text = await reply;
      this.#pending--;
      if (this.#disposed) return;
      try {
        if (this.#output.writable) this.#output.write(Buffer.from(text, 'latin1'));
      } catch {
        // A stream torn down under us reports through its 'error' event; the reply is lost.
      }
      this.#schedulePump();
    });
  }

  #stop(reason: FinishReason): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#detach();
    void this.#writes.then(() => {
      if (!this.#disposed) this.#onFinished(reason);
    });
  }

  #detach(): void {
    this.#stopped = true;
    this.#input.off('data', this.#onData);
    this.#input.off('end', this.#onEnd);
    this.#output.off('drain', this.#pump);
    this.#input.pause();
    this.#buffer = EMPTY;
  }
}

/**
 * A stream control socket: `unix:` (one command per connection), `cunix:`, `tcp:` and `tcp6:`
 * (LF-framed lines, many per connection). Cookies are never used on these (protocol.md 1.2).
 */
export class StreamControlListener implements ControlListener {
  readonly #spec: StreamControlSpec;
  readonly #runner: CommandRunner;
  readonly #log: Logger;
  readonly #owner: StreamControlListenerOptions['owner'];
  readonly #mode: number | undefined;
  readonly #firstCommandTimeoutMs: number;
  readonly #idleEvictMs: number;
  readonly #server: net.Server;
  /** Connections served now; the channel of a line-framed one, undefined for `unix:`. */
  readonly #connections = new Map<net.Socket, LineChannel | undefined>();
  /** Refused or evicted connections still closing; counted so a flood cannot pile them up. */
  readonly #closingSockets = new Set<net.Socket>();
  #refusedSinceLog = 0;
  #refusedLoggedAt = -Infinity;
  #listening = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: StreamControlListenerOptions) {
    this.#spec = options.spec;
    this.#runner = options.runner;
    this.#log = options.log;
    this.#owner = options.owner;
    this.#mode = options.mode;
    this.#firstCommandTimeoutMs = options.firstCommandTimeoutMs ?? STREAM_FIRST_COMMAND_TIMEOUT_MS;
    this.#idleEvictMs = options.idleEvictMs ?? STREAM_IDLE_EVICT_MS;
    // Half-open: a client may shut down its side after the last command and still read replies.
    this.#server = net.createServer({ allowHalfOpen: true });
    this.#server.on('error', (err) => {
      if (this.#listening) this.#log.error({ err, socket: this.#name() }, 'control socket error');
    });
    this.#server.on('connection', (socket) => {
      this.#onConnection(socket);
    });
  }

  /** Number of connections being served now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Binds and listens; rejects with an Error naming the spec. */
  async listen(): Promise<void> {
    if (this.#closed) throw new Error(`control socket ${this.#name()} is closed`);
    const spec = this.#spec;
    try {
      if ('path' in spec) {
        await removeStaleSocket(spec.path);
        await this.#listenOn({ path: spec.path }, OWNER_ONLY_UMASK);
      } else {
        const family = spec.kind === 'tcp6' ? 6 : 4;
        const host =
          net.isIP(spec.host) === 0 ? (await lookup(spec.host, { family })).address : spec.host;
        await this.#listenOn({ host, port: spec.port });
      }
    } catch (err) {
      const message = errorMessage(err);
      throw new Error(`cannot listen on control socket ${this.#name()}: ${message}`, {
        cause: err,
      });
    }
    // Listening from here on, so close() removes the file even when chown/chmod fail.
    this.#listening = true;
    if ('path' in spec) await this.#setOwnerAndMode(spec.path);
  }

  async #setOwnerAndMode(path: string): Promise<void> {
    const owner = this.#owner;
    try {
      if (owner !== undefined) await chown(path, owner.uid, owner.gid);
    } catch (err) {
      const message = errorMessage(err);
      throw new Error(
        `cannot set the owner of control socket ${this.#name()} to uid ${String(owner?.uid)} gid ${String(owner?.gid)}: ${message}`,
        { cause: err },
      );
    }
    try {
      if (this.#mode !== undefined) await chmod(path, this.#mode);
    } catch (err) {
      const message = errorMessage(err);
      throw new Error(
        `cannot set the mode of control socket ${this.#name()} to ${(this.#mode ?? 0).toString(8)}: ${message}`,
        { cause: err },
      );
    }
  }

  /** The bound address: an AddressInfo for tcp/tcp6, the path for unix/cunix. */
  address(): AddressInfo | string {
    const address = this.#server.address();
    if (address === null) throw new Error(`control socket ${this.#name()} is not listening`);
    return address;
  }

  /** The bound port of a tcp/tcp6 listener (the kernel's choice when the spec gave port 0). */
  get port(): number {
    const address = this.address();
    if (typeof address === 'string') throw new Error(`control socket ${this.#name()} has no port`);
    return address.port;
  }

  /** Stops accepting, drops every connection and removes the socket file. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      // The callback fires once every connection is gone; with an error if never listening.
      this.#server.close(() => {
        resolve();
      });
    });
    for (const socket of this.#connections.keys()) socket.destroy();
    for (const socket of this.#closingSockets) socket.destroy();
    await stopped;
    if (this.#listening && 'path' in this.#spec) {
      try {
        await unlink(this.#spec.path);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) {
          this.#log.warn({ err, socket: this.#name() }, 'cannot remove control socket file');
        }
      }
    }
  }

  /**
   * Listens; with `umask`, the socket file is bound under that umask (the bind happens within
   * `listen()` itself, so the process umask is changed only for that synchronous call).
   */
  #listenOn(options: net.ListenOptions, umask?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#server.off('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        this.#server.off('error', onError);
        resolve();
      };
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      const previous = umask === undefined ? undefined : process.umask(umask);
      try {
        this.#server.listen(options);
      } finally {
        if (previous !== undefined) process.umask(previous);
      }
    });
  }

  #name(): string {
    return formatSocketSpec(this.#spec);
  }

  #onConnection(socket: net.Socket): void {
    // One connection's failures (ECONNRESET, EPIPE) are its own business: log, never throw.
    socket.on('error', (err) => {
      this.#log.debug({ err, socket: this.#name() }, 'control connection error');
    });
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= MAX_STREAM_CONNECTIONS && !this.#evictIdlest()) {
      this.#refuse(socket);
      return;
    }
    this.#connections.set(socket, undefined);
    socket.on('close', () => {
      this.#connections.delete(socket);
    });
    if (this.#spec.kind === 'unix') {
      this.#serveSingleCommand(socket);
      return;
    }
    const channel = new LineChannel(
      socket,
      socket,
      this.#runner,
      (reason) => {
        if (reason === 'overflow') {
          this.#log.warn(
            { socket: this.#name() },
            'control command line too long, closing connection',
          );
          // Nothing more will be read, so do not wait for the peer to close its side.
          socket.end(() => socket.destroy());
        } else {
          socket.end();
        }
      },
      this.#originOf(socket),
    );
    this.#connections.set(socket, channel);
    // A connection that never sends a command must not keep a slot: Kamailio and OpenSIPS send
    // one right after connecting.
    socket.setTimeout(this.#firstCommandTimeoutMs, () => {
      if (channel.commands > 0) {
        socket.setTimeout(0);
        return;
      }
      this.#log.debug({ socket: this.#name() }, 'control connection sent no command, closing it');
      channel.dispose();
      this.#connections.delete(socket);
      this.#closeGently(socket);
    });
    channel.start();
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
      { socket: this.#name(), limit: MAX_STREAM_CONNECTIONS, idleMs: Math.round(now - oldest) },
      'control connection limit reached: closing the connection idle longest for a new one',
    );
    victimChannel.dispose();
    this.#connections.delete(victim);
    this.#closeGently(victim);
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
          socket: this.#name(),
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

  /** tcp/tcp6: the peer's address and the listening address, for the `%%CC_SELF%%` notify target. */
  #originOf(socket: net.Socket): CommandOrigin | undefined {
    if ('path' in this.#spec) return undefined;
    const bound = this.#server.address();
    const local = bound !== null && typeof bound !== 'string' ? bound.address : undefined;
    return {
      ...(socket.remoteAddress === undefined ? {} : { remote: socket.remoteAddress }),
      ...(local === undefined ? {} : { local }),
    };
  }

  // unix: mirrors the reference, which reads once, answers and closes: the first chunk is the
  // whole command even when it holds several lines or no LF (Kamailio and OpenSIPS send none).
  #serveSingleCommand(socket: net.Socket): void {
    const onEnd = (): void => {
      socket.destroy();
    };
    socket.once('end', onEnd);
    // A unix: client sends its one command right after connecting; one that never does must not
    // keep one of the MAX_STREAM_CONNECTIONS slots for ever.
    socket.setTimeout(UNIX_COMMAND_TIMEOUT_MS, () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      socket.off('end', onEnd);
      socket.setTimeout(0);
      // Any further data is read and discarded: no 'data' listener is left.
      const command = chunk.subarray(0, MAX_UNIX_COMMAND).toString('latin1');
      void this.#runner.run(command).then((reply) => {
        if (!socket.writable) return;
        socket.end(Buffer.from(reply, 'latin1'), () => socket.destroy());
      });
    });
  }
}

/** Collaborators of {@link StdioControlListener}; the streams are injected so tests need no child process. */
export interface StdioControlListenerOptions {
  readonly kind: 'stdio' | 'stdioc';
  /** Normally process.stdin. */
  readonly input: Readable;
  /** Normally process.stdout. */
  readonly output: Writable;
  readonly runner: CommandRunner;
  readonly log: Logger;
  /**
   * Called once stdin ended (or overflowed) and the replies to every command read were written;
   * the daemon gives it when the end of its input ends the daemon (daemon.ts, stdinEndsDaemon).
   */
  readonly onEof?: () => void;
}

/** `stdio:` and `stdioc:`: LF-framed commands on stdin, replies on stdout. */
export class StdioControlListener implements ControlListener {
  readonly #options: StdioControlListenerOptions;
  readonly #channel: LineChannel;
  #started = false;
  #closed = false;

  constructor(options: StdioControlListenerOptions) {
    this.#options = options;
    this.#channel = new LineChannel(options.input, options.output, options.runner, (reason) => {
      this.#finished(reason);
    });
  }

  /** Starts reading stdin. */
  listen(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Error(`control socket ${this.#options.kind}: is closed`));
    }
    if (!this.#started) {
      this.#started = true;
      this.#options.input.on('error', this.#onError);
      this.#options.output.on('error', this.#onError);
      this.#channel.start();
    }
    return Promise.resolve();
  }

  /** Stops reading; leaves the streams themselves open (they belong to the process). Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#channel.dispose();
    this.#options.input.off('error', this.#onError);
    this.#options.output.off('error', this.#onError);
    return Promise.resolve();
  }

  readonly #onError = (err: Error): void => {
    this.#options.log.warn({ err, socket: `${this.#options.kind}:` }, 'control stream error');
  };

  #finished(reason: FinishReason): void {
    if (this.#closed) return;
    if (reason === 'overflow') {
      this.#options.log.warn(
        { socket: `${this.#options.kind}:` },
        'control command line too long, input closed',
      );
    } else {
      this.#options.log.info({ socket: `${this.#options.kind}:` }, 'control input ended');
    }
    // The reference sees a full buffer and EOF alike (read() returns 0): both end the input.
    this.#options.onEof?.();
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const stats = await lstat(path);
    // Only a socket is removed: the reference unlinks whatever is there, but a typo in -s
    // should not delete a regular file; bind then fails with EADDRINUSE instead.
    if (stats.isSocket()) await unlink(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
