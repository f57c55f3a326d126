/**
 * A remote copy (docs/protocol.md 6.6): the recorder that forks the packets arriving on a leg to a UDP
 * target. It sits in the leg's one recorder slot like a file recorder, so N, D, X and expiry stop
 * it. It owns a port pair bound from the media range: RTP copies leave from the even port to
 * `HOST:PORT`, RTCP copies (unless `-R`) from the odd port to `HOST:PORT+1`, as bare UDP payloads.
 *
 * `record()` is on the packet path: one `send`, no allocation, never throws (P8). A send error is
 * counted; the copy goes on.
 */
import type dgram from 'node:dgram';
import type { Endpoint, IpFamily } from './record-types.ts';
import type { Recorder, RecordingStats } from './recorder.ts';

/** The sockets and the target of one remote copy. */
export interface RemoteCopyOptions {
  /** Bound on the even port; sends the RTP copies. */
  readonly rtp: dgram.Socket;
  /** Bound on the odd port; sends the RTCP copies. */
  readonly rtcp: dgram.Socket;
  /** Local address and even port of the pair (the `Cp` reply). */
  readonly localAddress: string;
  readonly localPort: number;
  /** Resolved IPv4 target address and RTP port. */
  readonly address: string;
  readonly port: number;
  /** `-R`: RTCP is not copied. */
  readonly noRtcp: boolean;
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => {
        resolve();
      });
    } catch {
      resolve(); // Already closed.
    }
  });
}

export class RemoteCopy implements Recorder {
  readonly combined = false;
  readonly paths: readonly string[] = [];
  readonly localAddress: string;
  readonly localPort: number;
  readonly address: string;
  readonly port: number;
  readonly #rtp: dgram.Socket;
  readonly #rtcp: dgram.Socket;
  /** Port of the RTCP copies; 0 when RTCP is not copied (`-R`, or PORT is 65535). */
  readonly #rtcpPort: number;
  #closed = false;
  #closePromise: Promise<void> | undefined;
  #sent = 0;
  #bytes = 0;
  #errors = 0;
  #skipped = 0;

  constructor(options: RemoteCopyOptions) {
    this.#rtp = options.rtp;
    this.#rtcp = options.rtcp;
    this.localAddress = options.localAddress;
    this.localPort = options.localPort;
    this.address = options.address;
    this.port = options.port;
    this.#rtcpPort = options.noRtcp || options.port >= 65535 ? 0 : options.port + 1;
    // Nothing is expected back: datagrams sent to the pair are read and dropped by Node.
    this.#rtp.on('error', this.#onError);
    this.#rtcp.on('error', this.#onError);
  }

  #onError = (): void => {
    this.#errors += 1;
  };

  #onSent = (err: Error | null): void => {
    if (err !== null) this.#errors += 1;
  };

  record(
    packet: Buffer,
    isRtp: boolean,
    _from: Endpoint,
    _to: Endpoint,
    _family: IpFamily,
    _wallMs: number,
  ): void {
    if (this.#closed) return;
    try {
      if (isRtp) this.#rtp.send(packet, this.port, this.address, this.#onSent);
      else if (this.#rtcpPort !== 0) {
        this.#rtcp.send(packet, this.#rtcpPort, this.address, this.#onSent);
      } else {
        this.#skipped += 1;
        return;
      }
      this.#sent += 1;
      this.#bytes += packet.length;
    } catch {
      // A socket closed under us or a bad argument: count it, never reach the relay (P8).
      this.#errors += 1;
    }
  }

  /** records = packets sent, dropped = send errors, bytesWritten = bytes sent. */
  stats(): RecordingStats {
    return { records: this.#sent, dropped: this.#errors, bytesWritten: this.#bytes, failed: 0 };
  }

  /** RTCP packets not copied (`-R`). */
  get skipped(): number {
    return this.#skipped;
  }

  /** Closes both sockets; resolves once they are released. Idempotent; never rejects. */
  close(): Promise<void> {
    if (this.#closePromise === undefined) {
      this.#closed = true;
      this.#closePromise = Promise.all([closeSocket(this.#rtp), closeSocket(this.#rtcp)]).then(
        () => undefined,
      );
    }
    return this.#closePromise;
  }
}
