import { isIPv4, isIPv6 } from 'node:net';

/** Address family of a numeric address, or undefined when the text is not one. */
export function addressFamily(text: string): 4 | 6 | undefined {
  if (isIPv4(text)) return 4;
  if (isIPv6(text)) return 6;
  return undefined;
}

/** True for the IPv4 and IPv6 wildcard (and other all-zero) addresses. */
export function isWildcard(address: string): boolean {
  if (isIPv4(address)) return address === '0.0.0.0';
  if (isIPv6(address)) return /^[0:]+$/.test(address.replace(/^::ffff:0\.0\.0\.0$/i, '::'));
  return false;
}

/** Canonical text of a numeric address (IPv6 compressed and lower-case); other text unchanged. */
export function canonicalAddress(address: string): string {
  if (!isIPv6(address)) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}

/** True when two numeric addresses are the same address, whatever their spelling. */
export function sameAddress(a: string, b: string): boolean {
  return a === b || canonicalAddress(a) === canonicalAddress(b);
}

/** `host:port`, or `[host]:port` for an IPv6 address. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${String(port)}` : `${host}:${String(port)}`;
}
