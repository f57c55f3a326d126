/**
 * The default ("ad-hoc") recording format (docs/protocol.md 6.4): no file header, one
 * record per packet = a 30-byte header followed by the packet exactly as received. The header is
 * the reference's in-memory C struct on a little-endian Linux host:
 *
 *   offset size field
 *        0    2 address family of the sender, little-endian (2 = AF_INET, 10 = AF_INET6)
 *        2    2 sender UDP port, big-endian (a sockaddr's sin_port)
 *        4   16 sender address: IPv4 in bytes 4..7 and zeros after, or the IPv6 address
 *       20    8 arrival time, IEEE-754 double, little-endian, seconds since the Unix epoch
 *       28    2 length of the following packet, little-endian
 *       30    n the packet
 *
 * Pure: encoders return `undefined` rather than throw on unrepresentable input (style.md P15).
 */

import { IPV4_ADDRESS_SIZE, IPV6_ADDRESS_SIZE, writeAddress } from './ip-bytes.ts';
import type { Endpoint, IpFamily } from './record-types.ts';
import type { Family } from '../base/net.ts';

/** Size of an ad-hoc record header. */
export const ADHOC_HEADER_SIZE = 30;

/** Linux `AF_INET`, as stored in the family field. */
const ADHOC_AF_INET = 2;
/** Linux `AF_INET6`, as stored in the family field. */
const ADHOC_AF_INET6 = 10;

/** Largest packet length the 16-bit length field can hold. */
const ADHOC_MAX_PACKET = 0xffff;

const OFF_FAMILY = 0;
const OFF_PORT = 2;
const OFF_ADDRESS = 4;
const OFF_TIME = 20;
const OFF_LENGTH = 28;
const MAX_PORT = 0xffff;
const MS_PER_SEC = 1000;

/**
 * The 30-byte header of one record: `from` is the sending party (address and port the packet
 * came from), `wallMs` its wall-clock arrival time in milliseconds since the epoch, `length` the
 * packet's length. `undefined` when the address is not a numeric address of `family` (mapped
 * forms accepted, see ip-bytes.ts), the port is out of range or the length does not fit 16 bits.
 */
export function adhocRecordHeader(
  from: Endpoint,
  family: IpFamily,
  wallMs: number,
  length: number,
): Buffer | undefined {
  if (!Number.isInteger(from.port) || from.port < 0 || from.port > MAX_PORT) return undefined;
  if (!Number.isInteger(length) || length < 0 || length > ADHOC_MAX_PACKET) return undefined;
  const buf = Buffer.alloc(ADHOC_HEADER_SIZE); // address padding stays zero
  if (!writeAddress(from.address, family, buf, OFF_ADDRESS)) return undefined;
  buf.writeUInt16LE(family === 4 ? ADHOC_AF_INET : ADHOC_AF_INET6, OFF_FAMILY);
  buf.writeUInt16BE(from.port, OFF_PORT);
  buf.writeDoubleLE(Number.isFinite(wallMs) ? wallMs / MS_PER_SEC : 0, OFF_TIME);
  buf.writeUInt16LE(length, OFF_LENGTH);
  return buf;
}

/** Fields of a parsed ad-hoc record header. */
export interface AdhocHeaderView {
  readonly family: Family;
  readonly port: number;
  /** The sender address bytes: 4 for IPv4, 16 for IPv6 (a view into the parsed buffer). */
  readonly address: Buffer;
  /** Arrival time, seconds since the Unix epoch. */
  readonly time: number;
  /** Length of the packet that follows the header. */
  readonly length: number;
  /** Offset of the packet in the parsed buffer. */
  readonly packetOffset: number;
}

/**
 * Reads the record header at `buf[offset]`; `undefined` when fewer than 30 bytes remain, the
 * family is neither 2 nor 10 (the BSD layout, one family byte after a length byte, is not read),
 * or the announced packet runs past the buffer.
 */
export function readAdhocHeader(buf: Buffer, offset = 0): AdhocHeaderView | undefined {
  if (offset < 0 || buf.length < offset + ADHOC_HEADER_SIZE) return undefined;
  const af = buf.readUInt16LE(offset + OFF_FAMILY);
  if (af !== ADHOC_AF_INET && af !== ADHOC_AF_INET6) return undefined;
  const length = buf.readUInt16LE(offset + OFF_LENGTH);
  const packetOffset = offset + ADHOC_HEADER_SIZE;
  if (buf.length < packetOffset + length) return undefined;
  const addrAt = offset + OFF_ADDRESS;
  const v4 = af === ADHOC_AF_INET;
  return {
    family: v4 ? 4 : 6,
    port: buf.readUInt16BE(offset + OFF_PORT),
    address: buf.subarray(addrAt, addrAt + (v4 ? IPV4_ADDRESS_SIZE : IPV6_ADDRESS_SIZE)),
    time: buf.readDoubleLE(offset + OFF_TIME),
    length,
    packetOffset,
  };
}
