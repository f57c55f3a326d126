/**
 * Reply texts (docs/protocol.md 2.6, 3, 10). Pure: numbers and addresses in, wire text out. Every reply
 * returned by the dispatcher ends in exactly one LF (the `I` reply has one per line).
 */
import { ECODES, type ECode } from './ecodes.ts';
import type { Family } from '../base/net.ts';

/** Largest reply the reference's buffer holds, cookie included. */
export const MAX_REPLY = 1024;

/** `E<n>\n`. */
export function errorReply(ecode: ECode): string {
  return `E${String(ECODES[ecode].code)}\n`;
}

/** Where the other party must send, as U/L reply it (docs/protocol.md 3.2, "Reply"). */
export interface PortAnswer {
  readonly port: number;
  readonly address: string;
  readonly family: Family;
  readonly advertised?: string;
  /** The local address is a wildcard: the reply carries the port only. */
  readonly wildcard: boolean;
}

/** `PORT`, `PORT ADDR` or `PORT ADDR 6`, without LF (sub-command results reuse it). */
export function portText(a: PortAnswer): string {
  if (a.wildcard) return String(a.port);
  const address = a.advertised ?? a.address;
  return a.family === 6 ? `${String(a.port)} ${address} 6` : `${String(a.port)} ${address}`;
}

/** A counter value as the reference prints it: integers as is, floats with six decimals. */
export function counterText(value: number, float: boolean): string {
  return float ? value.toFixed(6) : String(Math.trunc(value));
}

/** `v1 v2 ...` or, verbose, `n1=v1 n2=v2 ...`. */
export function namedValues(
  pairs: readonly (readonly [name: string, value: string])[],
  verbose: boolean,
): string {
  return pairs.map(([name, value]) => (verbose ? `${name}=${value}` : value)).join(' ');
}

/** The five lines of `I` (docs/protocol.md 10.2), plus `average load` with `l`. */
export function infoText(
  i: {
    readonly created: number;
    readonly active: number;
    readonly streams: number;
    readonly received: number;
    readonly transmitted: number;
  },
  load: number | undefined,
): string {
  const lines = [
    `sessions created: ${String(i.created)}`,
    `active sessions: ${String(i.active)}`,
    `active streams: ${String(i.streams)}`,
    `packets received: ${String(i.received)}`,
    `packets transmitted: ${String(i.transmitted)}`,
  ];
  if (load !== undefined) lines.push(`average load: ${load.toFixed(6)}`);
  return `${lines.join('\n')}\n`;
}
