/**
 * `play media` and `stop media` (docs/ng.md): what of rtpengine's media player the relay's prompt
 * player (docs/playback.md) can carry out, and the refusals for the rest. Pure.
 *
 * rtpengine plays any file ffmpeg reads, transcoded to the party's codec; the relay plays prompts
 * prepared per payload type (`NAME.PT`, raw encoded audio, written by `rtpproxy-makeann`), as the
 * rtpproxy protocol's `P` does. So `file` names a prompt: `NAME`, or `NAME.PT` (PT a payload type,
 * 0 to 127) to ask for that payload type first.
 */
import type { PlayerKeys } from './message.ts';

/** A `play media` the prompt player can carry out. */
export interface PlayPlan {
  /** The prompt's name, without a `.PT` ending. */
  readonly name: string;
  /** The payload type the file name asked for, tried first. */
  readonly preferred: number | undefined;
  /** How many times the prompt plays. */
  readonly count: number;
}

/** The plan for `play media`, or the error-reason of what the player cannot do. */
export function playPlan(keys: PlayerKeys): PlayPlan | { readonly error: string } {
  if (keys.blob) {
    return { error: 'media blobs are not supported: give a prompt file (file), docs/playback.md' };
  }
  if (keys.dbId) return { error: 'media from a database (db-id) is not supported' };
  if ((keys.startPos ?? 0) !== 0) return { error: 'start-pos is not supported' };
  if ((keys.repeatDuration ?? 0) !== 0) return { error: 'repeat-duration is not supported' };
  const file = keys.file;
  if (file === undefined || file === '') return { error: 'No media file specified' };
  const count = keys.repeatTimes ?? 1;
  if (count < 1) return { error: 'repeat-times must be 1 or more' };
  const ending = /\.([0-9]{1,3})$/.exec(file);
  const pt = ending === null ? undefined : Number(ending[1]);
  if (pt !== undefined && pt <= 127) {
    return { name: file.slice(0, -(ending?.[0].length ?? 0)), preferred: pt, count };
  }
  return { name: file, preferred: undefined, count };
}

/**
 * The payload types to look prompt files up for: the party's own (what its SDP said it receives),
 * in its order, the one the file name asked for first when the party takes it. A party whose SDP
 * is not known yet gets the file name's.
 */
export function promptPayloadTypes(plan: PlayPlan, party: readonly number[]): number[] {
  const { preferred } = plan;
  if (preferred === undefined) return [...party];
  if (party.length === 0) return [preferred];
  if (!party.includes(preferred)) return [...party];
  return [preferred, ...party.filter((pt) => pt !== preferred)];
}
