import net from 'node:net';

/**
 * How exposed a network control socket bound on `address` is: `wildcard` (every interface),
 * `remote` (an address other hosts can reach) or undefined for loopback (127.0.0.0/8, ::1).
 * The control protocol has no authentication, so only loopback keeps it to this host.
 */
export function controlSocketExposure(address: string): 'wildcard' | 'remote' | undefined {
  let ip = address;
  if (net.isIPv6(ip)) {
    ip = new net.SocketAddress({ address: ip, family: 'ipv6' }).address;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
    if (mapped !== undefined) ip = mapped;
  }
  if (ip === '0.0.0.0' || ip === '::') return 'wildcard';
  if (ip === '::1' || (net.isIPv4(ip) && ip.startsWith('127.'))) return undefined;
  return 'remote';
}
