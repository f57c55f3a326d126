/**
 * What the session manager needs from the timeout notification client (docs/protocol.md 8). The
 * daemon injects the concrete client (`src/notify/notifier.ts`); tests inject fakes.
 */
import type { CommandOrigin } from '../base/net.ts';

/** A resolved notification target; opaque to the session layer. */
export interface NotifyTarget {
  /** For logs: the `-n` name, or `tcp:ADDR:PORT` for a target made from the wildcard. */
  readonly name: string;
}

/** The timeout notification client, as the session manager sees it. */
export interface SessionNotifier {
  /**
   * The target a U's NOTIFY_SOCKET names, for a command that came from `origin` (docs/protocol.md
   * 8.3); undefined when it names none.
   */
  resolve(socket: string, origin: CommandOrigin | undefined): NotifyTarget | undefined;
  /** Queues `tag` + LF for `target` (8.4); returns at once and never throws. */
  notify(target: NotifyTarget, tag: string): void;
}

/** A session's notification setting: where to send what when it expires. */
export interface SessionNotify {
  readonly target: NotifyTarget;
  /** The URL-decoded NOTIFY_TAG. */
  readonly tag: string;
}
