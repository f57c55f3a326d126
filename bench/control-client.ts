/**
 * UDP control client for the benchmark, speaking the rtpproxy datagram framing (docs/protocol.md 2.5):
 * it sends `COOKIE COMMAND`, matches the reply by its cookie, and retransmits the same bytes (same
 * cookie, so the daemon answers from its reply cache) every second, up to 3 times, before failing.
 * streamQuery() sends one command over a `tcp:` control socket instead, for long replies.
 */
import dgram from 'node:dgram';
import net from 'node:net';

/** Seconds between retransmissions, and how many retransmissions follow the first send. */
const RETRANSMIT_MS = 1000;
const RETRANSMITS = 3;

interface Pending {
  readonly line: string;
  readonly payload: Buffer;
  readonly resolve: (reply: string) => void;
  readonly reject: (err: Error) => void;
  sends: number;
  timer: NodeJS.Timeout;
}

export class ControlClient {
  readonly #socket: dgram.Socket;
  readonly #port: number;
  readonly #host: string;
  readonly #pending = new Map<string, Pending>();
  readonly #prefix: string;
  #seq = 0;
  #closed = false;
  /** Commands sent again after a timeout (a sign of an overloaded control socket). */
  retransmissions = 0;

  private constructor(socket: dgram.Socket, port: number, host: string) {
    this.#socket = socket;
    this.#port = port;
    this.#host = host;
    this.#prefix = `${String(process.pid)}_${Math.random().toString(36).slice(2, 8)}_`;
    socket.on('message', (msg) => {
      this.#onMessage(msg);
    });
    socket.on('error', () => {
      // Errors of individual sends are retried by the timers; nothing to do here.
    });
  }

  /** Opens a client bound to an ephemeral port on `local` talking to `host:port`. */
  static async open(port: number, host = '127.0.0.1', local = '127.0.0.1'): Promise<ControlClient> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port: 0, address: local }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new ControlClient(socket, port, host);
  }

  #onMessage(msg: Buffer): void {
    const text = msg.toString('latin1');
    const sp = text.indexOf(' ');
    if (sp <= 0) return;
    const pending = this.#pending.get(text.slice(0, sp));
    if (pending === undefined) return; // a late duplicate of an answered retransmission
    this.#pending.delete(text.slice(0, sp));
    clearInterval(pending.timer);
    pending.resolve(text.slice(sp + 1).replace(/\n$/, ''));
  }

  /**
   * Sends one command and resolves with the reply text (cookie and final LF removed). Rejects after
   * the first send plus {@link RETRANSMITS} retransmissions went unanswered ({@link RETRANSMIT_MS}
   * apart), or at once when the client is closed. `retransmits` and `intervalMs` change the count
   * and the wait (a start-up probe uses 0 retransmissions and a short wait).
   */
  command(line: string, retransmits = RETRANSMITS, intervalMs = RETRANSMIT_MS): Promise<string> {
    if (this.#closed) return Promise.reject(new Error('control client closed'));
    this.#seq++;
    const cookie = `${this.#prefix}${String(this.#seq)}`;
    const payload = Buffer.from(`${cookie} ${line}`, 'latin1');
    return new Promise<string>((resolve, reject) => {
      const onTimeout = (): void => {
        const p = this.#pending.get(cookie);
        if (p === undefined) return;
        if (p.sends > retransmits) {
          this.#pending.delete(cookie);
          clearInterval(p.timer);
          reject(
            new Error(
              `no reply to control command "${line}" after ${String(p.sends)} sends ` +
                `${String(intervalMs)} ms apart (daemon at ${this.#host}:${String(this.#port)})`,
            ),
          );
          return;
        }
        this.retransmissions++;
        this.#send(p);
      };
      const pending: Pending = {
        line,
        payload,
        resolve,
        reject,
        sends: 0,
        timer: setInterval(onTimeout, intervalMs),
      };
      this.#pending.set(cookie, pending);
      this.#send(pending);
    });
  }

  #send(p: Pending): void {
    p.sends++;
    this.#socket.send(p.payload, this.#port, this.#host);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values()) {
      clearInterval(p.timer);
      p.reject(new Error(`control client closed before a reply to "${p.line}"`));
    }
    this.#pending.clear();
    this.#socket.close();
  }
}

/**
 * Parses a `U`/`L` reply (`PORT`, `PORT ADDR`, `PORT ADDR 6`, or rtpengine's `PORT ADDR 4`);
 * throws on anything else.
 */
export function parsePortReply(line: string, reply: string): { port: number; addr: string | null } {
  const m = /^([0-9]+)(?: (\S+))?(?: [46])?$/.exec(reply);
  const port = m?.[1] === undefined ? Number.NaN : Number(m[1]);
  if (m === null || !(port > 0 && port < 65536)) {
    throw new Error(`unexpected reply to "${line}": ${JSON.stringify(reply)}`);
  }
  return { port, addr: m[2] ?? null };
}

/**
 * How long a stream query may take, connection included: `Iv` waits for the kernel path's
 * counters, read by an nftables transaction queued behind the ones in progress.
 */
const STREAM_QUERY_MS = 15_000;
/** `V`'s reply: the end marker of a stream query. */
const VERSION_REPLY = '20040107';

/**
 * Sends one command over a `tcp:` control socket (LF-framed lines, no cookie, replies in command
 * order) and resolves with its reply, however long: a reply that does not fit a datagram (`Iv`
 * lists every session) cannot come over UDP. A `V` follows the command, and its reply marks the
 * end of the first one's. Rejects after {@link STREAM_QUERY_MS}.
 */
export function streamQuery(host: string, port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let text = '';
    const done = (err: Error | null, reply?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err === null) resolve(reply ?? '');
      else reject(err);
    };
    const timer = setTimeout(() => {
      done(new Error(`no complete reply to "${command}" within ${String(STREAM_QUERY_MS)} ms`));
    }, STREAM_QUERY_MS);
    socket.setEncoding('latin1');
    socket.once('error', (err) => {
      done(err);
    });
    socket.once('connect', () => socket.write(`${command}\nV\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = `${VERSION_REPLY}\n`;
      if (text === end) done(null, '');
      else if (text.endsWith(`\n${end}`)) done(null, text.slice(0, -end.length - 1));
    });
  });
}
