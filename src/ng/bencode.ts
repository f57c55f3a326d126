/**
 * Bencode for the ng protocol (docs/ng.md), over the `bencode` package: decoding into a typed tree
 * that never throws, and encoding a reply. Pure.
 */
import bencode from 'bencode';

/** A decoded bencode value: byte strings stay bytes (SDP may hold any byte), dictionaries are Maps. */
export type NgValue = Uint8Array | number | readonly NgValue[] | NgDict;

/** A decoded bencode dictionary, keys as UTF-8 text. */
export type NgDict = ReadonlyMap<string, NgValue>;

/** A value to encode: strings go out as UTF-8, Buffers as they are. */
export type NgOut =
  string | number | Uint8Array | readonly NgOut[] | { readonly [key: string]: NgOut };

/** Nesting deeper than this is refused rather than walked (a datagram could nest 30,000 lists). */
const MAX_DEPTH = 32;

type Decoded = { ok: true; value: NgValue } | { ok: false; error: string };

/** The decoder's read position after a decode, which the package keeps on the function. */
interface DecoderState {
  position?: unknown;
}

/**
 * Decodes one bencoded value that must fill `data` exactly. Errors (truncation, trailing bytes, bad
 * integers, too deep) come back as a message, never as an exception.
 */
export function decodeBencode(data: Uint8Array): Decoded {
  if (data.length === 0) return { ok: false, error: 'empty data' };
  let raw: unknown;
  try {
    raw = bencode.decode(data);
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  const position = (bencode.decode as DecoderState).position;
  if (typeof position === 'number' && position !== data.length) {
    return {
      ok: false,
      error: position > data.length ? 'truncated data' : 'trailing bytes after the value',
    };
  }
  const value = toNgValue(raw, 0);
  return value === undefined ? { ok: false, error: 'nested too deeply' } : { ok: true, value };
}

function toNgValue(raw: unknown, depth: number): NgValue | undefined {
  if (depth > MAX_DEPTH) return undefined;
  if (typeof raw === 'number') return raw;
  if (raw instanceof Uint8Array) return raw;
  if (Array.isArray(raw)) {
    const list: NgValue[] = [];
    for (const item of raw as unknown[]) {
      const value = toNgValue(item, depth + 1);
      if (value === undefined) return undefined;
      list.push(value);
    }
    return list;
  }
  if (typeof raw === 'object' && raw !== null) {
    // Own keys only: a `__proto__` key set the object's prototype and is not one of them.
    const dict = new Map<string, NgValue>();
    for (const [key, item] of Object.entries(raw)) {
      const value = toNgValue(item, depth + 1);
      if (value === undefined) return undefined;
      dict.set(key, value);
    }
    return dict;
  }
  // The package yields only the four kinds above; anything else is treated as an empty string.
  return new Uint8Array(0);
}

/** Encodes a reply dictionary (keys sorted, as bencode requires). */
export function encodeBencode(value: NgOut): Buffer {
  const bytes = bencode.encode(value);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** True for a decoded dictionary. */
export function isDict(value: NgValue | undefined): value is NgDict {
  return value instanceof Map;
}

/** A byte string as text: latin1, so that every byte survives a round trip. */
export function bytesText(value: NgValue | undefined): string | undefined {
  return value instanceof Uint8Array ? Buffer.from(value).toString('latin1') : undefined;
}
