/**
 * Control-socket clients for tests: they speak the rtpproxy framing (docs/protocol.md 2.1-1.5) the way
 * Kamailio and OpenSIPS do. Every wait has a deadline (default 5 s) and rejects with an Error that
 * says what was being waited for. Bytes are converted with latin1 both ways, so any byte value
 * (NUL included) round-trips.
 */
import dgram from 'node:dgram';
import net from 'node:net';

/** Default deadline of every helper wait, in milliseconds. */
const DEFAULT_TIMEOUT_MS = 5000;

/** Rejects with `Error("timeout after N ms: <what>")` unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timeout after ${String(ms)} ms: ${what}`));
    }, ms);
  });
  return Promise.race([promise, deadline]).finally(() => {
    clearTimeout(timer);
  });
}

/** Polls `check` (every few ms) until it returns true; rejects after `ms`. */
export async function waitUntil(
  check: () => boolean,
  what: string,
  ms = DEFAULT_TIMEOUT_MS,
): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timeout after ${String(ms)} ms: ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
  }
}

let cookieSeq = 0;

/** A fresh cookie shaped like OpenSIPS' `<pid>_<rand>_<seq>`. */
function newCookie(): string {
  cookieSeq++;
  return `${String(process.pid)}_${Math.random().toString(36).slice(2, 8)}_${String(cookieSeq)}`;
}

function udpType(host: string, family: 4 | 6 | undefined): 'udp4' | 'udp6' {
  if (family !== undefined) return family === 6 ? 'udp6' : 'udp4';
  return net.isIPv6(host) ? 'udp6' : 'udp4';
}

/** Options of {@link udpCommand}. */
export interface UdpCommandOptions {
  /** Cookie to send; a fresh one by default. */
  readonly cookie?: string;
  /** Socket family; guessed from `host` by default. */
  readonly family?: 4 | 6;
  readonly timeoutMs?: number;
}

/**
 * Sends one `<cookie> <line>` datagram from a fresh socket and resolves with the reply text
 * without the cookie and its space (ending in LF). Rejects when the reply carries another cookie.
 */
export async function udpCommand(
  port: number,
  host: string,
  line: string,
  options: UdpCommandOptions = {},
): Promise<string> {
  const client = await UdpControlClient.open(
    port,
    host,
    options.family === undefined ? {} : { family: options.family },
  );
  try {
    const cookie = options.cookie ?? newCookie();
    await client.sendRaw(`${cookie} ${line}`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const reply = await client.receive(timeoutMs);
    const prefix = `${cookie} `;
    if (!reply.startsWith(prefix)) {
      throw new Error(
        `udp ${host}:${String(port)}: reply ${JSON.stringify(reply)} does not start with cookie ${JSON.stringify(prefix)}`,
      );
    }
    return reply.slice(prefix.length);
  } finally {
    await client.close();
  }
}

interface UdpWaiter {
  readonly cookie: string | undefined;
  readonly resolve: (text: string) => void;
}

/**
 * One bound datagram socket talking to a control socket. `command()` adds a fresh cookie and
 * matches the reply by cookie; datagrams nobody waits for queue up for `receive()`.
 */
export class UdpControlClient {
  readonly #socket: dgram.Socket;
  readonly #port: number;
  readonly #host: string;
  readonly #inbox: string[] = [];
  #waiters: UdpWaiter[] = [];
  #closed = false;

  private constructor(socket: dgram.Socket, port: number, host: string) {
    this.#socket = socket;
    this.#port = port;
    this.#host = host;
    socket.on('message', (msg) => {
      this.#deliver(msg.toString('latin1'));
    });
  }

  /** Binds an ephemeral loopback-or-wildcard socket of the right family. */
  static async open(
    port: number,
    host: string,
    options: { readonly family?: 4 | 6 } = {},
  ): Promise<UdpControlClient> {
    const socket = dgram.createSocket(udpType(host, options.family));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => {
      // ICMP port unreachable and the like: the pending command then times out with a message.
    });
    return new UdpControlClient(socket, port, host);
  }

  /** This client's own port (the source port of what it sends). */
  get localPort(): number {
    return this.#socket.address().port;
  }

  /** Sends `<fresh cookie> <line>` and resolves with the reply without cookie (ending in LF). */
  command(
    line: string,
    options: { readonly cookie?: string; readonly timeoutMs?: number } = {},
  ): Promise<string> {
    const cookie = options.cookie ?? newCookie();
    const prefix = `${cookie} `;
    const reply = this.#wait(
      prefix,
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      `reply to ${JSON.stringify(prefix + line)}`,
    );
    const sent = this.sendRaw(prefix + line);
    return Promise.all([reply, sent]).then(([text]) => text.slice(prefix.length));
  }

  /** Sends exact bytes (a string is converted with latin1). */
  sendRaw(data: string | Buffer): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    return new Promise<void>((resolve, reject) => {
      this.#socket.send(bytes, this.#port, this.#host, (err) => {
        if (err === null) resolve();
        else reject(err);
      });
    });
  }

  /** The next datagram not claimed by a `command()`, as latin1 text (cookie included). */
  receive(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const queued = this.#inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return this.#wait(undefined, timeoutMs, `a datagram from ${this.#host}:${String(this.#port)}`);
  }

  /** Closes the socket. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise<void>((resolve) => {
      this.#socket.close(() => {
        resolve();
      });
    });
  }

  #wait(cookiePrefix: string | undefined, timeoutMs: number, what: string): Promise<string> {
    let waiter: UdpWaiter | undefined;
    const got = new Promise<string>((resolve) => {
      waiter = { cookie: cookiePrefix, resolve };
      this.#waiters.push(waiter);
    });
    return withTimeout(got, timeoutMs, `udp ${this.#host}:${String(this.#port)}: ${what}`).finally(
      () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
      },
    );
  }

  #deliver(text: string): void {
    const index = this.#waiters.findIndex(
      (w) => w.cookie !== undefined && text.startsWith(w.cookie),
    );
    const waiter =
      index >= 0 ? this.#waiters[index] : this.#waiters.find((w) => w.cookie === undefined);
    if (waiter === undefined) {
      this.#inbox.push(text);
      return;
    }
    this.#waiters = this.#waiters.filter((w) => w !== waiter);
    waiter.resolve(text);
  }
}

/**
 * One `unix:` exchange: connects, writes `line` exactly as given (no LF is added, like Kamailio
 * and OpenSIPS), and resolves with everything read until the daemon closes the connection.
 */
export function unixCommand(
  path: string,
  line: string,
  options: { readonly timeoutMs?: number } = {},
): Promise<string> {
  const socket = net.createConnection({ path });
  const chunks: Buffer[] = [];
  const done = new Promise<string>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      // The daemon may close with our unread bytes still queued (ECONNRESET after the reply).
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(new Error(`unix ${path}: ${err.message}`, { cause: err }));
    });
    socket.on('close', () => {
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('connect', () => {
      socket.write(Buffer.from(line, 'latin1'));
    });
  });
  return withTimeout(
    done,
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    `unix ${path}: reply to ${JSON.stringify(line)} and close`,
  ).finally(() => {
    socket.destroy();
  });
}

/** Where a {@link StreamControlClient} connects: tcp/tcp6 host and port, or a cunix path. */
export type StreamTarget =
  { readonly host: string; readonly port: number } | { readonly path: string };

interface StreamRequest {
  readonly line: string;
  // Lines the reply has, or 'auto' (see StreamControlClient.command).
  readonly want: number | 'auto-i' | 'auto';
  readonly collected: string[];
  readonly resolve: (text: string) => void;
  readonly reject: (err: Error) => void;
}

/** Options of {@link StreamControlClient.command}. */
export interface StreamCommandOptions {
  /** Exact number of reply lines to read; see {@link StreamControlClient.command} for the default. */
  readonly lines?: number;
  readonly timeoutMs?: number;
}

/**
 * A persistent connection to an LF-framed control socket (`tcp:`, `tcp6:`, `cunix:`). Commands
 * may be pipelined; replies are matched in order, as the daemon answers in command order.
 */
export class StreamControlClient {
  readonly #socket: net.Socket;
  readonly #name: string;
  readonly #requests: StreamRequest[] = [];
  readonly #inbox: string[] = [];
  #lineWaiters: ((line: string) => void)[] = [];
  #partial = '';
  #ended = false;
  readonly #closed: Promise<void>;

  private constructor(socket: net.Socket, name: string) {
    this.#socket = socket;
    this.#name = name;
    this.#closed = new Promise<void>((resolve) => {
      socket.on('close', () => {
        this.#ended = true;
        for (const request of this.#requests.splice(0)) {
          request.reject(
            new Error(
              `${name}: connection closed before the reply to ${JSON.stringify(request.line)}`,
            ),
          );
        }
        resolve();
      });
    });
    socket.on('error', () => {
      // Reported through 'close' (pending commands reject there).
    });
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk.toString('latin1'));
    });
  }

  /** Connects; rejects after the deadline or on a connection error. */
  static async connect(
    target: StreamTarget,
    options: { readonly timeoutMs?: number } = {},
  ): Promise<StreamControlClient> {
    const name =
      'path' in target ? `cunix ${target.path}` : `tcp ${target.host}:${String(target.port)}`;
    const socket =
      'path' in target
        ? net.createConnection({ path: target.path })
        : net.createConnection({ host: target.host, port: target.port });
    const connected = new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err) => {
        reject(new Error(`${name}: ${err.message}`, { cause: err }));
      });
    });
    try {
      await withTimeout(connected, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, `${name}: connect`);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return new StreamControlClient(socket, name);
  }

  /**
   * Sends `line` + LF and resolves with the reply, every line ending in LF. How many lines:
   * `options.lines` if given; otherwise one, except for an `I` command, whose successful reply
   * has five lines, six with the `l` modifier (docs/protocol.md 10.2); an `E<n>` first line ends any reply.
   */
  command(line: string, options: StreamCommandOptions = {}): Promise<string> {
    let want: StreamRequest['want'] = options.lines ?? 'auto';
    if (options.lines === undefined) {
      const verbToken = line.split(/[ \t\r\n]+/).find((token) => token !== '') ?? '';
      if (/^i/i.test(verbToken)) want = 'auto-i';
    }
    const reply = new Promise<string>((resolve, reject) => {
      if (this.#ended) {
        reject(new Error(`${this.#name}: connection closed`));
        return;
      }
      this.#requests.push({ line, want, collected: [], resolve, reject });
    });
    this.sendRaw(`${line}\n`);
    return withTimeout(
      reply,
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      `${this.#name}: reply to ${JSON.stringify(line)}`,
    );
  }

  /** Writes exact bytes (a string is converted with latin1); no LF is added. */
  sendRaw(data: string | Buffer): void {
    if (this.#ended || this.#socket.destroyed) return;
    this.#socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next reply line not claimed by a `command()` (with its LF). */
  readLine(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const queued = this.#inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    let waiter: ((line: string) => void) | undefined;
    const got = new Promise<string>((resolve) => {
      waiter = resolve;
      this.#lineWaiters.push(resolve);
    });
    return withTimeout(got, timeoutMs, `${this.#name}: a reply line`).finally(() => {
      this.#lineWaiters = this.#lineWaiters.filter((w) => w !== waiter);
    });
  }

  /** Resolves when the connection is closed (by either side); rejects after the deadline. */
  waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return withTimeout(this.#closed, timeoutMs, `${this.#name}: connection closed by the daemon`);
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.#ended;
  }

  /** Closes the connection. Idempotent. */
  async close(): Promise<void> {
    this.#socket.destroy();
    await this.#closed;
  }

  #onData(text: string): void {
    let data = this.#partial + text;
    let lf = data.indexOf('\n');
    while (lf >= 0) {
      this.#onLine(data.slice(0, lf + 1));
      data = data.slice(lf + 1);
      lf = data.indexOf('\n');
    }
    this.#partial = data;
  }

  #onLine(line: string): void {
    const request = this.#requests[0];
    if (request === undefined) {
      const waiter = this.#lineWaiters.shift();
      if (waiter !== undefined) waiter(line);
      else this.#inbox.push(line);
      return;
    }
    request.collected.push(line);
    if (replyComplete(request)) {
      this.#requests.shift();
      request.resolve(request.collected.join(''));
    }
  }
}

function replyComplete(request: StreamRequest): boolean {
  const count = request.collected.length;
  if (typeof request.want === 'number') return count >= request.want;
  if (count === 1 && /^E[0-9]+\n$/.test(request.collected[0] ?? '')) return true;
  if (request.want === 'auto') return true;
  const verbToken = request.line.split(/[ \t\r\n]+/).find((token) => token !== '') ?? '';
  return count >= (/l/i.test(verbToken.slice(1)) ? 6 : 5);
}
