/**
 * An ng request dictionary (docs/ng.md) read into typed fields. Pure: no I/O, never throws.
 * Keys, flags and command names are compared the way rtpengine compares them, with `-` and `_`
 * meaning a space (`call-id`, `call id`), and case-insensitively; unknown keys are ignored.
 */
import { bytesText, isDict, type NgDict, type NgValue } from './bencode.ts';

/** A request's fields, as the commands read them. */
export interface NgRequest {
  /** The command, normalized: `ping`, `offer`, `start recording`, ... */
  readonly command: string;
  readonly callId?: string;
  readonly fromTag?: string;
  readonly toTag?: string;
  readonly viaBranch?: string;
  /** The SDP as latin1 text (one char per byte). */
  readonly sdp?: string;
  /** Items of `flags` (and bare words of `rtpp-flags`), normalized. */
  readonly flags: ReadonlySet<string>;
  /** Items of `replace`, normalized (`origin`, `session connection`, ...). */
  readonly replace: ReadonlySet<string>;
  /** Items of `direction`, as given (interface names). */
  readonly direction: readonly string[];
  /** `ICE`, normalized (`remove`, `force`, ...). */
  readonly ice?: string;
  /** `address family`: `IP4` or `IP6` (upper case). */
  readonly addressFamily?: string;
  /** `received from`: [family, address]. */
  readonly receivedFrom?: { readonly family: string; readonly address: string };
  /** `transport protocol`, as given (`RTP/AVP`, `RTP/SAVP`, ...). */
  readonly transportProtocol?: string;
  /** Items of `rtcp-mux`, normalized. */
  readonly rtcpMux: readonly string[];
  /** Items of `SDES`, normalized. */
  readonly sdes: readonly string[];
  /** `DTLS`, normalized. */
  readonly dtls?: string;
  /** Whether the request carries codec manipulation (`codec` with any entry). */
  readonly codec: boolean;
  /** `limit` of `list`. */
  readonly limit?: number;
  readonly label?: string;
  /** `media number` of `query` and the media commands (ours: which `;N` session). */
  readonly mediaNumber?: number;
  /** `record call` (`yes`/`on`/`start`: true, `no`/`off`/`stop`: false), or the `record-call` flag. */
  readonly recordCall?: boolean;
  /** `media address`: overrides the SDP's address and `received from`. */
  readonly mediaAddress?: string;
  /** `delete delay` of `delete`, in seconds. */
  readonly deleteDelay?: number;
  /** `all` (key or flag): a media command for every party of the call. */
  readonly all: boolean;
  /** The media keys of `play media`. */
  readonly player: PlayerKeys;
}

/** What `play media` may carry (rtpengine's docs/ng_control_protocol.md). */
export interface PlayerKeys {
  readonly file?: string;
  /** `blob` or `blob64` given. */
  readonly blob: boolean;
  /** `db-id` given. */
  readonly dbId: boolean;
  readonly repeatTimes?: number;
  readonly repeatDuration?: number;
  readonly startPos?: number;
}

export type ParsedNg = { ok: true; request: NgRequest } | { ok: false; error: string };

/** rtpengine's comparison of names: `-` and `_` are spaces, and case does not matter. */
function normalizeName(text: string): string {
  return text.replace(/[-_]/g, ' ').toLowerCase();
}

/** Reads a decoded message; errors use rtpengine's texts. */
export function parseNgRequest(value: NgValue): ParsedNg {
  if (!isDict(value)) return { ok: false, error: 'Could not decode bencode dictionary' };
  const dict = normalizedKeys(value);
  const command = bytesText(dict.get('command'));
  if (command === undefined) return { ok: false, error: 'Dictionary contains no key "command"' };
  const flags = new Set(textList(dict.get('flags')).map(normalizeName));
  // Kamailio sends its flags as one `rtpp-flags` string when the daemon is to parse them.
  const rtppFlags = bytesText(dict.get('rtpp flags'));
  if (rtppFlags !== undefined) mergeRtppFlags(rtppFlags, dict, flags);
  const prefixed = prefixedFlags(flags);
  const received = textList(dict.get('received from'));
  const limit = dict.get('limit');
  const mediaNumber = dict.get('media number');
  const text = (key: string): string | undefined => bytesText(dict.get(key));
  const normalized = (key: string): string | undefined => {
    const t = text(key);
    return t === undefined ? undefined : normalizeName(t);
  };
  const request: NgRequest = {
    command: normalizeName(command),
    ...optional('callId', text('call id')),
    ...optional('fromTag', text('from tag')),
    ...optional('toTag', text('to tag')),
    ...optional('viaBranch', text('via branch')),
    ...optional('sdp', text('sdp')),
    flags,
    replace: new Set([...textList(dict.get('replace')).map(normalizeName), ...prefixed.replace]),
    direction: textList(dict.get('direction')),
    ...optional('ice', normalized('ice')),
    ...optional('addressFamily', text('address family')?.toUpperCase()),
    ...(received.length === 2 && received[0] !== undefined && received[1] !== undefined
      ? { receivedFrom: { family: received[0].toUpperCase(), address: received[1] } }
      : {}),
    ...optional('transportProtocol', text('transport protocol') ?? prefixed.transport),
    rtcpMux: [...textList(dict.get('rtcp mux')).map(normalizeName), ...prefixed.rtcpMux],
    sdes: [...textList(dict.get('sdes')).map(normalizeName), ...prefixed.sdes],
    ...optional('dtls', normalized('dtls')),
    codec: hasEntries(dict.get('codec')) || prefixed.codec,
    ...optional('limit', integer(limit)),
    ...optional('label', text('label')),
    ...optional('mediaNumber', integer(mediaNumber)),
    ...optional('mediaAddress', text('media address')),
    ...optional('recordCall', recordCall(normalized('record call'), flags)),
    ...optional('deleteDelay', integer(dict.get('delete delay'))),
    all: flags.has('all') || normalized('all') === 'all',
    player: {
      ...optional('file', text('file')),
      blob: dict.has('blob') || dict.has('blob64'),
      dbId: dict.has('db id'),
      ...optional('repeatTimes', integer(dict.get('repeat times'))),
      ...optional('repeatDuration', integer(dict.get('repeat duration'))),
      ...optional('startPos', integer(dict.get('start pos'))),
    },
  };
  return { ok: true, request };
}

/** Transport names a flag may be, as rtpengine reads them (normalized). */
const TRANSPORTS: ReadonlySet<string> = new Set([
  'rtp/avp',
  'rtp/avpf',
  'rtp/savp',
  'rtp/savpf',
  'udp/tls/rtp/savp',
  'udp/tls/rtp/savpf',
]);

/**
 * What rtpengine reads from the words of `flags` besides plain flags: `replace-X`, `SDES-X`,
 * `rtcp-mux-X`, `codec-...` and a transport name (`RTP/SAVP`) stand for the list keys.
 */
function prefixedFlags(flags: ReadonlySet<string>): {
  replace: string[];
  sdes: string[];
  rtcpMux: string[];
  codec: boolean;
  transport: string | undefined;
} {
  const out = {
    replace: [] as string[],
    sdes: [] as string[],
    rtcpMux: [] as string[],
    codec: false,
    transport: undefined as string | undefined,
  };
  for (const flag of flags) {
    if (flag.startsWith('replace ')) out.replace.push(flag.slice('replace '.length));
    else if (flag.startsWith('sdes ')) out.sdes.push(flag.slice('sdes '.length));
    else if (flag.startsWith('rtcp mux ')) out.rtcpMux.push(flag.slice('rtcp mux '.length));
    else if (flag.startsWith('codec ')) out.codec = true;
    else if (TRANSPORTS.has(flag)) out.transport ??= flag.toUpperCase();
  }
  return out;
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;
}

/** The dictionary with its keys normalized (the first of two keys that normalize alike wins). */
function normalizedKeys(dict: NgDict): Map<string, NgValue> {
  const out = new Map<string, NgValue>();
  for (const [key, value] of dict) {
    const name = normalizeName(key);
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/** A list of byte strings as texts; a single string counts as a list of one. */
function textList(value: NgValue | undefined): string[] {
  if (value === undefined) return [];
  const single = bytesText(value);
  if (single !== undefined) return [single];
  if (!Array.isArray(value)) return [];
  const out: string[] = [];
  for (const item of value as readonly NgValue[]) {
    const text = bytesText(item);
    if (text !== undefined) out.push(text);
  }
  return out;
}

/** An integer, given as a bencode integer or as decimal text. */
function integer(value: NgValue | undefined): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  const text = bytesText(value);
  return text !== undefined && /^-?[0-9]{1,15}$/.test(text) ? Number(text) : undefined;
}

/** `record call`'s value as rtpengine reads it; the bare flag means `on`. */
function recordCall(value: string | undefined, flags: ReadonlySet<string>): boolean | undefined {
  if (value === 'yes' || value === 'on' || value === 'start') return true;
  if (value === 'no' || value === 'off' || value === 'stop') return false;
  return flags.has('record call') ? true : undefined;
}

function hasEntries(value: NgValue | undefined): boolean {
  if (value === undefined) return false;
  if (isDict(value)) return value.size > 0;
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

/**
 * The `rtpp-flags` string: space-separated words; `key=value` sets a key that the dictionary does
 * not already have (values of list keys become one-item lists), a bare word is a flag.
 */
function mergeRtppFlags(text: string, dict: Map<string, NgValue>, flags: Set<string>): void {
  for (const word of text.split(/[ \t\r\n]+/)) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    if (eq < 0) {
      flags.add(normalizeName(word));
      continue;
    }
    const key = normalizeName(word.slice(0, eq));
    const value = Buffer.from(word.slice(eq + 1), 'latin1');
    const existing = dict.get(key);
    if (Array.isArray(existing)) dict.set(key, [...(existing as readonly NgValue[]), value]);
    else if (existing === undefined) dict.set(key, LIST_KEYS.has(key) ? [value] : value);
  }
}

/** Keys whose value is a list. */
const LIST_KEYS: ReadonlySet<string> = new Set([
  'replace',
  'direction',
  'rtcp mux',
  'sdes',
  'received from',
]);
