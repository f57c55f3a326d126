/** A call set up through a running daemon: two parties on loopback and the ports they send to. */
import type { RunningDaemon, Teardown } from './daemon.ts';
import { Peer, uniqueCall } from './udp.ts';

export interface Offer {
  readonly call: { readonly id: string; readonly from: string; readonly to: string };
  /** The caller, whose U offered its port. */
  readonly a: Peer;
  /** Daemon port the callee sends to (it relays to A). */
  readonly toB: number;
}

export interface Call extends Offer {
  /** The callee, whose L answered. */
  readonly b: Peer;
  /** Daemon port A sends to (it relays to B). */
  readonly toA: number;
}

/** The U of a new call from a fresh caller party; `name` goes into the call-id. */
export async function offer(t: Teardown, d: RunningDaemon, name: string): Promise<Offer> {
  const a = await Peer.open(t);
  const call = uniqueCall(name);
  const toB = await d.port(`U ${call.id} 127.0.0.1 ${String(a.port)} ${call.from}`);
  return { call, a, toB };
}

/** A new call, offered (U) and answered (L): complete, neither side latched yet. */
export async function newCall(t: Teardown, d: RunningDaemon, name: string): Promise<Call> {
  const offered = await offer(t, d, name);
  const b = await Peer.open(t);
  const { call } = offered;
  const toA = await d.port(`L ${call.id} 127.0.0.1 ${String(b.port)} ${call.from} ${call.to}`);
  return { ...offered, b, toA };
}
