/**
 * Test-side pcap reader and checksum verifier, written independently of src/record/pcap.ts so the
 * tests do not check the encoder against itself.
 */
import { existsSync, readFileSync } from 'node:fs';

/** RFC 1071: the 16-bit ones'-complement sum of big-endian words (odd byte padded with zero). */
function internetSum(...parts: Buffer[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) {
    const hi = all[i] ?? 0;
    const lo = i + 1 < all.length ? (all[i + 1] ?? 0) : 0;
    sum += hi * 256 + lo;
    sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  }
  return sum;
}

/** True when data that includes its own checksum field sums to 0xffff (RFC 1071 verification). */
export function checksumVerifies(...parts: Buffer[]): boolean {
  return internetSum(...parts) === 0xffff;
}

export interface PcapGlobal {
  readonly magic: number;
  readonly major: number;
  readonly minor: number;
  readonly zone: number;
  readonly sigfigs: number;
  readonly snaplen: number;
  readonly linktype: number;
}

export interface DecodedRecord {
  readonly sec: number;
  readonly usec: number;
  readonly inclLen: number;
  readonly origLen: number;
  readonly dstMac: Buffer;
  readonly srcMac: Buffer;
  readonly ethertype: number;
  readonly family: 4 | 6;
  readonly src: Buffer;
  readonly dst: Buffer;
  /** IPv4: TTL; IPv6: hop limit. */
  readonly ttl: number;
  /** IPv4 identification; -1 for IPv6. */
  readonly ipId: number;
  readonly protocol: number;
  readonly ipLength: number;
  readonly ipChecksumOk: boolean;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly udpLength: number;
  readonly udpChecksum: number;
  readonly udpChecksumOk: boolean;
  readonly payload: Buffer;
}

/** Decodes one record (16-byte record header + Ethernet + IPv4/IPv6 + UDP + payload) at `buf[0]`. */
export function decodeRecord(buf: Buffer): DecodedRecord {
  const sec = buf.readUInt32LE(0);
  const usec = buf.readUInt32LE(4);
  const inclLen = buf.readUInt32LE(8);
  const origLen = buf.readUInt32LE(12);
  const frame = buf.subarray(16, 16 + inclLen);
  if (frame.length !== inclLen) throw new Error('truncated record');
  const dstMac = frame.subarray(0, 6);
  const srcMac = frame.subarray(6, 12);
  const ethertype = frame.readUInt16BE(12);
  const ip = frame.subarray(14);
  let family: 4 | 6;
  let src: Buffer;
  let dst: Buffer;
  let ttl: number;
  let ipId: number;
  let protocol: number;
  let ipLength: number;
  let ipChecksumOk: boolean;
  let udp: Buffer;
  let pseudo: Buffer;
  if (ethertype === 0x0800) {
    family = 4;
    if (ip.readUInt8(0) !== 0x45) throw new Error('not IPv4 IHL 5');
    ipLength = ip.readUInt16BE(2);
    ipId = ip.readUInt16BE(4);
    ttl = ip.readUInt8(8);
    protocol = ip.readUInt8(9);
    src = ip.subarray(12, 16);
    dst = ip.subarray(16, 20);
    ipChecksumOk = checksumVerifies(ip.subarray(0, 20));
    udp = ip.subarray(20);
    const len = Buffer.alloc(4);
    len.writeUInt16BE(protocol, 0);
    len.writeUInt16BE(udp.length, 2);
    pseudo = Buffer.concat([src, dst, len]);
  } else if (ethertype === 0x86dd) {
    family = 6;
    if (ip.readUInt8(0) >> 4 !== 6) throw new Error('not IPv6');
    ipLength = ip.readUInt16BE(4);
    protocol = ip.readUInt8(6);
    ttl = ip.readUInt8(7);
    ipId = -1;
    src = ip.subarray(8, 24);
    dst = ip.subarray(24, 40);
    ipChecksumOk = true; // IPv6 has no header checksum
    udp = ip.subarray(40);
    const tail = Buffer.alloc(8);
    tail.writeUInt32BE(udp.length, 0);
    tail.writeUInt8(protocol, 7);
    pseudo = Buffer.concat([src, dst, tail]);
  } else {
    throw new Error(`unexpected ethertype ${ethertype.toString(16)}`);
  }
  return {
    sec,
    usec,
    inclLen,
    origLen,
    dstMac,
    srcMac,
    ethertype,
    family,
    src,
    dst,
    ttl,
    ipId,
    protocol,
    ipLength,
    ipChecksumOk,
    srcPort: udp.readUInt16BE(0),
    dstPort: udp.readUInt16BE(2),
    udpLength: udp.readUInt16BE(4),
    udpChecksum: udp.readUInt16BE(6),
    udpChecksumOk: checksumVerifies(pseudo, udp),
    payload: udp.subarray(8),
  };
}

/** Splits a whole little-endian pcap file into its global header and decoded records. */
export function readPcapFile(file: Buffer): { global: PcapGlobal; records: DecodedRecord[] } {
  const global: PcapGlobal = {
    magic: file.readUInt32LE(0),
    major: file.readUInt16LE(4),
    minor: file.readUInt16LE(6),
    zone: file.readInt32LE(8),
    sigfigs: file.readUInt32LE(12),
    snaplen: file.readUInt32LE(16),
    linktype: file.readUInt32LE(20),
  };
  const records: DecodedRecord[] = [];
  let at = 24;
  while (at < file.length) {
    const incl = file.readUInt32LE(at + 8);
    records.push(decodeRecord(file.subarray(at, at + 16 + incl)));
    at += 16 + incl;
  }
  if (at !== file.length) throw new Error('trailing bytes');
  return { global, records };
}

/**
 * Records in the pcap file at `path` so far: 0 while it is missing or its header is still being
 * written, and while a record is only partly written (a file the daemon is writing).
 */
export function pcapRecordsSoFar(path: string): number {
  if (!existsSync(path)) return 0;
  try {
    return readPcapFile(readFileSync(path)).records.length;
  } catch {
    return 0;
  }
}
