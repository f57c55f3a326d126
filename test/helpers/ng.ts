/**
 * An ng protocol client for tests, as Kamailio's rtpengine module speaks it: `COOKIE SP
 * BENCODED-DICT` over UDP, the reply matched by its cookie. Replies are decoded with UTF-8
 * strings. Every wait has a deadline.
 */
import dgram from 'node:dgram';
import bencode from 'bencode';
import type { Teardown } from './daemon.ts';
import { withTimeout } from './control.ts';

/** A decoded ng reply: strings, numbers, lists and dictionaries. */
type NgReplyValue = string | number | NgReplyValue[] | { [key: string]: NgReplyValue };
export type NgReplyDict = Record<string, NgReplyValue>;

let seq = 0;

export class NgClient {
  readonly #socket: dgram.Socket;
  readonly #port: number;
  readonly #host: string;

  private constructor(socket: dgram.Socket, port: number, host: string) {
    this.#socket = socket;
    this.#port = port;
    this.#host = host;
  }

  static async open(
    t: Pick<Teardown, 'teardown'>,
    port: number,
    host = '127.0.0.1',
  ): Promise<NgClient> {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => {
        socket.removeListener('error', reject);
        resolve();
      });
    });
    t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    return new NgClient(socket, port, host);
  }

  /** A fresh cookie shaped like Kamailio's `<server_id>_<rand>_<seq>`. */
  static cookie(): string {
    seq += 1;
    return `${String(process.pid)}_${Math.random().toString(36).slice(2, 10)}_${String(seq)}`;
  }

  /** Sends raw bytes and resolves with the next datagram that comes back. */
  async raw(data: Buffer, ms = 5000): Promise<Buffer> {
    const reply = new Promise<Buffer>((resolve) => {
      this.#socket.once('message', (msg) => resolve(msg));
    });
    this.#socket.send(data, this.#port, this.#host);
    return withTimeout(
      reply,
      ms,
      `ng reply to ${JSON.stringify(data.subarray(0, 40).toString('latin1'))}`,
    );
  }

  /** One request; resolves with the reply dictionary (its cookie checked). */
  async request(
    dict: Record<string, unknown>,
    cookie = NgClient.cookie(),
    ms = 5000,
  ): Promise<NgReplyDict> {
    const data = Buffer.concat([Buffer.from(`${cookie} `), Buffer.from(bencode.encode(dict))]);
    const reply = await this.raw(data, ms);
    const prefix = Buffer.from(`${cookie} `);
    if (!reply.subarray(0, prefix.length).equals(prefix)) {
      throw new Error(`reply without the cookie ${cookie}: ${reply.toString('latin1')}`);
    }
    return decodeNg(reply.subarray(prefix.length));
  }
}

/**
 * A bencoded dictionary (a reply, or a request seen on the wire), strings as UTF-8 text. Decoded
 * to bytes and converted here: the package's own string decoding (`decode(data, 'utf8')`) fails on
 * dictionaries in 4.0.1. Throws on anything else.
 */
export function decodeNg(data: Buffer): NgReplyDict {
  const value = toText(bencode.decode(data));
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`not a dictionary: ${data.toString('latin1')}`);
  }
  return value;
}

function toText(value: unknown): NgReplyValue {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map(toText);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toText(v)]));
  }
  throw new Error(`not a bencode value: ${String(value)}`);
}

/** An SDP offer or answer of one party: the lines given, joined with CRLF. */
export function sdpOf(...lines: string[]): string {
  return `${lines.join('\r\n')}\r\n`;
}

/** The port of the m= line `index` (1-based) of an SDP. */
export function mediaPort(sdp: string, index = 1): number {
  const lines = sdp.split('\r\n').filter((l) => l.startsWith('m='));
  const port = lines[index - 1]?.split(' ')[1];
  if (port === undefined) throw new Error(`no m= line ${String(index)} in ${sdp}`);
  return Number(port);
}
