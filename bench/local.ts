/** Small helpers the bench scripts share: a free loopback UDP port, and a sleep. */
import dgram from 'node:dgram';

/** A free UDP port on 127.0.0.1: bind port 0, read it, close (the daemon binds it right after). */
export async function freeUdpPort(): Promise<number> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port: 0, address: '127.0.0.1' }, () => {
      resolve();
    });
  });
  const { port } = sock.address();
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
