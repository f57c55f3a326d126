/**
 * The two sides of a call. A session has two legs (docs/protocol.md 1.1): leg 1 faces the
 * party that sent the offer (U, the from-tag's side), leg 0 the party that answered (L). Media that
 * arrives on one leg leaves through the other.
 */
export type Side = 0 | 1;

/** The other side of the call. */
export function otherSide(side: Side): Side {
  return side === 0 ? 1 : 0;
}
