/**
 * The SDP side of the ng protocol (docs/ng.md): what each media section of an SDP asks for, and the
 * SDP rewritten so that its media goes through the relay. Pure: sdp-transform parses and writes;
 * nothing here does I/O or throws.
 */
import { addressFamily, isWildcard } from '../util/net.ts';
import { parse, write, type MediaDescription, type SessionDescription } from 'sdp-transform';

/** Where a media section's party receives, as its SDP says. */
type StreamRemote =
  /** c= all zeros: the party holds the stream (old-style hold). */
  | { readonly kind: 'hold'; readonly family: 4 | 6 }
  /** A numeric address (and the m= port). */
  | { readonly kind: 'address'; readonly address: string; readonly family: 4 | 6 }
  /** A name, or no c= at all: the relay learns the party from its packets. */
  | { readonly kind: 'unknown'; readonly family: 4 | 6 };

/** One m= section. */
export interface SdpStream {
  /** 1-based position of its m= line: the `;N` of its session's tags. */
  readonly index: number;
  readonly type: string;
  readonly protocol: string;
  readonly port: number;
  /** Port 0: a disabled or refused stream, which gets no session. */
  readonly disabled: boolean;
  readonly remote: StreamRemote;
  /** The m= line's payload types, in the sender's order of preference (numeric ones only). */
  readonly payloadTypes: readonly number[];
  /** `a=ptime`, ms; undefined without one. */
  readonly ptime: number | undefined;
}

/** A parsed SDP and its streams. */
export interface ParsedSdp {
  readonly streams: readonly SdpStream[];
  /** The parsed form, rewritten by {@link rewriteSdp}. */
  readonly description: SessionDescription;
  /** The o= line as sent: its numbers are kept as text (sdp-transform reads them as doubles). */
  readonly originLine: string | undefined;
}

/** Where the relay receives a stream's media. */
export interface StreamAnswer {
  readonly index: number;
  readonly port: number;
  readonly address: string;
  readonly family: 4 | 6;
}

export interface RewriteOptions {
  /** `replace: ["origin"]`: the o= address becomes the relay's. */
  readonly replaceOrigin: boolean;
  /** `rtcp-mux: ["reject"]`: a=rtcp-mux is removed. */
  readonly rejectRtcpMux: boolean;
}

/** Transports relayed as they are. Anything else is refused by {@link unsupportedTransport}. */
const PLAIN_TRANSPORTS: ReadonlySet<string> = new Set([
  'RTP/AVP',
  'RTP/AVPF',
  'UDPTL',
  'UDP/UDPTL',
]);

type Parsed = { ok: true; sdp: ParsedSdp } | { ok: false; error: string };

const LINE = /^[a-zA-Z]=/;
const M_LINE = /^m=[^ ]+ [0-9]+(\/[0-9]+)? [^ ]+( |$)/;

/**
 * Parses an SDP body. A body that is not SDP answers rtpengine's `Failed to parse SDP`, a stream
 * without a connection address `Incomplete SDP specification`.
 */
export function parseSdp(text: string): Parsed {
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  if (lines[0] !== 'v=0') return { ok: false, error: 'Failed to parse SDP' };
  let mLines = 0;
  for (const line of lines) {
    if (!LINE.test(line)) return { ok: false, error: 'Failed to parse SDP' };
    if (line.startsWith('m=')) {
      if (!M_LINE.test(line)) return { ok: false, error: 'Failed to parse SDP' };
      mLines += 1;
    }
  }
  let description: SessionDescription;
  try {
    description = parse(text);
  } catch {
    return { ok: false, error: 'Failed to parse SDP' };
  }
  if (description.media.length !== mLines) return { ok: false, error: 'Failed to parse SDP' };
  const streams: SdpStream[] = [];
  for (const [i, media] of description.media.entries()) {
    // sdp-transform reads the port as a number; a port of more than 15 digits is not one.
    const port: unknown = media.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port > 65535) {
      return { ok: false, error: 'Failed to parse SDP' };
    }
    const connection = media.connection ?? description.connection;
    const disabled = port === 0;
    if (!disabled && connection === undefined) {
      return { ok: false, error: 'Incomplete SDP specification' };
    }
    streams.push({
      index: i + 1,
      type: media.type,
      protocol: media.protocol,
      port,
      disabled,
      remote: remoteOf(connection),
      payloadTypes: payloadTypesOf(media.payloads),
      ptime: typeof media.ptime === 'number' && media.ptime > 0 ? media.ptime : undefined,
    });
  }
  const originLine = lines.find((l) => l.startsWith('o='));
  return { ok: true, sdp: { streams, description, originLine } };
}

function remoteOf(connection: { version: number; ip: string } | undefined): StreamRemote {
  const family = connection?.version === 6 ? 6 : 4;
  if (connection === undefined) return { kind: 'unknown', family };
  const ip = connection.ip;
  const ipFamily = addressFamily(ip);
  if (ipFamily === undefined) return { kind: 'unknown', family };
  return isWildcard(ip)
    ? { kind: 'hold', family: ipFamily }
    : { kind: 'address', address: ip, family: ipFamily };
}

/**
 * The first stream whose transport the relay cannot carry as it is (SRTP, DTLS, anything but
 * RTP/AVP, RTP/AVPF and UDPTL), as an error text; undefined when all can be relayed.
 */
export function unsupportedTransport(sdp: ParsedSdp): string | undefined {
  for (const stream of sdp.streams) {
    if (stream.disabled || PLAIN_TRANSPORTS.has(stream.protocol.toUpperCase())) continue;
    const secure = /SAVP/i.test(stream.protocol);
    return secure
      ? `SRTP/DTLS is not supported: media ${String(stream.index)} uses ${stream.protocol}`
      : `transport ${stream.protocol} of media ${String(stream.index)} is not supported`;
  }
  return undefined;
}

/**
 * The SDP with its media going through the relay: each answered stream gets the relay's port and
 * address (c= at media level, and at session level when the SDP has one), a=rtcp the port above,
 * ICE candidates and credentials removed (the relay is no ICE agent), a held stream keeps its
 * all-zero c=, disabled streams are left alone.
 */
export function rewriteSdp(
  sdp: ParsedSdp,
  answers: readonly StreamAnswer[],
  options: RewriteOptions,
): string {
  const description = structuredClone(sdp.description);
  const byIndex = new Map(answers.map((a) => [a.index, a]));
  const first = answers[0];
  const sessionConnection = description.connection;
  const sessionHold = sessionConnection !== undefined && isWildcard(sessionConnection.ip);
  if (sessionConnection !== undefined && first !== undefined && !sessionHold) {
    description.connection = { version: first.family, ip: first.address };
  }
  removeSessionIce(description);
  for (const [i, media] of description.media.entries()) {
    removeMediaIce(media);
    if (options.rejectRtcpMux) delete media.rtcpMux;
    const answer = byIndex.get(i + 1);
    if (answer === undefined) continue;
    media.port = answer.port;
    const own = media.connection;
    const held = own === undefined ? sessionHold : isWildcard(own.ip);
    if (held) {
      // The party holds the stream: its all-zero c= is passed on, at media level.
      media.connection ??= {
        version: sessionConnection?.version ?? 4,
        ip: sessionConnection?.ip ?? '0.0.0.0',
      };
    } else if (own !== undefined || description.connection?.ip !== answer.address) {
      media.connection = { version: answer.family, ip: answer.address };
    }
    if (media.rtcp !== undefined) {
      media.rtcp = held
        ? { ...media.rtcp, port: answer.port + 1 }
        : {
            port: answer.port + 1,
            netType: 'IN',
            ipVer: answer.family,
            address: answer.address,
          };
    }
  }
  let text = write(description);
  const origin = originLine(sdp.originLine, options.replaceOrigin ? first : undefined);
  if (origin !== undefined) text = text.replace(/^o=.*$/m, origin);
  return text;
}

/** The o= line as sent, with the relay's address when asked. */
function originLine(
  line: string | undefined,
  answer: StreamAnswer | undefined,
): string | undefined {
  if (line === undefined || answer === undefined) return line;
  const fields = line.split(' ');
  if (fields.length < 6) return line;
  fields[4] = answer.family === 6 ? 'IP6' : 'IP4';
  fields[5] = answer.address;
  return fields.slice(0, 6).join(' ');
}

function removeSessionIce(description: SessionDescription): void {
  delete description.iceUfrag;
  delete description.icePwd;
  delete description.iceOptions;
  delete description.icelite;
}

function removeMediaIce(media: MediaDescription): void {
  delete media.candidates;
  delete media.iceUfrag;
  delete media.icePwd;
  delete media.iceOptions;
  delete media.endOfCandidates;
  delete media.remoteCandidates;
}

/** The numeric payload types of an m= line's format list (`udptl` has `t38`, which is none). */
function payloadTypesOf(formats: string | number | undefined): number[] {
  if (formats === undefined) return [];
  return String(formats)
    .split(' ')
    .filter((f) => /^[0-9]{1,3}$/.test(f))
    .map(Number)
    .filter((pt) => pt <= 127);
}
