/**
 * How the session manager has the IP TOS of a leg's packets applied (`-t`, `S tos=N`): the daemon
 * hands it a marker (nft/tos.ts, over the daemon's nftables table) when it can apply TOS at all.
 */
export interface PacketMarker {
  /**
   * Packets leaving the sockets of `owner` (bound on `address`, RTP on `port`, RTCP on `port+1`)
   * carry `tos`; replaces whatever the owner had. Returns at once, never throws.
   */
  mark(owner: object, address: string, port: number, tos: number): void;
  /** The owner's sockets are closed. */
  unmark(owner: object): void;
}
