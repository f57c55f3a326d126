/**
 * Modifier parsers: the letters glued to a verb (docs/protocol.md 3.2 and the per-command sections).
 * Pure; every function returns a value or the E-code of the first failing check.
 */
import { addressFamily } from '../util/net.ts';
import type { LocalChoice, RemoteSpec, UpdateModifiers } from './commands.ts';
import type { ECode } from './ecodes.ts';
import type { Family } from '../base/net.ts';
import type { NotifyTargetSpec } from '../notify/targets.ts';

/**
 * What the parser needs to know about the daemon: plain data, computed by the caller (the
 * configuration once, the live local families by dispatch before each command), so that parsing
 * stays pure.
 */
export interface ParseContext {
  /** `-l A/B`: the `i` and `e` modifiers are allowed. */
  readonly bridge: boolean;
  /** At least one IPv6 local address is configured (`U6` without one gives E36). */
  readonly hasIpv6: boolean;
  /** Family of the default (first) local address; 4 when absent. */
  readonly defaultFamily?: Family;
  /**
   * The families of the local addresses known now, configured or learnt by `l`/`r` (the
   * reference's `foraf()` walks its live address list). Absent: IPv4 always, IPv6 per `hasIpv6`.
   */
  readonly localFamilies?: ReadonlySet<Family>;
  /** Labels of `label@ADDR` local addresses, for `l{label}`. */
  readonly labels: ReadonlySet<string>;
  /**
   * `--kamailio_notify`: the forms Kamailio's `timeout_socket` sends are read as a notify pair
   * (docs/protocol.md 14.1) when their socket names one of these `-n` targets, matched as the
   * notifier matches (matchNotifyTarget, docs/protocol.md 8.3). Absent: off.
   */
  readonly kamailioNotifyTargets?: readonly NotifyTargetSpec[];
}

export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly ecode: ECode };

const fail = (ecode: ECode): { ok: false; ecode: ECode } => ({ ok: false, ecode });
const DIGITS = /^[0-9]*/;

/**
 * Reads an address glued to `l` or `r`: dotted IPv4 (ends at the first byte that is neither digit
 * nor dot), `[IPv6]`, or (for `l` only) `{label}`. The scan continues after it, so
 * `Ur10.0.0.1c0,8` is valid.
 */
function readAddress(
  mods: string,
  start: number,
  allowLabel: boolean,
): { end: number; text: string; bracket: '' | '[' | '{' } | undefined {
  const first = mods[start];
  if (first === '[' || (first === '{' && allowLabel)) {
    const close = mods.indexOf(first === '[' ? ']' : '}', start + 1);
    if (close < 0) return undefined;
    return { end: close + 1, text: mods.slice(start + 1, close), bracket: first };
  }
  const m = /^[0-9.]+/.exec(mods.slice(start));
  if (m === null) return undefined;
  return { end: start + m[0].length, text: m[0], bracket: '' };
}

/** Parses the modifiers of U and L (and of the L sub-command). */
export function parseUpdateModifiers(mods: string, ctx: ParseContext): Parsed<UpdateModifiers> {
  let asymmetric: boolean | undefined;
  let weak = false;
  let ipv6 = false;
  let newPorts = false;
  let repacketizeMs: number | undefined;
  let codecs: number[] | undefined;
  const interfaces: ('i' | 'e')[] = [];
  let chosen: LocalChoice | undefined;
  let i = 0;
  while (i < mods.length) {
    const letter = (mods[i] ?? '').toLowerCase();
    i += 1;
    switch (letter) {
      case 'a':
        asymmetric = true;
        break;
      case 's':
        asymmetric = false;
        break;
      case 'w':
        weak = true;
        break;
      case 'n':
        newPorts = true;
        break;
      case '6':
        ipv6 = true;
        break;
      case 'i':
      case 'e':
        if (!ctx.bridge || interfaces.length >= 2) {
          return fail(letter === 'i' ? 'PARSE_12' : 'PARSE_11');
        }
        interfaces.push(letter);
        break;
      case 'z': {
        const digits = DIGITS.exec(mods.slice(i))?.[0] ?? '';
        i += digits.length;
        const ms = digits.length > 0 ? Number(digits) : 0;
        if (ms <= 0 || ms >= 1000) return fail('PARSE_13');
        repacketizeMs = ms;
        break;
      }
      case 'c': {
        const list = /^[0-9,]*/.exec(mods.slice(i))?.[0] ?? '';
        i += list.length;
        const pts = list.split(',').filter((p) => p.length > 0);
        if (codecs !== undefined || pts.length === 0) return fail('PARSE_14');
        codecs = pts.map(Number);
        break;
      }
      case 'l':
      case 'r': {
        const isL = letter === 'l';
        const read = readAddress(mods, i, isL);
        if (read === undefined) return fail(isL ? 'PARSE_15' : 'PARSE_16');
        i = read.end;
        if (read.bracket === '{') {
          if (!ctx.labels.has(read.text)) return fail('INVLARG_1');
          chosen = { kind: 'label', label: read.text };
          break;
        }
        const family = addressFamily(read.text);
        if (family === undefined || (read.bracket === '[') !== (family === 6)) {
          return fail(isL ? 'INVLARG_1' : 'INVLARG_2');
        }
        chosen = isL
          ? { kind: 'address', address: read.text, family }
          : { kind: 'route', address: read.text, family };
        break;
      }
      default:
        return fail('INVLARG_5');
    }
  }
  let local: LocalChoice;
  const family = ipv6 ? 6 : 4;
  if (chosen !== undefined) local = chosen;
  else if (interfaces.length > 0) {
    const [first, second] = interfaces;
    local =
      second === undefined
        ? { kind: 'interfaces', first: first ?? 'i' }
        : { kind: 'interfaces', first: first ?? 'i', second };
  } else if (family !== (ctx.defaultFamily ?? 4)) {
    // Automatic bridging by family (rpcpv1_ul.c): without i/e/l/r, a remote whose family differs
    // from the default local address's gets a local address of its own family, or E36.
    const known = ctx.localFamilies?.has(family) ?? (family === 4 || ctx.hasIpv6);
    if (!known) return fail('INVLARG_6');
    local = { kind: 'family', family };
  } else local = { kind: 'default' };
  return {
    ok: true,
    value: {
      ...(asymmetric === undefined ? {} : { asymmetric }),
      weak,
      ipv6,
      local,
      ...(repacketizeMs === undefined ? {} : { repacketizeMs }),
      ...(codecs === undefined ? {} : { codecs }),
      newPorts,
    },
  };
}

/**
 * Parses the `ADDR PORT` pair of U/L. An address of implausible length is ignored (no pre-fill, the
 * leg learns from packets); an all-zero address means hold; a port of 0 (a disabled stream) gives
 * no pre-fill either, since nothing can be sent to it.
 */
export function parseRemote(addr: string, port: string, ipv6: boolean): Parsed<RemoteSpec> {
  const [minLen, maxLen] = ipv6 ? [2, 45] : [7, 15];
  if (addr.length < minLen || addr.length > maxLen) return { ok: true, value: { kind: 'ignored' } };
  const family = addressFamily(addr);
  if (family !== (ipv6 ? 6 : 4) || !/^[0-9]+$/.test(port)) return fail('INVLARG_7');
  const portNumber = Number(port);
  if (portNumber > 65535) return fail('INVLARG_7');
  if (family === 4 ? addr === '0.0.0.0' : /^[0:]+$/.test(addr)) {
    return { ok: true, value: { kind: 'hold' } };
  }
  if (portNumber === 0) return { ok: true, value: { kind: 'ignored' } };
  return { ok: true, value: { kind: 'address', address: addr, port: portNumber, family } };
}

/**
 * URL-decodes the notify tag of U: `%XX` and `+` (docs/protocol.md 8.2). A tag holding a control
 * character (0x00 to 0x1F or 0x7F), encoded or not, fails with E10 like a bad `%`: the tag is
 * sent as one line, and a `%0A` in it would forge a second notification (the reference sends it).
 */
export function decodeNotifyTag(text: string): Parsed<string> {
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    const ch = text.charAt(i);
    if (ch === '%') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return fail('PARSE_10');
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else out += ch === '+' ? ' ' : ch;
  }
  if (hasControlCharacter(out)) return fail('PARSE_10');
  return { ok: true, value: out };
}

/** True when `text` holds a C0 control character or DEL (latin1, one char per byte). */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
