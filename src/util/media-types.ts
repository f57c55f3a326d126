/**
 * Address vocabulary shared by the protocol core and the session manager. Types only, so both
 * layers can speak it without importing each other.
 */

/** Remote media address given by U/L (protocol.md 2.1, "Remote address"). */
export type RemoteSpec =
  | { readonly kind: 'ignored' }
  | { readonly kind: 'hold' }
  | {
      readonly kind: 'address';
      readonly address: string;
      readonly port: number;
      readonly family: 4 | 6;
    };

/** Local address choice made by the `l`, `r`, `6`, `i` and `e` modifiers (protocol.md 2.1). */
export type LocalChoice =
  | { readonly kind: 'default' }
  /**
   * `6` (or its absence) when the remote's family differs from the default local address's: the
   * local address of that family configured (or learnt) last, the reference's `foraf()`.
   */
  | { readonly kind: 'family'; readonly family: 4 | 6 }
  | { readonly kind: 'interfaces'; readonly first: 'i' | 'e'; readonly second?: 'i' | 'e' }
  | { readonly kind: 'address'; readonly address: string; readonly family: 4 | 6 }
  | { readonly kind: 'label'; readonly label: string }
  | { readonly kind: 'route'; readonly address: string; readonly family: 4 | 6 };
