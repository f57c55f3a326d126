/**
 * The stream control sockets: `unix:` (one command per connection), `cunix:`, `tcp:` and `tcp6:`
 * (LF-framed lines, many per connection). Binding, the socket file's owner and mode, and accepting;
 * one connection's framing and back-pressure are line-channel.ts, the slots connection-table.ts.
 */
import { lookup } from 'node:dns/promises';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { CommandOrigin } from '../base/net.ts';
import { ConnectionTable, STREAM_IDLE_EVICT_MS } from './connection-table.ts';
import { LineChannel } from './line-channel.ts';
import { NO_ANSWER, type CommandRunner, type ControlListener } from './runner.ts';
import { formatSocketSpec } from './socket-spec.ts';
import { errorMessage } from '../util/error-message.ts';

export { MAX_PENDING_PER_CONNECTION, STREAM_REPLY_BUFFER } from './line-channel.ts';
export { StdioControlListener } from './listener-stdio.ts';

/** Bytes of the single read that makes a `unix:` command. */
const MAX_UNIX_COMMAND = 8191;

/** How long a `unix:` connection may stay silent before its command arrives. */
const UNIX_COMMAND_TIMEOUT_MS = 10_000;

/**
 * How long a line-framed connection (cunix, tcp) may stay open without sending its first complete
 * command line. Kamailio and OpenSIPS send a command (`V`) as soon as they connect.
 */
const STREAM_FIRST_COMMAND_TIMEOUT_MS = 10_000;

/**
 * Umask a unix control socket is bound under: owner-only until the mode from `-w` (default 0660)
 * is applied, whatever the process umask, so nobody else can connect in between.
 */
const OWNER_ONLY_UMASK = 0o177;

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
   * reference fails to start when it cannot (docs/protocol.md 2.1).
   */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** unix/cunix: permission bits set right after bind (`-w`, default 0660); else owner-only. */
  readonly mode?: number;
  /** Tests shorten these; the defaults are the constants of the same names. */
  readonly firstCommandTimeoutMs?: number;
  readonly idleEvictMs?: number;
}

/**
 * A stream control socket: `unix:` (one command per connection), `cunix:`, `tcp:` and `tcp6:`
 * (LF-framed lines, many per connection). Cookies are never used on these (docs/protocol.md 2.4).
 */
export class StreamControlListener implements ControlListener {
  readonly #spec: StreamControlSpec;
  readonly #runner: CommandRunner;
  readonly #log: Logger;
  readonly #owner: StreamControlListenerOptions['owner'];
  readonly #mode: number | undefined;
  readonly #firstCommandTimeoutMs: number;
  readonly #server: net.Server;
  readonly #connections: ConnectionTable;
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
    this.#connections = new ConnectionTable(
      formatSocketSpec(options.spec),
      options.log,
      options.idleEvictMs ?? STREAM_IDLE_EVICT_MS,
    );
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
    this.#connections.destroyAll();
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
    if (!this.#connections.admit(socket)) return;
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
        }
        // Nothing more will be read, so do not wait for the peer to close its side.
        if (reason === 'eof') socket.end();
        else socket.end(() => socket.destroy());
      },
      this.#originOf(socket),
      true,
    );
    this.#connections.attach(socket, channel);
    // A connection that never sends a command must not keep a slot: Kamailio and OpenSIPS send
    // one right after connecting.
    socket.setTimeout(this.#firstCommandTimeoutMs, () => {
      if (channel.commands > 0) {
        socket.setTimeout(0);
        return;
      }
      this.#log.debug({ socket: this.#name() }, 'control connection sent no command, closing it');
      this.#connections.release(socket, channel);
    });
    channel.start();
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
      void this.#runner.run(command, undefined, true).then((reply) => {
        if (!socket.writable) return;
        // Left unanswered: the connection closes without a reply.
        const bytes = Buffer.from(reply === NO_ANSWER ? '' : reply, 'latin1');
        socket.end(bytes, () => socket.destroy());
      });
    });
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
