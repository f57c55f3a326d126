/** Types shared by the recording encoders and writers. Types only. */

/**
 * A transport address as recorded: numeric IP text (as `dgram` reports it; IPv4-mapped IPv6
 * forms are accepted) and UDP port. Structurally compatible with `dgram.RemoteInfo` and
 * `AddressInfo`.
 */
import type { Family } from '../base/net.ts';
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** IP version of a recorded packet. */
export type IpFamily = Family;
