/**
 * A controller's timeout-notification listener for tests (docs/protocol.md 8.4): a real unix or TCP
 * stream server that keeps every byte it receives, per connection. It can be made slow (stop
 * reading), rude (close each connection after its first line) or absent (closed, then reopened
 * on the same address).
 */
import net from 'node:net';
import path from 'node:path';
import type { Teardown } from './daemon.ts';
import { tempDir } from './tmp.ts';

export class NotifyListener {
  /** Bytes received, per accepted connection, in order. */
  readonly connections: Buffer[][] = [];
  /** Close each connection as soon as it delivered one line. */
  closeAfterFirstLine = false;
  /** Accepted connections do not read until resume() (the kernel buffers what is sent). */
  paused = false;
  readonly #sockets = new Set<net.Socket>();
  readonly #where: net.ListenOptions;
  #server: net.Server | undefined;
  #waiters: (() => void)[] = [];

  private constructor(where: net.ListenOptions) {
    this.#where = where;
  }

  /** A unix listener in a fresh mkdtemp directory (removed at teardown). */
  static async unix(t: Teardown, name = 'notify.sock'): Promise<NotifyListener> {
    const dir = tempDir(t, 'notify');
    const listener = new NotifyListener({ path: path.join(dir, name) });
    t.teardown(() => listener.close());
    await listener.open();
    return listener;
  }

  /** A TCP listener on `host`, port chosen by the kernel unless given. */
  static async tcp(t: Teardown, host = '127.0.0.1', port = 0): Promise<NotifyListener> {
    const listener = new NotifyListener({ host, port });
    t.teardown(() => listener.close());
    await listener.open();
    return listener;
  }

  /** A unix path, for `-n unix:PATH`; throws for TCP listeners. */
  get path(): string {
    if (this.#where.path === undefined) throw new Error('not a unix listener');
    return this.#where.path;
  }

  /** The bound TCP port. */
  get port(): number {
    return this.#where.port ?? 0;
  }

  /** Everything received, over all connections, as latin1 text. */
  get text(): string {
    return Buffer.concat(this.connections.flat()).toString('latin1');
  }

  /** Starts (or restarts) listening on the same address. */
  async open(): Promise<void> {
    const server = net.createServer((socket) => {
      this.#accept(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#where, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address !== null && typeof address !== 'string') this.#where.port = address.port;
    this.#server = server;
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }

  /** Starts reading the connections held by `paused`. */
  resume(): void {
    this.paused = false;
    for (const socket of this.#sockets) socket.resume();
  }

  /** Resolves once the received text contains `text`; rejects after `timeoutMs`. */
  async waitFor(text: string, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.text.includes(text)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `notification ${JSON.stringify(text)} not received within ${String(timeoutMs)} ms; got ${JSON.stringify(this.text)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #accept(socket: net.Socket): void {
    const chunks: Buffer[] = [];
    this.connections.push(chunks);
    this.#sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (this.closeAfterFirstLine && chunk.includes(0x0a)) socket.destroy();
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    });
    if (this.paused) socket.pause();
  }
}
