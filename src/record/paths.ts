/**
 * Recording file names (docs/protocol.md 6.3), made safe. Pure: string and `node:path`
 * work only, no file system access.
 *
 * | how started                      | files                                              |
 * |----------------------------------|----------------------------------------------------|
 * | `R`, `-a` (separate files)       | `CALLID=TAG.o.rtp`, `.o.rtcp` (leg 1), `.a.rtp`, `.a.rtcp` (leg 0) |
 * | `Rs` / `-a` with `-P` (combined) | `CALLID=TAG.pcap`                                  |
 * | `C NAME`                         | `NAME.rtp`, `NAME.rtcp`                            |
 * | `Cs NAME` with `-P` (combined)   | `NAME` exactly                                     |
 *
 * TAG is the session tag cut at its first `;` (`abc;1` -> `abc`), so the streams of a
 * multi-media call share file names, as in the reference.
 *
 * Safety. Call-ids, tags and names arrive from the network and must never make us write outside
 * the recording directory:
 * - The reference writes the call-id and tag verbatim, so a `/` in them makes a path with
 *   subdirectories (and `../` climbs out). We replace every `/` in a call-id or tag by `_`
 *   instead of refusing: a call-id is an arbitrary SIP token (RFC 3261 `word` allows `/`), and
 *   refusing would make `R` fail for calls that are legitimate, while `_` keeps names readable.
 *   Two call-ids differing only in `/` vs `_` then share a file, like the multi-media quirk.
 * - A `C` NAME is chosen by the proxy's script (OpenSIPS `rtpproxy_start_recording`
 *   destination), where a relative subdirectory (`2024/call1`) is a plausible intent, so `/` is
 *   kept there: the NAME may name a file in an existing subdirectory. It is refused when it is
 *   absolute, has an empty, `.` or `..` component, or contains NUL.
 * - Any name containing NUL, or a component longer than 255 bytes (NAME_MAX on Linux, counted in
 *   UTF-8 bytes after the suffix is added), is refused.
 * - Finally {@link resolveInside} joins with the directory and checks with `path.relative` that
 *   the result is strictly inside it.
 */

import path from 'node:path';
import type { Side } from '../base/side.ts';

/** Linux NAME_MAX: bytes in one path component. */
const MAX_NAME_BYTES = 255;

/** Character that replaces `/` in call-ids and tags. */
const SLASH_REPLACEMENT = '_';

/** Relative file names of a recorder: two separate files, or one combined pcap file. */
export type RecordFileNames =
  | { readonly kind: 'separate'; readonly rtp: string; readonly rtcp: string }
  | { readonly kind: 'combined'; readonly file: string };

/** The session tag without its media number: cut at the first `;` (6.3). */
export function tagWithoutMediaNumber(tag: string): string {
  const semi = tag.indexOf(';');
  return semi === -1 ? tag : tag.slice(0, semi);
}

/** A call-id or tag as it goes into a file name: `/` replaced by `_`; undefined if it holds NUL. */
function fileNamePart(text: string): string | undefined {
  if (text.includes('\0')) return undefined;
  return text.replaceAll('/', SLASH_REPLACEMENT);
}

/** True when `component` is a plain file name: not empty, `.` or `..`, no `/` or NUL, <= 255 bytes. */
function isSafeComponent(component: string): boolean {
  return (
    component !== '' &&
    component !== '.' &&
    component !== '..' &&
    !component.includes('/') &&
    !component.includes('\0') &&
    Buffer.byteLength(component, 'utf8') <= MAX_NAME_BYTES
  );
}

/** True when `rel` is a relative path whose every component is {@link isSafeComponent}. */
export function isSafeRelativePath(rel: string): boolean {
  if (rel === '' || path.isAbsolute(rel)) return false;
  return rel.split('/').every(isSafeComponent);
}

/**
 * File names for an `R` / `-a` recorder of one leg: `leg` 1 is the originator (`o`), leg 0 the
 * answerer (`a`). `combined` (the `s` modifier or `-a`, effective only with `-P`: the caller
 * decides) gives the one `CALLID=TAG.pcap` file shared by both legs. Undefined when the call-id
 * is empty, a part contains NUL, or a resulting name is longer than 255 bytes.
 */
export function legFileNames(
  callId: string,
  sessionTag: string,
  leg: Side,
  combined: boolean,
): RecordFileNames | undefined {
  if (callId === '') return undefined;
  const cid = fileNamePart(callId);
  const tag = fileNamePart(tagWithoutMediaNumber(sessionTag));
  if (cid === undefined || tag === undefined) return undefined;
  const base = `${cid}=${tag}`;
  if (combined) return checked({ kind: 'combined', file: `${base}.pcap` });
  const side = leg === 1 ? 'o' : 'a';
  return checked({ kind: 'separate', rtp: `${base}.${side}.rtp`, rtcp: `${base}.${side}.rtcp` });
}

/**
 * File names for a `C NAME` recorder: `NAME.rtp` + `NAME.rtcp`, or `NAME` itself when
 * `combined` (`Cs` with `-P`). Undefined for an unsafe NAME (see the module comment).
 */
export function namedFileNames(name: string, combined: boolean): RecordFileNames | undefined {
  if (!isSafeRelativePath(name)) return undefined; // checked before the suffix hides `..` or `a/`
  if (combined) return checked({ kind: 'combined', file: name });
  return checked({ kind: 'separate', rtp: `${name}.rtp`, rtcp: `${name}.rtcp` });
}

function checked(names: RecordFileNames): RecordFileNames | undefined {
  const all = names.kind === 'combined' ? [names.file] : [names.rtp, names.rtcp];
  return all.every(isSafeRelativePath) ? names : undefined;
}

/**
 * `dir` joined with the relative name `rel`, as an absolute path, or undefined unless the result
 * is strictly inside `dir` (checked with `path.relative` after `path.join`, so `..` tricks and
 * absolute names cannot escape). `rel` should already have passed {@link isSafeRelativePath};
 * this is the second, independent check.
 */
export function resolveInside(dir: string, rel: string): string | undefined {
  if (rel === '' || rel.includes('\0') || path.isAbsolute(rel)) return undefined;
  const root = path.resolve(dir);
  const full = path.resolve(path.join(root, rel));
  const inside = path.relative(root, full);
  if (
    inside === '' ||
    inside === '..' ||
    inside.startsWith(`..${path.sep}`) ||
    path.isAbsolute(inside)
  ) {
    return undefined;
  }
  return full;
}
