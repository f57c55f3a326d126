/**
 * IP TOS on media packets (`-t`, `S tos=N`) through the daemon's nftables table: node:dgram cannot
 * set IP_TOS, so the DSCP of each IPv4 packet leaving one of our media sockets is rewritten in the
 * output hook, looked up by the packet's source address and port. One map element per socket,
 * changed only when a leg binds, changes its TOS or closes (docs/architecture.md, "The nftables
 * table").
 *
 * Only the six DSCP bits are written (`TOS >> 2`); the two ECN bits are left as the sender's
 * kernel set them (not-ECT for our sockets), because a relay that set ECT would claim an ECN
 * capability the endpoints never negotiated. TOS 0..3 (DSCP 0) removes the element: the packets
 * keep the default DSCP 0.
 */
import { isIPv4 } from 'node:net';
import { isWildcard } from '../util/net.ts';
import type { NftTable } from './table.ts';

/** Map: source address . source port -> `goto dscp_N`, for sockets bound on one address. */
export const TOS_ADDR_MAP = 'tos_addr';
/** Map: source port -> `goto dscp_N`, for sockets bound on the IPv4 wildcard. */
export const TOS_PORT_MAP = 'tos_port';

/** The maps, chains and rules of the TOS feature, inside `table inet NAME { ... }`. */
export function tosDefinition(): string[] {
  const lines = [
    `map ${TOS_ADDR_MAP} { type ipv4_addr . inet_service : verdict; }`,
    `map ${TOS_PORT_MAP} { type inet_service : verdict; }`,
  ];
  // One chain per DSCP value: nft cannot take the value of `ip dscp set` from a map on every
  // version (1.0.6 refuses it), so the map chooses the chain and the chain sets the value.
  for (let dscp = 1; dscp < 64; dscp += 1) {
    lines.push(`chain dscp_${String(dscp)} { ip dscp set ${String(dscp)}; }`);
  }
  lines.push(
    'chain tos_out {',
    '  type filter hook output priority mangle; policy accept;',
    `  meta nfproto ipv4 meta l4proto udp ip saddr . udp sport vmap @${TOS_ADDR_MAP}`,
    `  meta nfproto ipv4 meta l4proto udp udp sport vmap @${TOS_PORT_MAP}`,
    '}',
  );
  return lines;
}

/** The DSCP a TOS byte marks: its upper six bits. */
export function dscpOf(tos: number): number {
  return (tos >> 2) & 0x3f;
}

interface Marked {
  readonly map: string;
  readonly keys: readonly string[];
}

/**
 * The session manager's {@link PacketMarker} (session/mark-types.ts) over the table. Each owner
 * (a leg, a remote copy) holds the elements of its two sockets (RTP on `port`, RTCP on `port+1`).
 */
export class TosMarks {
  readonly #table: NftTable;
  readonly #owners = new Map<object, Marked>();
  /** Called on every mark: the daemon creates its table when the first one comes. */
  readonly #onMark: () => void;

  constructor(table: NftTable, onMark: () => void = () => undefined) {
    this.#table = table;
    this.#onMark = onMark;
  }

  /** Packets leaving `address`:`port` and `port+1` carry `tos`; replaces the owner's marks. */
  mark(owner: object, address: string, port: number, tos: number): void {
    this.#onMark();
    this.unmark(owner);
    const dscp = dscpOf(tos);
    if (dscp === 0 || !isIPv4(address) || !Number.isInteger(port) || port < 1 || port > 65534) {
      return;
    }
    const wildcard = isWildcard(address);
    const map = wildcard ? TOS_PORT_MAP : TOS_ADDR_MAP;
    const keys = [port, port + 1].map((p) => (wildcard ? String(p) : `${address} . ${String(p)}`));
    for (const key of keys) this.#table.set(map, key, `goto dscp_${String(dscp)}`);
    this.#owners.set(owner, { map, keys });
  }

  /** The owner's sockets are closed: their elements go. */
  unmark(owner: object): void {
    const marked = this.#owners.get(owner);
    if (marked === undefined) return;
    this.#owners.delete(owner);
    for (const key of marked.keys) this.#table.set(marked.map, key, undefined);
  }

  /** Owners with elements, for tests. */
  get size(): number {
    return this.#owners.size;
  }
}
