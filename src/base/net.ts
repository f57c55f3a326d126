/**
 * Address vocabulary every layer speaks: address families, endpoints, the remote and local
 * address choices of U/L, and where a command came from. Types only.
 */

/** An IP address family. */
export type Family = 4 | 6;

/** A numeric address and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Remote media address given by U/L (docs/protocol.md 3.2, "Remote address"). */
export type RemoteSpec =
  | { readonly kind: 'ignored' }
  | { readonly kind: 'hold' }
  | {
      readonly kind: 'address';
      readonly address: string;
      readonly port: number;
      readonly family: Family;
    };

/** Local address choice made by the `l`, `r`, `6`, `i` and `e` modifiers (docs/protocol.md 3.2). */
export type LocalChoice =
  | { readonly kind: 'default' }
  /**
   * `6` (or its absence) when the remote's family differs from the default local address's: the
   * local address of that family configured (or learnt) last, the reference's `foraf()`.
   */
  | { readonly kind: 'family'; readonly family: Family }
  | { readonly kind: 'interfaces'; readonly first: 'i' | 'e'; readonly second?: 'i' | 'e' }
  | { readonly kind: 'address'; readonly address: string; readonly family: Family }
  | { readonly kind: 'label'; readonly label: string }
  | { readonly kind: 'route'; readonly address: string; readonly family: Family };

/** The addresses of the control connection (or datagram) a command arrived on. */
export interface CommandOrigin {
  /** Numeric source address of the command; absent for unix and stdio sockets. */
  readonly remote?: string;
  /** Numeric local address of the control socket the command arrived on. */
  readonly local?: string;
}
