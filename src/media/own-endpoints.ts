/**
 * The daemon's own endpoints: every local address with a port where one of our sockets listens
 * (media sockets, control sockets, notify targets on this host). Media must never be sent to, or
 * latched on, one of them, and the UDP control socket never executes a datagram that one of our
 * own media sockets sent (docs/architecture.md, "Own endpoints").
 *
 * The port table is one byte per port in a SharedArrayBuffer, so the main thread and every media
 * worker read the same table: bits 0..5 count the media sockets bound on the port (on any of our
 * addresses), bit 7 marks a control or notify port. Lookups happen only on the slow paths
 * (signalling, latching, a control datagram), never per relayed packet.
 */
import { networkInterfaces } from 'node:os';
import { canonicalAddress } from '../util/net.ts';

const PORTS = 65536;
/** Media sockets on a port are counted in the low bits (two local addresses bind the same port). */
const MEDIA_MASK = 0x3f;
const CONTROL_BIT = 0x80;

/** Local addresses of this host: interfaces, loopback and wildcard forms, plus `extra`. */
export function localAddresses(extra: readonly string[] = []): string[] {
  const out = new Set<string>(['0.0.0.0', '::', '::1']);
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) out.add(canonicalAddress(info.address.replace(/%.*$/, '')));
  }
  for (const address of extra) out.add(canonicalAddress(address));
  return [...out];
}

export class OwnEndpoints {
  /** The shared port table, for a media worker to open with {@link OwnEndpoints.open}. */
  readonly buffer: SharedArrayBuffer;
  /** The local addresses, for a media worker. */
  readonly locals: readonly string[];
  readonly #ports: Uint8Array;
  readonly #local: Set<string>;
  /**
   * The addresses media sockets are bound on (canonical), as this thread knows them: the
   * configured ones, then every address a bind used. A port of the table is ours on these only
   * (on every local address when one is a wildcard): a client on another local address that got
   * the same port number (Kamailio's ephemeral ports overlap the media range) is not us.
   */
  readonly #media = new Set<string>();
  #mediaWildcard = false;
  /** Exact `address port` pairs of remote notify targets. */
  readonly #exact = new Set<string>();

  constructor(
    locals: readonly string[],
    mediaAddresses: readonly string[] = [],
    buffer = new SharedArrayBuffer(PORTS),
  ) {
    this.buffer = buffer;
    this.locals = locals;
    this.#ports = new Uint8Array(buffer);
    this.#local = new Set(locals);
    for (const address of mediaAddresses) this.mediaAddress(address);
  }

  /** A worker's view of the main thread's table. */
  static open(
    buffer: SharedArrayBuffer,
    locals: readonly string[],
    mediaAddresses: readonly string[],
  ): OwnEndpoints {
    return new OwnEndpoints(locals, mediaAddresses, buffer);
  }

  /** The addresses media binds on, for a media worker. */
  get mediaAddresses(): string[] {
    return [...this.#media];
  }

  /** Media sockets are (or will be) bound on `address`. */
  mediaAddress(address: string): void {
    const canonical = canonicalAddress(address);
    if (this.#media.has(canonical)) return;
    this.#media.add(canonical);
    if (canonical === '0.0.0.0' || canonical === '::') this.#mediaWildcard = true;
  }

  /** A media socket was bound on `address`:`port`. */
  mediaBound(port: number, address?: string): void {
    if (address !== undefined) this.mediaAddress(address);
    if (port <= 0 || port >= PORTS) return;
    const v = Atomics.load(this.#ports, port);
    if ((v & MEDIA_MASK) < MEDIA_MASK) Atomics.add(this.#ports, port, 1);
  }

  /** A media socket bound on `port` closed. */
  mediaClosed(port: number): void {
    if (port <= 0 || port >= PORTS) return;
    if ((Atomics.load(this.#ports, port) & MEDIA_MASK) > 0) Atomics.sub(this.#ports, port, 1);
  }

  /** A control socket or a notify target listens on `port` of a local address. */
  controlPort(port: number): void {
    if (port <= 0 || port >= PORTS) return;
    Atomics.or(this.#ports, port, CONTROL_BIT);
  }

  /** A notify target on another host: `address:port` itself is refused as a media remote. */
  remoteEndpoint(address: string, port: number): void {
    this.#exact.add(`${canonicalAddress(address)} ${String(port)}`);
  }

  /** True for an address of this host (any interface, loopback, wildcard, a configured one). */
  isLocal(address: string): boolean {
    if (this.#local.has(address)) return true;
    if (address.startsWith('127.') || address.startsWith('::ffff:127.')) return true;
    if (address.startsWith('::ffff:')) return this.#local.has(address.slice(7));
    return this.#local.has(canonicalAddress(address));
  }

  /** Media must never go to, nor be latched on, this endpoint. */
  isOwn(address: string, port: number): boolean {
    const v = port > 0 && port < PORTS ? Atomics.load(this.#ports, port) : 0;
    if ((v & CONTROL_BIT) !== 0 && this.isLocal(address)) return true;
    if ((v & MEDIA_MASK) !== 0 && this.#isMediaAddress(address)) return true;
    return this.#exact.size > 0 && this.#exact.has(`${canonicalAddress(address)} ${String(port)}`);
  }

  /** The source is one of our own media sockets. */
  isOwnMedia(address: string, port: number): boolean {
    if (port <= 0 || port >= PORTS) return false;
    return (Atomics.load(this.#ports, port) & MEDIA_MASK) !== 0 && this.#isMediaAddress(address);
  }

  #isMediaAddress(address: string): boolean {
    if (this.#mediaWildcard) return this.isLocal(address);
    if (this.#media.has(address)) return true;
    const plain = address.startsWith('::ffff:') ? address.slice(7) : canonicalAddress(address);
    return this.#media.has(plain);
  }
}
