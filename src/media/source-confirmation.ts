/**
 * Strict sources (docs/architecture.md, "Strict sources"): the confirmation of a source the
 * signalling did not name, by consecutive RTP packets of one SSRC with consecutive sequence
 * numbers. Not on the relay's packet path: only packets from a source the stream refuses so far
 * come here.
 */
import { rtpSequence, rtpSsrc } from './rtp.ts';

/**
 * Strict sources: a source the signalling did not name is taken only after this many consecutive
 * RTP packets of one SSRC with consecutive sequence numbers (docs/architecture.md, "Strict
 * sources"): 60 ms of a 20 ms stream, more than an RTP-bleed sweep sends to one port.
 */
export const CONFIRM_PACKETS = 4;

/** The unsignalled source a stream is confirming, and how far. */
export class SourceConfirmation {
  #address: string | undefined;
  #port = 0;
  #ssrc = -1;
  #seq = 0;
  #count = 0;

  /** One packet of an unsignalled source: true once it completes the confirmation. */
  confirm(address: string, port: number, msg: Buffer): boolean {
    const ssrc = rtpSsrc(msg);
    if (ssrc < 0) return false;
    const seq = rtpSequence(msg);
    if (
      this.#count > 0 &&
      address === this.#address &&
      port === this.#port &&
      ssrc === this.#ssrc &&
      seq === ((this.#seq + 1) & 0xffff)
    ) {
      this.#count += 1;
    } else {
      this.#address = address;
      this.#port = port;
      this.#ssrc = ssrc;
      this.#count = 1;
    }
    this.#seq = seq;
    if (this.#count < CONFIRM_PACKETS) return false;
    this.#count = 0;
    this.#address = undefined;
    return true;
  }
}
