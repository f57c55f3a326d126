/**
 * The on-disk format of a recording file as a strategy: {@link RecordingFileFormat} says what a
 * file starts with and what goes in front of each packet. Two implementations, built on the pure
 * encoders: {@link ADHOC_FILE_FORMAT} (docs/protocol.md 6.4, adhoc.ts) and
 * {@link PCAP_FILE_FORMAT} (6.5, pcap.ts). The writer (recording-file.ts) only queues the bytes.
 */

import { adhocRecordHeader, ADHOC_HEADER_SIZE } from './adhoc.ts';
import {
  PCAP_IPV4_PREFIX_SIZE,
  PCAP_IPV6_PREFIX_SIZE,
  pcapGlobalHeader,
  pcapRecordPrefix,
} from './pcap.ts';
import type { Endpoint, IpFamily } from './record-types.ts';

/** On-disk format of a recording file. */
export type RecordingFormat = 'adhoc' | 'pcap';

/** How one on-disk format frames the recorded packets. */
export interface RecordingFileFormat {
  readonly format: RecordingFormat;
  /** Bytes every file of this format starts with; `undefined` when there are none. */
  fileHeader(): Buffer | undefined;
  /** Size of the bytes {@link recordHeader} puts in front of a packet of `family`. */
  recordHeaderSize(family: IpFamily): number;
  /**
   * The bytes written in front of `packet` (which follows them unchanged), or `undefined` when
   * the packet or an address cannot be represented. Call it only for a record that will be
   * written: the pcap format counts records. Never throws.
   */
  recordHeader(
    packet: Buffer,
    from: Endpoint,
    to: Endpoint,
    family: IpFamily,
    wallMs: number,
  ): Buffer | undefined;
}

/** The reference's default format: no file header, a 30-byte header storing `from` only. */
export const ADHOC_FILE_FORMAT: RecordingFileFormat = {
  format: 'adhoc',
  fileHeader: () => undefined,
  recordHeaderSize: () => ADHOC_HEADER_SIZE,
  recordHeader: (packet, from, _to, family, wallMs) =>
    adhocRecordHeader(from, family, wallMs, packet.length),
};

/*
 * One IPv4 identification counter shared by every pcap file (6.5: "one global 16-bit counter
 * incremented per record"), as the reference's static `ip_id`. IPv6 records do not use it.
 */
let pcapIpId = 0;

/** `-P`: the pcap global header, then per packet a record header and fake Ethernet/IP/UDP. */
export const PCAP_FILE_FORMAT: RecordingFileFormat = {
  format: 'pcap',
  fileHeader: () => pcapGlobalHeader(),
  recordHeaderSize: (family) => (family === 4 ? PCAP_IPV4_PREFIX_SIZE : PCAP_IPV6_PREFIX_SIZE),
  recordHeader: (packet, from, to, family, wallMs) => {
    const prefix = pcapRecordPrefix(packet, from, to, family, wallMs, pcapIpId);
    if (prefix !== undefined && family === 4) pcapIpId = (pcapIpId + 1) & 0xffff;
    return prefix;
  },
};

/** The strategy of a {@link RecordingFormat}. */
export function recordingFileFormat(format: RecordingFormat): RecordingFileFormat {
  return format === 'pcap' ? PCAP_FILE_FORMAT : ADHOC_FILE_FORMAT;
}
