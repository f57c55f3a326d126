/**
 * Which remote address an ng offer or answer gives a stream's party (docs/ng.md, "Addresses").
 * Pure.
 */
import { addressFamily } from '../util/net.ts';
import type { RemoteSpec } from '../base/net.ts';
import type { NgRequest } from './message.ts';
import type { SdpStream } from './sdp.ts';

/**
 * The SDP's address, unless the request says otherwise: `media address` replaces it; with
 * `SIP-source-address` the `received from` address (the SIP message's source) does; without
 * `trust-address`, a private or link-local SDP address is replaced by a public `received from`
 * address of the same family (a phone behind NAT writes its private address). The port is always
 * the SDP's: latching follows a NAT's port. A held stream is held, a stream without a numeric
 * address learns its party from packets.
 */
export function remoteFor(stream: SdpStream, request: NgRequest): RemoteSpec {
  const remote = stream.remote;
  if (remote.kind === 'hold') return { kind: 'hold' };
  // A name: nothing is looked up; the leg learns its party from packets.
  if (remote.kind === 'unknown') return { kind: 'ignored' };
  // `media address` overrides both the SDP and `received from` (rtpengine's
  // ng_control_protocol.md); one of the other family is refused by the caller (no conversion).
  const media = numericAddress(request.mediaAddress);
  if (media !== undefined) {
    return { kind: 'address', address: media.address, port: stream.port, family: media.family };
  }
  const received = numericAddress(request.receivedFrom?.address);
  let address = remote.address;
  if (received?.family === remote.family) {
    if (request.flags.has('sip source address')) address = received.address;
    else if (
      !request.flags.has('trust address') &&
      isPrivateAddress(remote.address) &&
      !isPrivateAddress(received.address)
    ) {
      address = received.address;
    }
  }
  return { kind: 'address', address, port: stream.port, family: remote.family };
}

/** A numeric address with its family; undefined for none or a name. */
function numericAddress(
  address: string | undefined,
): { address: string; family: 4 | 6 } | undefined {
  if (address === undefined) return undefined;
  if (isV4(address)) return { address, family: 4 };
  if (isV6(address)) return { address, family: 6 };
  return undefined;
}

/**
 * RFC 1918, shared (RFC 6598) and link-local IPv4 addresses, unique local and link-local IPv6
 * addresses: addresses a phone may write into its SDP that nobody outside its network reaches.
 */
export function isPrivateAddress(address: string): boolean {
  if (isV4(address)) {
    const [a = 0, b = 0] = address.split('.').map(Number);
    return (
      a === 10 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254)
    );
  }
  if (isV6(address)) {
    const head = address.toLowerCase();
    return /^f[cd][0-9a-f]{2}:/.test(head) || /^fe[89ab][0-9a-f]:/.test(head);
  }
  return false;
}

function isV4(address: string): boolean {
  return addressFamily(address) === 4;
}

function isV6(address: string): boolean {
  return addressFamily(address) === 6;
}
