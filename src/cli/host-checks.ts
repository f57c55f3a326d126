/**
 * Start-up checks against this host, before the daemon serves: `-l`/`-6` names resolve and the
 * addresses are local, the `-r`/`-S` directories are writable.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import type { Config, LocalAddress } from '../base/config.ts';
import type { Family } from '../base/net.ts';
import { errorMessage } from '../util/error-message.ts';
import { needsResolution } from './config.ts';
import { isErrnoException } from './process-io.ts';

/** Resolves host names given with -l/-6 (dns.lookup in the option's family); message on failure. */
export async function resolveAddresses(config: Config): Promise<Config | string> {
  if (!config.addresses.some(needsResolution)) return config;
  const addresses: LocalAddress[] = [];
  for (const a of config.addresses) {
    if (!needsResolution(a)) {
      addresses.push(a);
      continue;
    }
    const flag = a.family === 4 ? '-l' : '-6';
    if (config.noResolve) {
      return `${flag}: ${JSON.stringify(a.address)} is not numeric and --no_resolve is set`;
    }
    try {
      const found = await lookup(a.address, { family: a.family });
      addresses.push(Object.freeze({ ...a, address: found.address }));
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : String(err);
      return `${flag}: cannot resolve ${JSON.stringify(a.address)} to an IPv${String(a.family)} address (${code})`;
    }
  }
  return Object.freeze({ ...config, addresses: Object.freeze(addresses) });
}

/**
 * -l/-6 addresses must be addresses of this host: media ports are bound on them for every call,
 * and on any other address each bind fails (every U would answer E72). A test bind on port 0
 * now tells; an address that only comes up later (a floating address) binds when the kernel
 * allows non-local binds (net.ipv4.ip_nonlocal_bind, net.ipv6.ip_nonlocal_bind). A message on
 * failure.
 */
export async function checkLocalAddresses(config: Config): Promise<string | undefined> {
  for (const a of config.addresses) {
    if (a.address === '0.0.0.0' || a.address === '::') continue;
    const code = await tryBind(a.address, a.family);
    if (code === undefined) continue;
    const flag = a.family === 4 ? '-l' : '-6';
    const why =
      code === 'EADDRNOTAVAIL'
        ? 'it is not an address of this host'
        : 'media sockets cannot be bound on it';
    return `${flag}: ${JSON.stringify(a.address)}: ${why} (${code})`;
  }
  return undefined;
}

/** Binds a UDP socket on `address`, port 0, and closes it: undefined, or the error code. */
function tryBind(address: string, family: Family): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      resolve(err.code ?? err.message);
    });
    socket.bind(0, address, () => {
      socket.close(() => {
        resolve(undefined);
      });
    });
  });
}

/**
 * -r and -S must name directories this process can create files in: otherwise every R would
 * answer E50 and every -a call record nothing, with nothing said at start. A message, or
 * undefined when both are usable.
 */
export function checkRecordDirs(config: Config): string | undefined {
  const dirs = [
    ['-r', 'recording', config.recordDir],
    ['-S', 'spool', config.spoolDir],
  ] as const;
  for (const [flag, what, dir] of dirs) {
    if (dir === undefined) continue;
    const problem = directoryProblem(dir);
    if (problem !== undefined) {
      return `${flag}: the ${what} directory ${JSON.stringify(dir)} ${problem}`;
    }
  }
  return undefined;
}

/** Why files cannot be created in `dir`, or undefined when they can. */
function directoryProblem(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return 'is not a directory';
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
    return undefined;
  } catch (err) {
    const code = isErrnoException(err) ? err.code : undefined;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
      return `is not writable by this process (${code})`;
    }
    return `cannot be used: ${errorMessage(err)}`;
  }
}
