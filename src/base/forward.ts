/**
 * The kernel fast path as the session layer sees it (docs/kernel.md): one direction of a stream
 * forwarded by the kernel, and the forwarder that installs and removes such directions. Types
 * only; nft/kernel.ts implements the forwarder over the daemon's nftables table.
 */
import type { Endpoint, Family } from './net.ts';

/**
 * One direction of a stream: packets from `from` (the latched party) to `via` (our socket facing
 * it) leave from `out` (our socket facing the other party) towards `to` (that party).
 */
export interface ForwardDirection {
  readonly family: Family;
  readonly from: Endpoint;
  readonly via: Endpoint;
  readonly out: Endpoint;
  readonly to: Endpoint;
}

/** Told of the packets the kernel forwarded in one direction since the previous call. */
export type ForwardTraffic = (packets: number, payloadBytes: number) => void;

/** A direction the forwarder installed (or is installing). */
export interface ForwardHandle {
  readonly direction: ForwardDirection;
}

/** What the session layer needs of the kernel fast path. */
export interface KernelForwarder {
  /** The table with the kernel path's rules exists: directions may be installed. */
  readonly ready: boolean;
  /** The families the host forwards (its forwarding switch is on). */
  readonly families: readonly Family[];
  /** Installs `direction` with the next transaction; `traffic` hears of its packets. */
  install(direction: ForwardDirection, traffic: ForwardTraffic): ForwardHandle;
  /**
   * Removes a direction with the next transaction; its last packets are counted (read in the same
   * transaction, before the removal commits).
   */
  remove(handle: ForwardHandle): void;
  /** Resolves once every change made so far is committed (or its transaction failed). */
  settled(): Promise<void>;
  /** Resolves once the counters were read again and every direction's traffic reported. */
  read(): Promise<void>;
}
