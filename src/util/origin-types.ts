/**
 * Where a control command came from. Types only: the control listeners fill it in, the session
 * manager passes it on, and the timeout notification client uses it for the `%%CC_SELF%%`
 * wildcard target (protocol.md 8.3).
 */

/** The addresses of the control connection (or datagram) a command arrived on. */
export interface CommandOrigin {
  /** Numeric source address of the command; absent for unix and stdio sockets. */
  readonly remote?: string;
  /** Numeric local address of the control socket the command arrived on. */
  readonly local?: string;
}
