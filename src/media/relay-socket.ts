/**
 * The socket side of a relay stream: it owns the leg's bound dgram socket, sends for the rest of
 * the daemon (prompts), and connect()s the socket to the party once the stream has latched
 * (docs/architecture.md, "Connected sockets"). Sends then skip node:dgram's address handling and
 * the kernel's route lookup, and the kernel drops datagrams from any other source. A connected
 * socket cannot see its party move, so it goes back to unconnected whenever a move is possible: at
 * every pre-fill, when the leg becomes asymmetric, and when the party sent nothing during one
 * check interval (see {@link Connections}). RelayStream (relay.ts) builds the relay on it; the
 * connection state is a plain field, read on the packet path.
 */
import type dgram from 'node:dgram';
import type { Connections } from './relay-shared.ts';
import type { SendSocket } from './stream.ts';
import type { Endpoint, Family } from '../base/net.ts';

type PacketListener = (msg: Buffer, rinfo: dgram.RemoteInfo) => void;

export abstract class RelaySocket {
  remoteAddress: string | undefined;
  remotePort = 0;
  /** The leg's bound socket. */
  udp: dgram.Socket | undefined;
  localPort = 0;
  /** The local address and port packets arrive on, as the recorder writes them. */
  local: Endpoint = { address: '0.0.0.0', port: 0 };
  family: Family = 4;
  /** Packets accepted from the party this leg faces. */
  npktsIn = 0;
  /** Send errors on this stream's socket. */
  nsendErrors = 0;
  /** The socket is connected to the remote. */
  protected isConnected = false;
  /** npktsIn at the previous connection check. */
  #checkedPkts = 0;
  #listener: PacketListener | undefined;
  readonly #sender: SendSocket = {
    send: (msg, port, address) => {
      this.#sendTo(msg, port, address);
    },
  };

  /** The stream's own packet handler. */
  abstract readonly onPacket: PacketListener;
  /** Where connected sockets register for their checks; undefined never connects. */
  protected abstract get connections(): Connections | undefined;
  /** Whether a connection may be made now (not in a re-latch window). */
  protected abstract mayConnect(): boolean;

  /** True while the socket is connected to the latched remote. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Sends out of this stream's socket (prompts); undefined while no socket is bound. */
  get socket(): SendSocket | undefined {
    return this.udp === undefined ? undefined : this.#sender;
  }

  /**
   * Takes ownership of a bound socket; a previous one is closed. `listener` replaces the stream's
   * own packet handler (a media worker wraps it to publish the counters).
   */
  attach(
    socket: dgram.Socket,
    address: string,
    port: number,
    family: Family,
    listener: PacketListener = this.onPacket,
  ): void {
    this.closeSocket();
    this.udp = socket;
    this.localPort = port;
    this.local = { address, port };
    this.family = family;
    this.#listener = listener;
    socket.on('message', listener);
    socket.on('error', this.#onError);
  }

  protected closeSocket(): void {
    const socket = this.udp;
    if (socket === undefined) return;
    this.disconnect();
    this.udp = undefined;
    if (this.#listener !== undefined) socket.removeListener('message', this.#listener);
    try {
      socket.close();
    } catch {
      // Already closed.
    }
  }

  #onError = (): void => {
    this.nsendErrors += 1;
  };

  /** Connection check (see {@link Connections}): silence since the previous one disconnects. */
  checkConnection(): void {
    if (this.npktsIn === this.#checkedPkts) this.disconnect();
    else this.#checkedPkts = this.npktsIn;
  }

  /** Connects the socket to the latched remote, outside the re-latch window. */
  protected connect(): void {
    const socket = this.udp;
    const connections = this.connections;
    const address = this.remoteAddress;
    if (socket === undefined || connections === undefined || address === undefined) return;
    if (this.remotePort <= 0) return;
    if (!this.mayConnect()) return;
    try {
      // Synchronous: media sockets resolve addresses with an identity lookup (udp-pair.ts).
      socket.connect(this.remotePort, address);
    } catch {
      return; // stays unconnected: sends name the address
    }
    this.isConnected = true;
    this.#checkedPkts = this.npktsIn;
    connections.add(this);
  }

  protected disconnect(): void {
    if (!this.isConnected) return;
    this.isConnected = false;
    this.connections?.delete(this);
    try {
      this.udp?.disconnect();
    } catch {
      // Not connected after all (closed): nothing to undo.
    }
  }

  /** A send from outside the relay (a prompt): connected only to the remote. */
  #sendTo(msg: Buffer, port: number, address: string): void {
    const socket = this.udp;
    if (socket === undefined) return;
    if (this.isConnected && (port !== this.remotePort || address !== this.remoteAddress)) {
      this.disconnect();
    }
    if (this.isConnected) socket.send(msg);
    else socket.send(msg, port, address);
  }
}
