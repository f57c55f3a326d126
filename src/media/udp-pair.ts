/**
 * Binds the two UDP sockets of a leg: RTP on an even port, RTCP on the port above, on one local
 * address (docs/protocol.md 4.3). 'error' is attached before bind; a bind that fails with "address in
 * use" or "permission denied" makes the port busy, any other error is fatal for this allocation.
 */
import dgram from 'node:dgram';
import type { OwnEndpoints } from './own-endpoints.ts';
import type { BindOutcome } from './port-allocator.ts';
import type { Family } from '../base/net.ts';

/** Media socket receive buffer, as the reference sets it. */
const RECV_BUFFER = 256 * 1024;

/** A bound RTP/RTCP socket pair. The owner closes it. */
export interface UdpPair {
  readonly address: string;
  readonly family: Family;
  readonly port: number;
  readonly rtp: dgram.Socket;
  readonly rtcp: dgram.Socket;
}

/**
 * Media sockets only ever send to numeric addresses (validated when signalled, or taken from a
 * packet's source), so the per-send name lookup node:dgram does by default (dns.lookup, which
 * defers every send through process.nextTick) is replaced by an identity lookup that answers at
 * once.
 */
function numericLookup(
  address: string,
  family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

function bindOne(
  family: Family,
  address: string,
  port: number,
): Promise<{ socket: dgram.Socket } | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      ipv6Only: family === 6,
      lookup: numericLookup,
    });
    const onError = (error: NodeJS.ErrnoException): void => {
      socket.removeListener('listening', onListening);
      socket.close();
      resolve({ error });
    };
    const onListening = (): void => {
      socket.removeListener('error', onError);
      try {
        socket.setRecvBufferSize(RECV_BUFFER);
      } catch {
        // Some hosts cap the buffer (net.core.rmem_max); the default still works.
      }
      resolve({ socket });
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind({ port, address, exclusive: true });
  });
}

function outcomeOf(error: NodeJS.ErrnoException): BindOutcome {
  return error.code === 'EADDRINUSE' || error.code === 'EACCES' ? 'busy' : 'fatal';
}

/**
 * Tries to bind the pair on `port`/`port + 1`. On success the sockets are handed to `onBound`
 * synchronously, so the caller owns them before anything else can run. `own` learns the two ports
 * until the sockets close.
 */
export async function tryBindPair(
  family: Family,
  address: string,
  port: number,
  onBound: (pair: UdpPair) => void,
  own?: OwnEndpoints,
): Promise<{ outcome: BindOutcome; error?: Error }> {
  const rtp = await bindOne(family, address, port);
  if ('error' in rtp) return { outcome: outcomeOf(rtp.error), error: rtp.error };
  const rtcp = await bindOne(family, address, port + 1);
  if ('error' in rtcp) {
    rtp.socket.close();
    return { outcome: outcomeOf(rtcp.error), error: rtcp.error };
  }
  if (own !== undefined) {
    for (const [socket, p] of [
      [rtp.socket, port],
      [rtcp.socket, port + 1],
    ] as const) {
      own.mediaBound(p, address);
      socket.once('close', () => {
        own.mediaClosed(p);
      });
    }
  }
  onBound({ address, family, port, rtp: rtp.socket, rtcp: rtcp.socket });
  return { outcome: 'ok' };
}

/**
 * The local address the kernel would use to reach `remote` (the `r` modifier): a connected UDP
 * socket tells without sending anything. Undefined when no route exists.
 */
export function routeSource(remote: string, family: Family): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    const done = (value: string | undefined): void => {
      socket.close();
      resolve(value);
    };
    socket.once('error', () => {
      done(undefined);
    });
    socket.connect(9, remote, () => {
      try {
        done(socket.address().address);
      } catch {
        done(undefined);
      }
    });
  });
}
