/**
 * Numeric IP address text -> network-order bytes, written straight into a caller's buffer so the
 * recording encoders allocate nothing per address. Pure (no `node:net`, so `pcap.ts` stays free of
 * I/O modules): every function returns `false`/`undefined` for text it does not understand and
 * never throws (style.md P15).
 */
import type { Family } from '../base/net.ts';

/** Bytes of an IPv4 address. */
export const IPV4_ADDRESS_SIZE = 4;
/** Bytes of an IPv6 address. */
export const IPV6_ADDRESS_SIZE = 16;

const MAX_IPV4_PART = 255;
const MAX_IPV6_GROUP = 0xffff;
const IPV6_GROUPS = 8;
/** `::ffff:0:0/96`, RFC 4291 section 2.5.5.2: how a dual-stack socket reports an IPv4 peer. */
const MAPPED_PREFIX = '::ffff:';

const CHAR_0 = 0x30;
const CHAR_9 = 0x39;

/** Value of a decimal octet of 1..3 digits, or -1. */
function decimalOctet(text: string, start: number, end: number): number {
  const len = end - start;
  if (len < 1 || len > 3) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < CHAR_0 || c > CHAR_9) return -1;
    value = value * 10 + (c - CHAR_0);
  }
  return value > MAX_IPV4_PART ? -1 : value;
}

/**
 * Writes dotted-quad `text` as 4 bytes at `buf[offset]`. Returns false (and may have written part
 * of the bytes) when `text` is not a dotted quad or the buffer is too short.
 */
function writeIPv4(text: string, buf: Buffer, offset: number): boolean {
  if (offset < 0 || buf.length < offset + IPV4_ADDRESS_SIZE) return false;
  let start = 0;
  for (let part = 0; part < IPV4_ADDRESS_SIZE; part++) {
    let end = text.indexOf('.', start);
    if (part === IPV4_ADDRESS_SIZE - 1) {
      if (end !== -1) return false;
      end = text.length;
    } else if (end === -1) {
      return false;
    }
    const value = decimalOctet(text, start, end);
    if (value < 0) return false;
    buf[offset + part] = value;
    start = end + 1;
  }
  return true;
}

/** Value of a hex group of 1..4 digits, or -1. */
function hexGroup(text: string): number {
  if (text.length < 1 || text.length > 4) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const d = parseInt(text.charAt(i), 16);
    if (Number.isNaN(d)) return -1;
    value = value * 16 + d;
  }
  return value > MAX_IPV6_GROUP ? -1 : value;
}

/** Groups of one side of `::` as 16-bit values, or undefined. A trailing dotted quad counts as two. */
function ipv6Groups(text: string, allowDottedTail: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (allowDottedTail && i === parts.length - 1 && part.includes('.')) {
      const quad = Buffer.alloc(IPV4_ADDRESS_SIZE);
      if (!writeIPv4(part, quad, 0)) return undefined;
      groups.push(quad.readUInt16BE(0), quad.readUInt16BE(2));
      continue;
    }
    const value = hexGroup(part);
    if (value < 0) return undefined;
    groups.push(value);
  }
  return groups;
}

/**
 * Writes IPv6 `text` (RFC 4291 section 2.2 text forms: full, `::`-compressed, trailing dotted
 * quad; a `%zone` suffix is ignored) as 16 bytes at `buf[offset]`. Returns false for anything
 * else or when the buffer is too short.
 */
function writeIPv6(text: string, buf: Buffer, offset: number): boolean {
  if (offset < 0 || buf.length < offset + IPV6_ADDRESS_SIZE) return false;
  const zone = text.indexOf('%');
  const addr = zone === -1 ? text : text.slice(0, zone);
  const gap = addr.indexOf('::');
  let groups: number[];
  if (gap === -1) {
    const all = ipv6Groups(addr, true);
    if (all?.length !== IPV6_GROUPS) return false;
    groups = all;
  } else {
    if (addr.includes('::', gap + 1)) return false;
    const head = ipv6Groups(addr.slice(0, gap), false);
    const tail = ipv6Groups(addr.slice(gap + 2), true);
    if (head === undefined || tail === undefined) return false;
    const missing = IPV6_GROUPS - head.length - tail.length;
    if (missing < 1) return false;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  }
  for (let i = 0; i < IPV6_GROUPS; i++) buf.writeUInt16BE(groups[i] ?? 0, offset + 2 * i);
  return true;
}

/**
 * Writes `text` as an address of `family` at `buf[offset]` (4 or 16 bytes). Accepts the forms a
 * dual-stack socket reports: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) for family 4, and a
 * dotted quad for family 6 (written as the mapped IPv6 address). False when not representable.
 */
export function writeAddress(text: string, family: Family, buf: Buffer, offset: number): boolean {
  const dotted = text.includes('.');
  if (family === 4) {
    if (dotted && text.toLowerCase().startsWith(MAPPED_PREFIX)) {
      return writeIPv4(text.slice(MAPPED_PREFIX.length), buf, offset);
    }
    return writeIPv4(text, buf, offset);
  }
  if (dotted && !text.includes(':')) return writeIPv6(MAPPED_PREFIX + text, buf, offset);
  return writeIPv6(text, buf, offset);
}

/** `text` as a fresh 4- or 16-byte Buffer for `family`, or undefined (see {@link writeAddress}). */
export function addressBytes(text: string, family: Family): Buffer | undefined {
  const buf = Buffer.alloc(family === 4 ? IPV4_ADDRESS_SIZE : IPV6_ADDRESS_SIZE);
  return writeAddress(text, family, buf, 0) ? buf : undefined;
}
