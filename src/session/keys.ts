/**
 * Which session a command's tags select (docs/protocol.md 1). Pure.
 */
import type { Side } from '../base/side.ts';

/** Anything with a session tag. */
export interface Tagged {
  readonly tag: string;
}

/** Text from the last `;` (inclusive), or undefined when there is none. */
function mediaSuffix(tag: string): string | undefined {
  const i = tag.lastIndexOf(';');
  return i < 0 ? undefined : tag.slice(i);
}

/**
 * The single-session rule (U, L, P, S, Q, C): the first session whose tag is T1 (m = 0), or T2
 * (m = 1), or T2 plus a `;` suffix equal to T1's media suffix (m = 1; lets `Q cid totag;1 fromtag`
 * find `fromtag;1`).
 */
export function matchSingle<S extends Tagged>(
  sessions: readonly S[],
  tag1: string,
  tag2: string | undefined,
): { session: S; m: Side } | undefined {
  const suffix1 = mediaSuffix(tag1);
  for (const session of sessions) {
    const tag = session.tag;
    if (tag === tag1) return { session, m: 0 };
    if (tag2 === undefined) continue;
    if (tag === tag2) return { session, m: 1 };
    if (suffix1 !== undefined && tag.startsWith(`${tag2};`) && mediaSuffix(tag) === suffix1) {
      return { session, m: 1 };
    }
  }
  return undefined;
}

/** The prefix rule (R, N, D): the tag is T, or T followed by `;` and anything. */
export function prefixMatch(sessionTag: string, tag: string): 'exact' | 'prefix' | undefined {
  if (sessionTag === tag) return 'exact';
  if (sessionTag.startsWith(`${tag};`)) return 'prefix';
  return undefined;
}
