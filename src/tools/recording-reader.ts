/**
 * Reads recordings back for `rtpproxy-extract` (docs/recording.md): the ad-hoc format
 * (docs/protocol.md 6.4, read with {@link readAdhocHeader}) and pcap files (6.5, and captures from
 * other tools: Ethernet, raw IP or Linux cooked link types, either byte order, micro- or
 * nanosecond timestamps). Pure: bytes in, packets or a readable problem out; never throws on
 * input. A record cut short at the end of a file (a recording stopped by a full disk) ends the
 * packets with a warning instead of failing.
 */
import { readAdhocHeader } from '../record/adhoc.ts';
import {
  ETHERNET_HEADER_SIZE,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IP_PROTOCOL_UDP,
  IPV6_HEADER_SIZE,
  PCAP_GLOBAL_HEADER_SIZE,
  PCAP_LINKTYPE_ETHERNET,
  PCAP_MAGIC,
  PCAP_RECORD_HEADER_SIZE,
  UDP_HEADER_SIZE,
} from '../record/pcap.ts';

/** One UDP payload from a recording, with where it came from and went to. */
export interface RecordedPacket {
  /** Arrival time, seconds since the Unix epoch. */
  readonly time: number;
  /** Sender `address:port` as text (`[v6]:port` for IPv6). */
  readonly source: string;
  /** Receiver `address:port`; empty for ad-hoc files, which do not store it. */
  readonly destination: string;
  readonly payload: Buffer;
}

export type RecordingReadResult =
  | {
      readonly ok: true;
      readonly format: 'adhoc' | 'pcap';
      readonly packets: readonly RecordedPacket[];
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly error: string };

const PCAP_MAGIC_NS = 0xa1b23c4d;
/* Global header: magic(4) major(2) minor(2) zone(4) sigfigs(4) snaplen(4) linktype(4). */
const OFF_LINKTYPE = 20;
/* Record header: seconds(4) fraction(4) captured length(4) original length(4). */
const OFF_REC_FRACTION = 4;
const OFF_REC_CAPLEN = 8;

const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const SLL_HEADER = 16;
const ETHERTYPE_VLAN = 0x8100;

function ipv4Text(buf: Buffer, at: number): string {
  return `${String(buf[at])}.${String(buf[at + 1])}.${String(buf[at + 2])}.${String(buf[at + 3])}`;
}

function ipv6Text(buf: Buffer, at: number): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(buf.readUInt16BE(at + i).toString(16));
  return words.join(':');
}

/** Reads an ad-hoc recording (docs/protocol.md 6.4). */
function readAdhocRecording(bytes: Buffer): RecordingReadResult {
  const packets: RecordedPacket[] = [];
  const warnings: string[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const h = readAdhocHeader(bytes, offset);
    if (h === undefined) {
      if (packets.length === 0) {
        return { ok: false, error: 'not a recording: neither a pcap file nor the ad-hoc format' };
      }
      warnings.push(
        `${String(bytes.length - offset)} bytes at offset ${String(offset)} are not a complete record: ignored`,
      );
      break;
    }
    const address = h.family === 4 ? ipv4Text(h.address, 0) : `[${ipv6Text(h.address, 0)}]`;
    packets.push({
      time: h.time,
      source: `${address}:${String(h.port)}`,
      destination: '',
      payload: bytes.subarray(h.packetOffset, h.packetOffset + h.length),
    });
    offset = h.packetOffset + h.length;
  }
  return { ok: true, format: 'adhoc', packets, warnings };
}

/** The IP packet of a frame: offset of the IP header and the EtherType, or undefined. */
function ipOf(frame: Buffer, linktype: number): { at: number; type: number } | undefined {
  if (linktype === LINKTYPE_RAW) {
    if (frame.length < 1) return undefined;
    const version = (frame[0] ?? 0) >> 4;
    return { at: 0, type: version === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4 };
  }
  let at = linktype === PCAP_LINKTYPE_ETHERNET ? ETHERNET_HEADER_SIZE : SLL_HEADER;
  if (frame.length < at) return undefined;
  let type = frame.readUInt16BE(at - 2);
  while (type === ETHERTYPE_VLAN && frame.length >= at + 4) {
    type = frame.readUInt16BE(at + 2);
    at += 4;
  }
  return { at, type };
}

/** The UDP datagram in a frame, or undefined for anything else (ARP, TCP, fragments, garbage). */
function udpOf(
  frame: Buffer,
  linktype: number,
): { source: string; destination: string; payload: Buffer } | undefined {
  const ip = ipOf(frame, linktype);
  if (ip === undefined) return undefined;
  let udp: number;
  let src: string;
  let dst: string;
  if (ip.type === ETHERTYPE_IPV4) {
    if (frame.length < ip.at + 20) return undefined;
    const b0 = frame[ip.at] ?? 0;
    const ihl = (b0 & 0x0f) * 4;
    if (b0 >> 4 !== 4 || ihl < 20 || frame[ip.at + 9] !== IP_PROTOCOL_UDP) return undefined;
    // A non-first fragment, or more fragments: skip (recordings never fragment).
    if ((frame.readUInt16BE(ip.at + 6) & 0x3fff) !== 0) return undefined;
    src = ipv4Text(frame, ip.at + 12);
    dst = ipv4Text(frame, ip.at + 16);
    udp = ip.at + ihl;
  } else if (ip.type === ETHERTYPE_IPV6) {
    if (frame.length < ip.at + IPV6_HEADER_SIZE || frame[ip.at + 6] !== IP_PROTOCOL_UDP) {
      return undefined;
    }
    src = `[${ipv6Text(frame, ip.at + 8)}]`;
    dst = `[${ipv6Text(frame, ip.at + 24)}]`;
    udp = ip.at + IPV6_HEADER_SIZE;
  } else return undefined;
  if (frame.length < udp + UDP_HEADER_SIZE) return undefined;
  const udpLength = frame.readUInt16BE(udp + 4);
  if (udpLength < UDP_HEADER_SIZE || frame.length < udp + udpLength) return undefined;
  return {
    source: `${src}:${String(frame.readUInt16BE(udp))}`,
    destination: `${dst}:${String(frame.readUInt16BE(udp + 2))}`,
    payload: frame.subarray(udp + UDP_HEADER_SIZE, udp + udpLength),
  };
}

/** Reads a pcap file (either byte order, micro- or nanosecond); UDP packets only. */
function readPcapRecording(bytes: Buffer): RecordingReadResult {
  if (bytes.length < PCAP_GLOBAL_HEADER_SIZE) {
    return { ok: false, error: 'truncated pcap global header' };
  }
  const magicLe = bytes.readUInt32LE(0);
  const magicBe = bytes.readUInt32BE(0);
  const le = magicLe === PCAP_MAGIC || magicLe === PCAP_MAGIC_NS;
  const magic = le ? magicLe : magicBe;
  if (magic !== PCAP_MAGIC && magic !== PCAP_MAGIC_NS) {
    return { ok: false, error: 'not a pcap file' };
  }
  const u32 = (at: number): number => (le ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
  const linktype = u32(OFF_LINKTYPE);
  if (
    linktype !== PCAP_LINKTYPE_ETHERNET &&
    linktype !== LINKTYPE_RAW &&
    linktype !== LINKTYPE_LINUX_SLL
  ) {
    return {
      ok: false,
      error: `unsupported pcap link type ${String(linktype)} (Ethernet, raw IP and Linux cooked are read)`,
    };
  }
  const fractionScale = magic === PCAP_MAGIC_NS ? 1e9 : 1e6;
  const packets: RecordedPacket[] = [];
  const warnings: string[] = [];
  let skipped = 0;
  let offset = PCAP_GLOBAL_HEADER_SIZE;
  while (offset < bytes.length) {
    if (bytes.length < offset + PCAP_RECORD_HEADER_SIZE) {
      warnings.push(`truncated pcap record header at offset ${String(offset)}: ignored`);
      break;
    }
    const capLen = u32(offset + OFF_REC_CAPLEN);
    const start = offset + PCAP_RECORD_HEADER_SIZE;
    if (bytes.length < start + capLen) {
      warnings.push(`truncated pcap record at offset ${String(offset)}: ignored`);
      break;
    }
    const time = u32(offset) + u32(offset + OFF_REC_FRACTION) / fractionScale;
    const udp = udpOf(bytes.subarray(start, start + capLen), linktype);
    if (udp === undefined) skipped += 1;
    else packets.push({ time, ...udp });
    offset = start + capLen;
  }
  if (skipped > 0) warnings.push(`${String(skipped)} records that are not UDP were skipped`);
  return { ok: true, format: 'pcap', packets, warnings };
}

/** Reads either format, telling them apart by the pcap magic number. */
export function readRecording(bytes: Buffer): RecordingReadResult {
  if (bytes.length === 0) return { ok: false, error: 'empty file' };
  if (bytes.length >= 4) {
    const le = bytes.readUInt32LE(0);
    const be = bytes.readUInt32BE(0);
    if ([le, be].some((m) => m === PCAP_MAGIC || m === PCAP_MAGIC_NS)) {
      return readPcapRecording(bytes);
    }
  }
  return readAdhocRecording(bytes);
}
