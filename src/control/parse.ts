/**
 * Command parser: one line (without cookie) to a typed Command or the reference's E-code.
 * Pure and total: it never throws, and the check order is the reference's (docs/protocol.md 12.1):
 * tokenizer (E5) -> verb (E0) -> argument count (E1) -> modifiers allowed (E2) -> sub-commands
 * allowed (E3) -> command modifiers -> addresses -> sub-commands (E3).
 */
import {
  COMMAND_SPECS,
  type Command,
  type SessionRef,
  type SubCommand,
  type Verb,
} from './commands.ts';
import { matchNotifyTarget } from '../notify/targets.ts';
import type { ECode } from './ecodes.ts';
import {
  decodeNotifyTag,
  hasControlCharacter,
  parseRemote,
  parseUpdateModifiers,
  type ParseContext,
} from './modifiers.ts';
import { tokenize, type TokenGroup } from './tokenize.ts';

export type { ParseContext } from './modifiers.ts';

export type ParseResult =
  { readonly ok: true; readonly command: Command } | { readonly ok: false; readonly ecode: ECode };

const fail = (ecode: ECode): ParseResult => ({ ok: false, ecode });
const VERBS = new Set(['U', 'L', 'D', 'P', 'R', 'C', 'S', 'N', 'V', 'I', 'Q', 'X', 'G']);

function ref(callId: string, tag1: string, tag2: string | undefined): SessionRef {
  return tag2 === undefined ? { callId, tag1 } : { callId, tag1, tag2 };
}

/**
 * The verb of a command line, as the parser reads it (`VF` apart from `V`); undefined when the
 * line has no known verb. For the metrics, which label commands by verb.
 */
export function verbOf(line: string): Verb | undefined {
  const head = line.trimStart();
  const letter = head.charAt(0).toUpperCase();
  if (!VERBS.has(letter)) return undefined;
  return letter === 'V' && head.charAt(1).toUpperCase() === 'F' ? 'VF' : (letter as Verb);
}

/** Parses one command line. */
export function parseCommand(line: string, ctx: ParseContext): ParseResult {
  const tokens = tokenize(line);
  if (!tokens.ok) return fail('PARSE_1');
  const { main, subs } = tokens;
  const letter = main.head.charAt(0).toUpperCase();
  if (!VERBS.has(letter)) return fail('CMDUNKN');
  let mods = main.head.slice(1);
  let verb = letter as Verb;
  if (verb === 'V' && mods.charAt(0).toUpperCase() === 'F') {
    verb = 'VF';
    mods = mods.slice(1);
  }
  const spec = COMMAND_SPECS[verb];
  const args = main.args;
  if (args.length < spec.minArgs || args.length > spec.maxArgs) return fail('PARSE_NARGS');
  if (!spec.modifiers && mods.length > 0) return fail('PARSE_MODS');
  if (!spec.subcommands && subs.length > 0) return fail('PARSE_SUBC');
  return parseVerb(verb, mods, args, subs, ctx);
}

function parseVerb(
  verb: Verb,
  mods: string,
  args: readonly string[],
  subs: readonly TokenGroup[],
  ctx: ParseContext,
): ParseResult {
  const a = (i: number): string => args[i] ?? '';
  const opt = (i: number): string | undefined => args[i];
  const lower = mods.toLowerCase();
  switch (verb) {
    case 'U':
    case 'L':
      return parseUpdateLookup(verb, mods, args, subs, ctx);
    case 'D':
      if (!/^w*$/.test(lower)) return fail('PARSE_4');
      return {
        ok: true,
        command: { op: 'delete', ref: ref(a(0), a(1), opt(2)), weak: lower.length > 0 },
      };
    case 'P': {
      if (mods.length > 0 && !/^[+-]?[0-9]+$/.test(mods)) return fail('PARSE_6');
      const count = mods.length > 0 ? Number(mods) : 1;
      return {
        ok: true,
        command: { op: 'play', ref: ref(a(0), a(3), opt(4)), prompt: a(1), codecs: a(2), count },
      };
    }
    case 'S':
      return { ok: true, command: { op: 'stop-play', ref: ref(a(0), a(1), opt(2)) } };
    case 'R':
      for (const m of lower) {
        if (m === 'p') return fail('PARSE_2');
        if (m !== 's') return fail('PARSE_3');
      }
      return {
        ok: true,
        command: { op: 'record', ref: ref(a(0), a(1), opt(2)), single: lower.length > 0 },
      };
    case 'C':
      if (!/^[sp]*$/.test(lower)) return fail('PARSE_3');
      return {
        ok: true,
        command: {
          op: 'copy',
          ref: ref(a(0), a(2), opt(3)),
          target: a(1),
          single: lower.includes('s'),
          replyPort: lower.includes('p'),
        },
      };
    case 'N':
      if (lower.length > 0 && !lower.startsWith('a')) return fail('PARSE_3');
      if (lower.length > 1) return fail('PARSE_2');
      return {
        ok: true,
        command: { op: 'stop-record', ref: ref(a(0), a(1), opt(2)), bothLegs: lower === 'a' },
      };
    case 'Q': {
      const subcommands = parseSubcommands('Q', subs, args.length >= 3, ctx);
      if (subcommands === undefined) return fail('PARSE_SUBC');
      return {
        ok: true,
        command: {
          op: 'query',
          ref: ref(a(0), a(1), opt(2)),
          verbose: lower.includes('v'),
          badModifier: !/^v*$/.test(lower),
          names: args.slice(3),
          subcommands,
        },
      };
    }
    case 'G':
      if (!/^v*$/.test(lower)) return fail('PARSE_5');
      return { ok: true, command: { op: 'stats', verbose: lower.length > 0, names: args } };
    case 'I':
      // `v` (ours, docs/protocol.md 3.13) adds the kernel fast path and its sessions.
      if (!/^[blv]*$/.test(lower)) return fail('PARSE_7');
      return {
        ok: true,
        command: { op: 'info', load: lower.includes('l'), verbose: lower.includes('v') },
      };
    case 'V':
      return { ok: true, command: { op: 'version' } };
    case 'VF':
      return { ok: true, command: { op: 'version-feature', date: a(0) } };
    case 'X':
      return { ok: true, command: { op: 'delete-all' } };
  }
}

function parseUpdateLookup(
  verb: 'U' | 'L',
  mods: string,
  args: readonly string[],
  subs: readonly TokenGroup[],
  ctx: ParseContext,
): ParseResult {
  const [callId = '', addr = '', port = '', tag1 = ''] = args;
  let tag2: string | undefined = args[4];
  let notify: { socket: string; tag: string } | undefined;
  const kamailio = verb === 'U' ? kamailioNotify(args, ctx) : undefined;
  if (kamailio !== undefined) {
    tag2 = kamailio.tag2;
    notify = kamailio.notify;
  } else if (args.length >= 6) {
    // 6 arguments: T1 plus the notify pair (no T2); 7: T1, T2 and the notify pair.
    if (args.length === 6) tag2 = undefined;
    const tagText = args[args.length - 1] ?? '';
    const decoded = decodeNotifyTag(tagText);
    if (!decoded.ok) return decoded;
    notify = { socket: args[args.length - 2] ?? '', tag: decoded.value };
  }
  // Whatever shape it came in, a tag is sent as one line: no control character may reach it.
  if (notify !== undefined && hasControlCharacter(notify.tag)) return fail('PARSE_10');
  const modifiers = parseUpdateModifiers(mods, ctx);
  if (!modifiers.ok) return modifiers;
  const remote = parseRemote(addr, port, modifiers.value.ipv6);
  if (!remote.ok) return remote;
  const subcommands = parseSubcommands(verb, subs, tag2 !== undefined, ctx);
  if (subcommands === undefined) return fail('PARSE_SUBC');
  return {
    ok: true,
    command: {
      op: verb === 'U' ? 'update' : 'lookup',
      ref: ref(callId, tag1, tag2),
      remote: remote.value,
      modifiers: modifiers.value,
      ...(notify === undefined ? {} : { notify }),
      subcommands,
    },
  };
}

/**
 * With `--kamailio_notify`, the two shapes Kamailio's `rtpproxy` module gives the timeout pair
 * (docs/protocol.md 14.1), recognised only when the socket part names a `-n` target:
 *
 * - 5.8 and later, no To tag yet: `T1 SOCKET;TAG` (glued into the T2 slot). The tag is
 *   URL-decoded like NOTIFY_TAG; one that does not decode is taken as it is (never E10).
 * - before 5.8, with a To tag: `T1 T2 SOCKET` (no tag; the reference reads T2 as the socket).
 *   The tag sent on expiry is then `CALLID T1 T2`, as received, so the listener can find the
 *   dialog.
 *
 * Anything else keeps its reference meaning.
 */
function kamailioNotify(
  args: readonly string[],
  ctx: ParseContext,
): { tag2: string | undefined; notify: { socket: string; tag: string } } | undefined {
  const targets = ctx.kamailioNotifyTargets;
  if (targets === undefined) return undefined;
  const known = (socket: string): boolean => matchNotifyTarget(targets, socket) !== undefined;
  const [callId = '', , , tag1 = '', fifth = '', sixth = ''] = args;
  if (args.length === 5) {
    const semi = fifth.indexOf(';');
    if (semi <= 0 || !known(fifth.slice(0, semi))) return undefined;
    const raw = fifth.slice(semi + 1);
    const decoded = decodeNotifyTag(raw);
    return {
      tag2: undefined,
      notify: { socket: fifth.slice(0, semi), tag: decoded.ok ? decoded.value : raw },
    };
  }
  if (args.length === 6 && !known(fifth) && known(sixth)) {
    return { tag2: fifth, notify: { socket: sixth, tag: `${callId} ${tag1} ${fifth}` } };
  }
  return undefined;
}

/**
 * Parses the `&&` sub-commands (docs/protocol.md 3.15). Any failure makes the whole command E3, so this
 * returns undefined rather than a code.
 */
function parseSubcommands(
  main: 'U' | 'L' | 'Q',
  subs: readonly TokenGroup[],
  bothTags: boolean,
  ctx: ParseContext,
): SubCommand[] | undefined {
  const out: SubCommand[] = [];
  for (const { head, args } of subs) {
    const letter = head.charAt(0).toUpperCase();
    const mods = head.slice(1).toLowerCase();
    switch (letter) {
      case 'L': {
        if (main !== 'U' || !bothTags || args.length !== 2) return undefined;
        const modifiers = parseUpdateModifiers(head.slice(1), ctx);
        if (!modifiers.ok) return undefined;
        const remote = parseRemote(args[0] ?? '', args[1] ?? '', modifiers.value.ipv6);
        if (!remote.ok) return undefined;
        out.push({ op: 'lookup', remote: remote.value, modifiers: modifiers.value });
        break;
      }
      case 'S': {
        const m = /^(ttl|tos)=([0-9]+)$/.exec(args[0] ?? '');
        if (args.length !== 1 || !/^r?$/.test(mods) || m === null) return undefined;
        const value = Number(m[2]);
        const reverse = mods === 'r';
        if (m[1] === 'ttl') {
          if (value < 1) return undefined;
          out.push({ op: 'set-ttl', reverse, seconds: value });
        } else {
          if (value > 255) return undefined;
          out.push({ op: 'set-tos', reverse, tos: value });
        }
        break;
      }
      case 'D':
        if (args.length !== 0 || !/^w?$/.test(mods)) return undefined;
        out.push({ op: 'delete', weak: mods === 'w' });
        break;
      case 'C':
        if (main !== 'U' || !bothTags || args.length !== 3 || mods.length > 0) return undefined;
        out.push({ op: 'attach-recorder', source: ref(args[0] ?? '', args[1] ?? '', args[2]) });
        break;
      default:
        // Includes M<mod>:<inst>: no loadable modules, so the reference's "unloaded module" E3.
        return undefined;
    }
  }
  return out;
}
