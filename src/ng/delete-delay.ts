/**
 * ng `delete` with `delete-delay` (docs/ng.md): the sessions the delete selects keep relaying for
 * the delay and are destroyed when it ends, unless an offer or answer for the call comes first,
 * which keeps them (rtpengine, daemon/call.c: `monologue_delete_iter` schedules, an offer or
 * answer associating the tags again clears the schedule).
 */
import type { Session } from '../session/session.ts';

/** The longest delay honoured, in seconds; longer ones are shortened to it. */
const MAX_DELETE_DELAY_S = 3600;

/** One timer per call with a pending delete. */
export class PendingDeletes {
  readonly #byCall = new Map<string, { timer: NodeJS.Timeout; sessions: Set<Session> }>();
  readonly #destroy: (session: Session) => void;

  /** `destroy` ends one session when its delay runs out (a session already gone is skipped). */
  constructor(destroy: (session: Session) => void) {
    this.#destroy = destroy;
  }

  /**
   * Schedules the sessions' end in `seconds` (at most MAX_DELETE_DELAY_S). A second delete for the
   * same call adds its sessions and restarts the wait, as rtpengine moves the deadline.
   */
  schedule(callId: string, sessions: readonly Session[], seconds: number): void {
    const pending = this.#byCall.get(callId);
    if (pending !== undefined) clearTimeout(pending.timer);
    const all = new Set(pending?.sessions);
    for (const session of sessions) all.add(session);
    const delay = Math.min(seconds, MAX_DELETE_DELAY_S) * 1000;
    const timer = setTimeout(() => {
      this.#byCall.delete(callId);
      for (const session of all) if (!session.closed) this.#destroy(session);
    }, delay);
    timer.unref();
    this.#byCall.set(callId, { timer, sessions: all });
  }

  /** An offer or answer for the call: its pending delete is called off. */
  cancel(callId: string): void {
    const pending = this.#byCall.get(callId);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#byCall.delete(callId);
  }
}
