/**
 * Encoders for the `-P` recording format (docs/protocol.md 6.5): a classic libpcap file
 * (https://wiki.wireshark.org/Development/LibpcapFileFormat) of Ethernet frames carrying a
 * synthetic IPv4 or IPv6 + UDP header in front of each recorded RTP/RTCP packet. Pure: no I/O;
 * encoders return `undefined` instead of throwing on input they cannot represent (style.md P15).
 *
 * Byte order. The pcap global and record headers are in the *writer's host* byte order; readers
 * detect it from the magic number (`d4 c3 b2 a1` = little-endian). The reference writes its C
 * structs as they are in memory, i.e. little-endian on the x86-64 and arm64 Linux hosts it runs on.
 * We always write little-endian (`writeUInt32LE`): the files then match the reference byte for byte
 * on those hosts and are valid pcap everywhere, whatever the CPU. Everything inside the frame
 * (Ethernet, IP, UDP) is network byte order (big-endian), as on the wire.
 *
 * The packet is never copied into the prefix: the writer writes the prefix and the packet as two
 * chunks (style.md P17). The UDP checksum is computed over the packet in place.
 */

import { IPV4_ADDRESS_SIZE, IPV6_ADDRESS_SIZE, writeAddress } from './ip-bytes.ts';
import type { Endpoint, IpFamily } from './record-types.ts';

/** pcap magic number, microsecond timestamps. */
export const PCAP_MAGIC = 0xa1b2c3d4;
const PCAP_VERSION_MAJOR = 2;
const PCAP_VERSION_MINOR = 4;
const PCAP_SNAPLEN = 65535;
/** LINKTYPE_ETHERNET (DLT_EN10MB). */
export const PCAP_LINKTYPE_ETHERNET = 1;

export const PCAP_GLOBAL_HEADER_SIZE = 24;
export const PCAP_RECORD_HEADER_SIZE = 16;
export const ETHERNET_HEADER_SIZE = 14;
const IPV4_HEADER_SIZE = 20;
export const IPV6_HEADER_SIZE = 40;
export const UDP_HEADER_SIZE = 8;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
export const IP_PROTOCOL_UDP = 17;
/** TTL of the synthetic IPv4 header (the reference's value). */
const IPV4_TTL = 127;
/** Hop limit of the synthetic IPv6 header (the reference's value). */
const IPV6_HOP_LIMIT = 64;

/** Largest packet an IPv4 record can carry: total length is 16 bits (65535 - 20 - 8). */
const MAX_IPV4_PAYLOAD = 0xffff - IPV4_HEADER_SIZE - UDP_HEADER_SIZE;
/** Largest packet an IPv6 record can carry: payload length and UDP length are 16 bits. */
const MAX_IPV6_PAYLOAD = 0xffff - UDP_HEADER_SIZE;

/** Prefix bytes (record header + Ethernet + IP + UDP) of an IPv4 record: 58. */
export const PCAP_IPV4_PREFIX_SIZE =
  PCAP_RECORD_HEADER_SIZE + ETHERNET_HEADER_SIZE + IPV4_HEADER_SIZE + UDP_HEADER_SIZE;
/** Prefix bytes (record header + Ethernet + IP + UDP) of an IPv6 record: 78. */
export const PCAP_IPV6_PREFIX_SIZE =
  PCAP_RECORD_HEADER_SIZE + ETHERNET_HEADER_SIZE + IPV6_HEADER_SIZE + UDP_HEADER_SIZE;

/*
 * Global header (24 bytes, host order = little-endian here):
 *   0 magic 0xa1b2c3d4 | 4 version_major 2 | 6 version_minor 4 | 8 thiszone 0 |
 *  12 sigfigs 0        | 16 snaplen 65535   | 20 network 1 (Ethernet)
 */
const GH_MAGIC = 0;
const GH_MAJOR = 4;
const GH_MINOR = 6;
const GH_SNAPLEN = 16;
const GH_NETWORK = 20;

/** The 24-byte pcap global header every `-P` file starts with. */
export function pcapGlobalHeader(): Buffer {
  const buf = Buffer.alloc(PCAP_GLOBAL_HEADER_SIZE); // zone (8) and sigfigs (12) stay 0
  buf.writeUInt32LE(PCAP_MAGIC, GH_MAGIC);
  buf.writeUInt16LE(PCAP_VERSION_MAJOR, GH_MAJOR);
  buf.writeUInt16LE(PCAP_VERSION_MINOR, GH_MINOR);
  buf.writeUInt32LE(PCAP_SNAPLEN, GH_SNAPLEN);
  buf.writeUInt32LE(PCAP_LINKTYPE_ETHERNET, GH_NETWORK);
  return buf;
}

/*
 * Record header (16 bytes, host order): 0 ts_sec | 4 ts_usec | 8 incl_len | 12 orig_len.
 * Both lengths cover everything after the record header (Ethernet + IP + UDP + packet).
 */
const RH_SEC = 0;
const RH_USEC = 4;
const RH_INCL = 8;
const RH_ORIG = 12;

/*
 * Ethernet II header (14 bytes): 0 destination MAC | 6 source MAC | 12 ethertype (BE).
 * The MACs are made up from the IP addresses so that tools show distinct hosts (6.5):
 *   IPv4: 00:00:a:b:c:d
 *   IPv6: bytes 0..5 of the address, then address byte i (6..15) XOR-ed into MAC byte i % 6.
 */
const ETH_DST = 0;
const ETH_SRC = 6;
const ETH_TYPE = 12;
const MAC_SIZE = 6;

/*
 * RFC 791 section 3.1, IPv4 header (20 bytes, no options):
 *  0 version 4 | IHL 5 | 1 TOS 0 | 2 total length | 4 identification | 6 flags+fragment 0 |
 *  8 TTL 127 | 9 protocol 17 | 10 header checksum | 12 source | 16 destination
 */
const V4_VER_IHL = 0;
const V4_VER_IHL_VALUE = 0x45;
const V4_TOTAL_LENGTH = 2;
const V4_ID = 4;
const V4_TTL = 8;
const V4_PROTOCOL = 9;
const V4_CHECKSUM = 10;
const V4_SRC = 12;
const V4_DST = 16;

/*
 * RFC 8200 section 3, IPv6 header (40 bytes):
 *  0 version 6 | traffic class 0 | flow label 0 (4 bytes) | 4 payload length | 6 next header 17 |
 *  7 hop limit 64 | 8 source (16) | 24 destination (16)
 */
const V6_VER_TC_FLOW = 0;
const V6_VER_TC_FLOW_VALUE = 0x60000000;
const V6_PAYLOAD_LENGTH = 4;
const V6_NEXT_HEADER = 6;
const V6_HOP_LIMIT = 7;
const V6_SRC = 8;
const V6_DST = 24;

/*
 * RFC 768, UDP header (8 bytes): 0 source port | 2 destination port | 4 length | 6 checksum.
 * The checksum covers a pseudo-header (RFC 768 for IPv4: src, dst, 0, 17, UDP length; RFC 8200
 * section 8.1 for IPv6: src, dst, 32-bit length, 3 zero bytes, 17), the UDP header and the data.
 * A computed 0 is sent as 0xffff (0 means "no checksum", which IPv6 forbids).
 */
const UDP_SRC_PORT = 0;
const UDP_DST_PORT = 2;
const UDP_LENGTH = 4;
const UDP_CHECKSUM = 6;

const MAX_PORT = 0xffff;
const USEC_PER_MS = 1000;
const MS_PER_SEC = 1000;
const MAX_USEC = 999_999;
const MAX_UINT32 = 0xffffffff;

/**
 * Adds the 16-bit big-endian words of `buf[start..end)` to a ones'-complement running `sum`
 * (RFC 1071); an odd last byte is padded with a zero byte. Returns the unfolded sum.
 */
function onesComplementSum(buf: Buffer, start: number, end: number, sum = 0): number {
  let i = start;
  let s = sum;
  for (; i + 1 < end; i += 2) s += buf.readUInt16BE(i);
  if (i < end) s += buf.readUInt8(i) << 8;
  // Fold often enough that the sum stays an exact small integer (packets are < 64 KiB anyway).
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Folds a running sum to 16 bits and complements it: the Internet checksum (RFC 1071). */
function finishChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= MAX_PORT;
}

/** Splits wall-clock milliseconds into pcap seconds and microseconds (clamped to uint32 range). */
function splitTime(wallMs: number): [sec: number, usec: number] {
  if (!Number.isFinite(wallMs) || wallMs <= 0) return [0, 0];
  const sec = Math.floor(wallMs / MS_PER_SEC);
  if (sec > MAX_UINT32) return [MAX_UINT32, MAX_USEC];
  const usec = Math.min(
    MAX_USEC,
    Math.max(0, Math.floor((wallMs - sec * MS_PER_SEC) * USEC_PER_MS)),
  );
  return [sec, usec];
}

/**
 * The record prefix of one packet: 16-byte record header, fake Ethernet header, IPv4 (20 bytes)
 * or IPv6 (40 bytes) header and UDP header — 58 or 78 bytes. The caller writes the packet itself
 * right after it. `src`/`dst` are the addresses shown in the capture (6.5: normally the sending
 * party and the relay's receiving local address; the caller picks them). `ipId` is the IPv4
 * identification (taken modulo 2^16; ignored for IPv6). Addresses may be given in the other
 * family's mapped form (`::ffff:a.b.c.d` for family 4, a dotted quad for family 6).
 *
 * Returns `undefined` when an address is not a numeric address of `family`, a port is out of
 * range, or the packet is too long for a 16-bit IP/UDP length field.
 */
export function pcapRecordPrefix(
  packet: Buffer,
  src: Endpoint,
  dst: Endpoint,
  family: IpFamily,
  wallMs: number,
  ipId: number,
): Buffer | undefined {
  if (!validPort(src.port) || !validPort(dst.port)) return undefined;
  const v4 = family === 4;
  if (packet.length > (v4 ? MAX_IPV4_PAYLOAD : MAX_IPV6_PAYLOAD)) return undefined;
  const ipHeaderSize = v4 ? IPV4_HEADER_SIZE : IPV6_HEADER_SIZE;
  const buf = Buffer.alloc(v4 ? PCAP_IPV4_PREFIX_SIZE : PCAP_IPV6_PREFIX_SIZE);
  const eth = PCAP_RECORD_HEADER_SIZE;
  const ip = eth + ETHERNET_HEADER_SIZE;
  const udp = ip + ipHeaderSize;
  const udpLength = UDP_HEADER_SIZE + packet.length;

  // Addresses first: they are the only inputs that can still fail.
  const srcAt = ip + (v4 ? V4_SRC : V6_SRC);
  const dstAt = ip + (v4 ? V4_DST : V6_DST);
  const addrSize = v4 ? IPV4_ADDRESS_SIZE : IPV6_ADDRESS_SIZE;
  if (!writeAddress(src.address, family, buf, srcAt)) return undefined;
  if (!writeAddress(dst.address, family, buf, dstAt)) return undefined;

  // Record header.
  const [sec, usec] = splitTime(wallMs);
  const captured = buf.length - PCAP_RECORD_HEADER_SIZE + packet.length;
  buf.writeUInt32LE(sec, RH_SEC);
  buf.writeUInt32LE(usec, RH_USEC);
  buf.writeUInt32LE(captured, RH_INCL);
  buf.writeUInt32LE(captured, RH_ORIG);

  // Ethernet header.
  writeFakeMac(buf, dstAt, addrSize, eth + ETH_DST);
  writeFakeMac(buf, srcAt, addrSize, eth + ETH_SRC);
  buf.writeUInt16BE(v4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6, eth + ETH_TYPE);

  // IP header; the pseudo-header sum for UDP is accumulated on the way.
  let pseudo = onesComplementSum(buf, srcAt, srcAt + addrSize);
  pseudo = onesComplementSum(buf, dstAt, dstAt + addrSize, pseudo);
  pseudo += IP_PROTOCOL_UDP + udpLength; // v4: 0|17 + length; v6: 32-bit length (< 2^16) + 0,0,0|17
  if (v4) {
    buf.writeUInt8(V4_VER_IHL_VALUE, ip + V4_VER_IHL);
    buf.writeUInt16BE(IPV4_HEADER_SIZE + udpLength, ip + V4_TOTAL_LENGTH);
    buf.writeUInt16BE(ipId & 0xffff, ip + V4_ID);
    buf.writeUInt8(IPV4_TTL, ip + V4_TTL);
    buf.writeUInt8(IP_PROTOCOL_UDP, ip + V4_PROTOCOL);
    buf.writeUInt16BE(
      finishChecksum(onesComplementSum(buf, ip, ip + IPV4_HEADER_SIZE)),
      ip + V4_CHECKSUM,
    );
  } else {
    buf.writeUInt32BE(V6_VER_TC_FLOW_VALUE, ip + V6_VER_TC_FLOW);
    buf.writeUInt16BE(udpLength, ip + V6_PAYLOAD_LENGTH);
    buf.writeUInt8(IP_PROTOCOL_UDP, ip + V6_NEXT_HEADER);
    buf.writeUInt8(IPV6_HOP_LIMIT, ip + V6_HOP_LIMIT);
  }

  // UDP header and checksum (checksum field is still 0 while summing).
  buf.writeUInt16BE(src.port, udp + UDP_SRC_PORT);
  buf.writeUInt16BE(dst.port, udp + UDP_DST_PORT);
  buf.writeUInt16BE(udpLength, udp + UDP_LENGTH);
  let sum = onesComplementSum(buf, udp, udp + UDP_HEADER_SIZE, pseudo);
  sum = onesComplementSum(packet, 0, packet.length, sum);
  const checksum = finishChecksum(sum);
  buf.writeUInt16BE(checksum === 0 ? 0xffff : checksum, udp + UDP_CHECKSUM);
  return buf;
}

/** Writes the made-up MAC of the address at `buf[addrAt..addrAt+addrSize)` to `buf[macAt]`. */
function writeFakeMac(buf: Buffer, addrAt: number, addrSize: number, macAt: number): void {
  if (addrSize === IPV4_ADDRESS_SIZE) {
    // 00:00 then the four address bytes (the buffer is zero-filled).
    buf.copy(buf, macAt + 2, addrAt, addrAt + IPV4_ADDRESS_SIZE);
    return;
  }
  buf.copy(buf, macAt, addrAt, addrAt + MAC_SIZE);
  for (let i = MAC_SIZE; i < addrSize; i++) {
    const at = macAt + (i % MAC_SIZE);
    buf.writeUInt8(buf.readUInt8(at) ^ buf.readUInt8(addrAt + i), at);
  }
}
