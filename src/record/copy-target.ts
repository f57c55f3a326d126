/**
 * The target of a remote copy, `C ... udp:HOST:PORT ...` (docs/protocol.md 6.6): HOST is an IPv4
 * address or a name resolved for IPv4 only, PORT is required. The target is validated: no
 * unspecified, broadcast, multicast or reserved address, port 1..65535.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';

/** A parsed `udp:HOST:PORT`; HOST is not resolved yet. */
export interface CopyTargetSpec {
  readonly host: string;
  readonly port: number;
}

/** A resolved, validated copy target. */
export interface CopyTarget {
  readonly address: string;
  readonly port: number;
}

const UDP_PREFIX = 'udp:';
/** A host name: letters, digits, `-`, `.`, `_` (no brackets, no IPv6 colons). */
const HOST_NAME = /^[A-Za-z0-9_.-]{1,253}$/;
const PORT_TEXT = /^[0-9]{1,5}$/;

/** Parses `udp:HOST:PORT`; undefined when the host or the port is missing or malformed. */
export function parseCopyTarget(target: string): CopyTargetSpec | undefined {
  if (!target.startsWith(UDP_PREFIX)) return undefined;
  const rest = target.slice(UDP_PREFIX.length);
  const colon = rest.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = rest.slice(0, colon);
  const portText = rest.slice(colon + 1);
  if (!HOST_NAME.test(host) || !PORT_TEXT.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { host, port };
}

/**
 * True for an IPv4 unicast address a copy may be sent to: not 0.0.0.0/8, not multicast
 * (224/4), not reserved or broadcast (240/4, 255.255.255.255).
 */
function isUsableCopyAddress(address: string): boolean {
  if (!net.isIPv4(address)) return false;
  const first = Number(address.split('.')[0]);
  return first !== 0 && first < 224;
}

/**
 * Resolves and validates a target: a dotted address is used as is, a name is looked up for IPv4
 * (refused with `noResolve`). Resolves undefined when the target is unusable; never rejects.
 */
export async function resolveCopyTarget(
  spec: CopyTargetSpec,
  noResolve: boolean,
): Promise<CopyTarget | undefined> {
  let address: string;
  if (net.isIPv4(spec.host)) address = spec.host;
  else if (net.isIP(spec.host) !== 0 || noResolve) return undefined;
  else {
    try {
      address = (await lookup(spec.host, { family: 4 })).address;
    } catch {
      return undefined;
    }
  }
  return isUsableCopyAddress(address) ? { address, port: spec.port } : undefined;
}
