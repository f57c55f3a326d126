/**
 * Plain dgram peers for relay tests, after rtpengine's snd/rcv/rcv_no: send bytes to a port,
 * expect exact bytes from an exact source, or expect nothing for a while.
 */
import dgram from 'node:dgram';
import type { Teardown } from './daemon.ts';

export interface Received {
  readonly data: Buffer;
  readonly address: string;
  readonly port: number;
}

/** The media ports test daemons use (portWindow and the explicit ranges of the test files). */
const TEST_MEDIA_MIN = 40000;
const TEST_MEDIA_MAX = 49999;

function bindSocket(host: string, port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  return new Promise<dgram.Socket>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
  });
}

export class Peer {
  readonly socket: dgram.Socket;
  readonly host: string;
  readonly #inbox: Received[] = [];
  #waiter: (() => void) | undefined;

  private constructor(socket: dgram.Socket, host: string) {
    this.socket = socket;
    this.host = host;
    socket.on('message', (data, rinfo) => {
      this.#inbox.push({ data, address: rinfo.address, port: rinfo.port });
      this.#waiter?.();
    });
  }

  /**
   * Binds a peer on `host`. Port 0 takes an ephemeral port outside the media ranges the tests give
   * their daemons (40000 to 49999): a party and the relay share the loopback address here, and a
   * party next to one of the relay's ports is one of the relay's own endpoints (its RTCP port would
   * be ours), which no real party on another host can be.
   */
  static async open(t: Teardown, host = '127.0.0.1', port = 0): Promise<Peer> {
    let socket = await bindSocket(host, port);
    for (let attempt = 0; port === 0 && attempt < 50; attempt += 1) {
      const bound = socket.address().port;
      if (bound < TEST_MEDIA_MIN || bound > TEST_MEDIA_MAX) break;
      const next = await bindSocket(host, 0);
      socket.close();
      socket = next;
    }
    socket.on('error', () => undefined);
    const peer = new Peer(socket, host);
    t.teardown(
      () =>
        new Promise<void>((resolve) => {
          socket.close(() => {
            resolve();
          });
        }),
    );
    return peer;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Sends bytes to `port` on `host` (default: this peer's host). */
  send(data: Buffer, port: number, host = this.host): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.send(data, port, host, (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** The next datagram, or a rejection after `timeoutMs`. */
  async receive(timeoutMs = 2000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const next = this.#inbox.shift();
      if (next !== undefined) return next;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no datagram on ${this.host}:${String(this.port)} within ${String(timeoutMs)} ms`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
  }

  /** Expects exactly `data` next, from `fromPort` (and `fromHost`, default this peer's host). */
  async expect(data: Buffer, fromPort: number, fromHost = this.host): Promise<void> {
    const got = await this.receive();
    if (!got.data.equals(data) || got.port !== fromPort || got.address !== fromHost) {
      throw new Error(
        `expected ${String(data.length)} bytes from ${fromHost}:${String(fromPort)}, got ${String(got.data.length)} bytes from ${got.address}:${String(got.port)}${got.data.equals(data) ? '' : ' (different bytes)'}`,
      );
    }
  }

  /** Resolves if nothing arrives within `ms`; rejects with what arrived otherwise. */
  async expectNothing(ms = 200): Promise<void> {
    try {
      const got = await this.receive(ms);
      throw new Error(
        `unexpected ${String(got.data.length)} bytes from ${got.address}:${String(got.port)}`,
      );
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('no datagram')) return;
      throw err;
    }
  }
}

/** A G.711 RTP packet: 12-byte header and a 160-byte payload (172 bytes, 20 ms at 8 kHz). */
export function rtpPacket(fields: {
  seq: number;
  ts?: number;
  ssrc: number;
  pt?: number;
  fill?: number;
}): Buffer {
  const buf = Buffer.alloc(172, fields.fill ?? 0xd5);
  buf[0] = 0x80;
  buf[1] = fields.pt ?? 0;
  buf.writeUInt16BE(fields.seq & 0xffff, 2);
  buf.writeUInt32BE((fields.ts ?? fields.seq * 160) >>> 0, 4);
  buf.writeUInt32BE(fields.ssrc >>> 0, 8);
  return buf;
}

/** A minimal RTCP receiver report (8 bytes, no report blocks). */
export function rtcpPacket(ssrc: number): Buffer {
  const buf = Buffer.alloc(8);
  buf[0] = 0x80;
  buf[1] = 201;
  buf.writeUInt16BE(1, 2);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  return buf;
}

/** A media port window of `size` ports for one test file, so files running in parallel never clash. */
export function portWindow(index: number, size = 100): string[] {
  const min = 42000 + index * size;
  return ['-m', String(min), '-M', String(min + size - 1)];
}

let calls = 0;
/** A unique call-id and tags for one test. */
export function uniqueCall(name: string): { id: string; from: string; to: string } {
  calls += 1;
  const id = `${name.replace(/[^A-Za-z0-9]/g, '')}-${String(process.pid)}-${String(calls)}@test`;
  return { id, from: `ft${String(calls)}`, to: `tt${String(calls)}` };
}

/** An RTP peer and an RTCP peer on the port above it, as a phone binds them (bounded retries). */
export async function openRtpRtcpPeers(t: Teardown, host = '127.0.0.1'): Promise<[Peer, Peer]> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const probe = await Peer.open(t, host);
    const even = probe.port - (probe.port % 2) + 2;
    try {
      return [await Peer.open(t, host, even), await Peer.open(t, host, even + 1)];
    } catch {
      // Taken by someone else: try another pair.
    }
  }
  throw new Error('no free even/odd UDP port pair on loopback after 20 attempts');
}

/** True when a UDP socket can bind 127.0.0.1:port right now (nothing holds the port). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind({ port, address: '127.0.0.1', exclusive: true }, () => {
      s.close(() => {
        resolve(true);
      });
    });
  });
}

/** Polls {@link portFree} until every port of `ports` is free; rejects after `ms`. */
export async function waitPortsFree(
  ports: readonly number[],
  what: string,
  ms = 5000,
): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    const free = await Promise.all(ports.map((port) => portFree(port)));
    if (free.every(Boolean)) return;
    if (performance.now() > end) throw new Error(`timeout after ${String(ms)} ms: ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
  }
}

/** A free UDP port on 127.0.0.1 (bound on port 0, then released). */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', resolve);
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** Whether this host can bind ::1 (some CI containers have no IPv6 loopback). */
export async function canBindIPv6Loopback(): Promise<boolean> {
  const socket = dgram.createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '::1', resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    socket.close();
  }
}
