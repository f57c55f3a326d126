/** Callbacks from the daemon to its owner (cli/main.ts). */
export interface DaemonHooks {
  /** After SIGHUP drain began, the last session is gone: the process may exit. */
  onDrained(): void;
  /**
   * EOF on stdin, for a `stdioc:` socket or a `stdio:` one that is the only socket the daemon
   * reads without accepting connections: start a graceful shutdown.
   */
  onStdioEof(): void;
  /** Someone asked for a graceful drain (the admin API's POST /drain): start it as SIGHUP does. */
  onDrainRequested(reason: string): void;
  /** A media worker failed: media can no longer be relayed; the process should stop (status 1). */
  onFatal(err: Error): void;
}

/** The running relay, as seen by the command line entry point. */
export interface DaemonHandle {
  /** Binds every control socket; rejects (with the socket named) when one cannot be bound. */
  start(): Promise<void>;
  /** Stops the control listeners, destroys every session, releases every socket. Idempotent. */
  close(): Promise<void>;
  /** Graceful shutdown (SIGHUP): new sessions get E99; onDrained fires when none is left. */
  drain(): void;
  /** Bound port of the admin listener (`--http`), once listening; undefined without one. */
  readonly httpPort: number | undefined;
}
