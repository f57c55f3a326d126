/**
 * RTP fixed header reading and writing (RFC 3550 section 5.1). Pure: no I/O, never throws on
 * received bytes. Parsers are bounds-checked views that return `undefined` (or -1 for the
 * single-number readers) for garbage, per style.md P15.
 */

/** Size of the fixed RTP header (V..SSRC). */
export const RTP_FIXED_HEADER = 12;

/** The only RTP version we accept (RFC 3550 section 5.1, field V). */
const RTP_VERSION = 2;

const OFF_B0 = 0;
const OFF_B1 = 1;
const OFF_SEQUENCE = 2;
const OFF_TIMESTAMP = 4;
const OFF_SSRC = 8;
const OFF_CSRC = 12;
const CSRC_SIZE = 4;
const MAX_CSRC = 15;
/** Extension header: 16-bit profile-defined field + 16-bit length in 32-bit words. */
const EXT_HEADER = 4;
const EXT_OFF_PROFILE = 0;
const EXT_OFF_LENGTH = 2;
const EXT_MAX_WORDS = 0xffff;

const VERSION_SHIFT = 6;
const P_BIT = 0x20;
const X_BIT = 0x10;
const CC_MASK = 0x0f;
const M_BIT = 0x80;
const PT_MASK = 0x7f;

/** Clock rate assumed for dynamic and unknown payload types. */
const DEFAULT_CLOCK_RATE = 8000;

/**
 * RTP clock rates of the static payload types (RFC 3551 tables 4 and 5). G.722 (9) is 8000
 * although it samples at 16 kHz: RFC 3551 section 4.5.2 keeps the historical value.
 */
export const RTP_CLOCK_RATES = {
  0: 8000, // PCMU
  3: 8000, // GSM
  4: 8000, // G723
  5: 8000, // DVI4
  6: 16000, // DVI4
  7: 8000, // LPC
  8: 8000, // PCMA
  9: 8000, // G722
  10: 44100, // L16 stereo
  11: 44100, // L16 mono
  12: 8000, // QCELP
  13: 8000, // CN
  14: 90000, // MPA
  15: 8000, // G728
  16: 11025, // DVI4
  17: 22050, // DVI4
  18: 8000, // G729
  25: 90000, // CelB
  26: 90000, // JPEG
  28: 90000, // nv
  31: 90000, // H261
  32: 90000, // MPV
  33: 90000, // MP2T
  34: 90000, // H263
} as const;

/** Dense lookup built once so {@link clockRateOf} is an index, not a property search. */
const CLOCK_RATE_BY_PT: Uint32Array = (() => {
  const table = new Uint32Array(PT_MASK + 1).fill(DEFAULT_CLOCK_RATE);
  for (const [pt, rate] of Object.entries(RTP_CLOCK_RATES)) table[Number(pt)] = rate;
  return table;
})();

/** RTP clock rate of a payload type; {@link DEFAULT_CLOCK_RATE} for dynamic or unknown types. */
export function clockRateOf(pt: number): number {
  if (!Number.isInteger(pt) || pt < 0 || pt > PT_MASK) return DEFAULT_CLOCK_RATE;
  return CLOCK_RATE_BY_PT[pt] ?? DEFAULT_CLOCK_RATE;
}

/** Fields of a parsed RTP header; offsets and lengths are byte positions in the parsed buffer. */
export interface RtpHeaderView {
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  /** Number of CSRC identifiers (CC); they start at byte 12, four bytes each. */
  readonly csrcCount: number;
  /** The 16-bit profile-defined extension field, or -1 when X is clear. */
  readonly extensionProfile: number;
  /** Offset of the extension data (after its 4-byte header); equals payloadOffset when X is clear. */
  readonly extensionOffset: number;
  /** Extension data length in bytes (a multiple of 4); 0 when X is clear. */
  readonly extensionLength: number;
  /** Padding bytes at the end, the last one included; 0 when P is clear. */
  readonly paddingLength: number;
  readonly payloadOffset: number;
  /** Payload bytes, padding excluded. */
  readonly payloadLength: number;
}

/*
 * RFC 3550 section 5.1, RTP fixed header:
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           timestamp                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           synchronization source (SSRC) identifier            |
 * +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 * |            contributing source (CSRC) identifiers             |
 * |                             ....                              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 3550 section 5.3.1, header extension (present when X = 1):
 *
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |      defined by profile       |           length              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        header extension                       |
 * |                             ....                              |
 *
 * `length` counts 32-bit words after the 4-byte extension header. With P = 1 the last byte of
 * the packet counts the padding bytes, itself included, so it is at least 1.
 */

/** Offset of the extension header, or -1 when the CSRC list runs past the buffer. */
function csrcEnd(buf: Buffer, b0: number): number {
  const end = OFF_CSRC + (b0 & CC_MASK) * CSRC_SIZE;
  return buf.length < end ? -1 : end;
}

/**
 * Offset of the payload, or -1 when the bytes are not a well-formed RTP packet (shorter than
 * 12 bytes, version not 2, CSRCs or extension past the end, bad padding count). Does not allocate.
 */
export function rtpPayloadOffset(buf: Buffer): number {
  if (buf.length < RTP_FIXED_HEADER) return -1;
  const b0 = buf.readUInt8(OFF_B0);
  if (b0 >> VERSION_SHIFT !== RTP_VERSION) return -1;
  let offset = csrcEnd(buf, b0);
  if (offset < 0) return -1;
  if ((b0 & X_BIT) !== 0) {
    if (buf.length < offset + EXT_HEADER) return -1;
    offset += EXT_HEADER + buf.readUInt16BE(offset + EXT_OFF_LENGTH) * 4;
    if (buf.length < offset) return -1;
  }
  if ((b0 & P_BIT) !== 0) {
    if (buf.length === offset) return -1;
    const padding = buf.readUInt8(buf.length - 1);
    if (padding === 0 || padding > buf.length - offset) return -1;
  }
  return offset;
}

/** Parses the RTP header (RFC 3550 section 5.1); `undefined` for anything malformed. */
export function readRtpHeader(buf: Buffer): RtpHeaderView | undefined {
  const payloadOffset = rtpPayloadOffset(buf);
  if (payloadOffset < 0) return undefined;
  const b0 = buf.readUInt8(OFF_B0);
  const b1 = buf.readUInt8(OFF_B1);
  const extHeader = OFF_CSRC + (b0 & CC_MASK) * CSRC_SIZE;
  const hasExt = (b0 & X_BIT) !== 0;
  const paddingLength = (b0 & P_BIT) !== 0 ? buf.readUInt8(buf.length - 1) : 0;
  return {
    marker: (b1 & M_BIT) !== 0,
    payloadType: b1 & PT_MASK,
    sequence: buf.readUInt16BE(OFF_SEQUENCE),
    timestamp: buf.readUInt32BE(OFF_TIMESTAMP),
    ssrc: buf.readUInt32BE(OFF_SSRC),
    csrcCount: b0 & CC_MASK,
    extensionProfile: hasExt ? buf.readUInt16BE(extHeader + EXT_OFF_PROFILE) : -1,
    extensionOffset: hasExt ? extHeader + EXT_HEADER : payloadOffset,
    extensionLength: hasExt ? payloadOffset - extHeader - EXT_HEADER : 0,
    paddingLength,
    payloadOffset,
    payloadLength: buf.length - payloadOffset - paddingLength,
  };
}

/** SSRC of an RTP packet, or -1 when shorter than 12 bytes or not version 2. Does not allocate. */
export function rtpSsrc(buf: Buffer): number {
  if (buf.length < RTP_FIXED_HEADER || buf.readUInt8(OFF_B0) >> VERSION_SHIFT !== RTP_VERSION) {
    return -1;
  }
  return buf.readUInt32BE(OFF_SSRC);
}

/** Sequence number of an RTP packet, or -1 when shorter than 12 bytes or not version 2. Does not allocate. */
export function rtpSequence(buf: Buffer): number {
  if (buf.length < RTP_FIXED_HEADER || buf.readUInt8(OFF_B0) >> VERSION_SHIFT !== RTP_VERSION) {
    return -1;
  }
  return buf.readUInt16BE(OFF_SEQUENCE);
}

/** Header extension to write: `data` is the extension body, a multiple of 4 bytes long. */
interface RtpExtensionFields {
  readonly profile: number;
  readonly data: Uint8Array;
}

/** Header fields for {@link writeRtpHeader}. */
export interface RtpHeaderFields {
  readonly marker?: boolean;
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly csrcs?: readonly number[];
  readonly extension?: RtpExtensionFields;
  /** Sets P; the caller appends the padding, whose last byte is the padding count. */
  readonly padding?: boolean;
}

/** Bytes {@link writeRtpHeader} writes for these fields, or -1 when they cannot be encoded. */
export function rtpHeaderLength(fields: RtpHeaderFields): number {
  const ncsrc = fields.csrcs?.length ?? 0;
  if (ncsrc > MAX_CSRC) return -1;
  let length = RTP_FIXED_HEADER + ncsrc * CSRC_SIZE;
  const ext = fields.extension;
  if (ext !== undefined) {
    if (ext.data.length % 4 !== 0 || ext.data.length / 4 > EXT_MAX_WORDS) return -1;
    length += EXT_HEADER + ext.data.length;
  }
  return length;
}

/**
 * Writes an RTP header (layout above) at `offset`; returns the offset just past it (where the
 * payload goes), or -1 without writing anything when the fields cannot be encoded or do not fit.
 * Numeric fields are truncated to their wire widths.
 */
export function writeRtpHeader(buf: Buffer, offset: number, fields: RtpHeaderFields): number {
  const length = rtpHeaderLength(fields);
  if (length < 0 || !Number.isInteger(offset) || offset < 0 || buf.length - offset < length) {
    return -1;
  }
  const csrcs = fields.csrcs;
  const ncsrc = csrcs?.length ?? 0;
  const ext = fields.extension;
  let b0 = (RTP_VERSION << VERSION_SHIFT) | ncsrc;
  if (fields.padding === true) b0 |= P_BIT;
  if (ext !== undefined) b0 |= X_BIT;
  buf.writeUInt8(b0, offset + OFF_B0);
  buf.writeUInt8(
    (fields.marker === true ? M_BIT : 0) | (fields.payloadType & PT_MASK),
    offset + OFF_B1,
  );
  buf.writeUInt16BE(fields.sequence & 0xffff, offset + OFF_SEQUENCE);
  buf.writeUInt32BE(fields.timestamp >>> 0, offset + OFF_TIMESTAMP);
  buf.writeUInt32BE(fields.ssrc >>> 0, offset + OFF_SSRC);
  let pos = offset + OFF_CSRC;
  for (let i = 0; i < ncsrc; i++) {
    buf.writeUInt32BE((csrcs?.[i] ?? 0) >>> 0, pos);
    pos += CSRC_SIZE;
  }
  if (ext !== undefined) {
    buf.writeUInt16BE(ext.profile & 0xffff, pos + EXT_OFF_PROFILE);
    buf.writeUInt16BE(ext.data.length / 4, pos + EXT_OFF_LENGTH);
    buf.set(ext.data, pos + EXT_HEADER);
    pos += EXT_HEADER + ext.data.length;
  }
  return pos;
}
