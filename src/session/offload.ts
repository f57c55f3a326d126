/**
 * Which streams the kernel forwards (docs/kernel.md): a stream component (RTP, or RTCP) of a
 * session goes to the kernel fast path once both of its parties have latched and nothing needs
 * its packets in userspace; it comes back as soon as something does (R/C/P, a re-INVITE's re-latch
 * window, a party that moved) and before its session ends. Userspace keeps its sockets and state
 * all along, so the switch either way loses no packet: the kernel's elements are removed first,
 * and the next packet reaches the socket as before.
 *
 * The kernel's packets count as the stream's own (MediaStream.addKernelTraffic), so Q, G, I, the
 * session end and the idle timers see them; the counters are read when something needs them
 * (a command, an idle session about to expire, a removal), never per packet.
 */
import type { ForwardDirection, ForwardHandle, KernelForwarder } from '../base/forward.ts';
import type { MediaStream } from '../media/stream.ts';
import { isWildcard } from '../util/net.ts';
import type { GlobalStats } from '../util/stats.ts';
import type { Session } from './session.ts';

/** Why a stream component stays in userspace. */
export type UserspaceReason =
  | 'off'
  | 'send-twice'
  | 'incomplete'
  | 'latching'
  | 'recording'
  | 'playing'
  | 'blocked'
  | 'relatch'
  | 'asymmetric'
  | 'resizing'
  | 'family'
  | 'forwarding'
  | 'wildcard';

const COMPONENTS: readonly Component[] = ['rtp', 'rtcp'];

/** A component in the kernel: its two directions and the endpoints they were installed for. */
interface Offloaded {
  readonly key: string;
  readonly handles: readonly ForwardHandle[];
}

export interface OffloadOptions {
  /** The kernel fast path; undefined when it is off (every stream stays in userspace). */
  readonly forwarder: KernelForwarder | undefined;
  /** `-2`: short packets are sent twice, which only userspace does. */
  readonly sendTwice: boolean;
  readonly stats: GlobalStats;
}

/** Figures for `Iv`. */
export interface OffloadFigures {
  /** Stream components in the kernel now. */
  readonly streams: number;
  /** Components moved to the kernel since start. */
  readonly offloads: number;
  /** Components moved back to userspace (or out with their session) since start. */
  readonly withdrawals: number;
  /** Packets the kernel forwarded since start. */
  readonly packets: number;
  /** Their bytes, UDP payload. */
  readonly bytes: number;
}

/** Where a stream component is relayed, and why not in the kernel. */
export type Placement =
  | { readonly path: 'kernel' }
  | { readonly path: 'userspace'; readonly reason: UserspaceReason | 'pending' };

export type Component = 'rtp' | 'rtcp';

export class SessionOffload {
  readonly #opts: OffloadOptions;
  readonly #state = new Map<Session, Map<Component, Offloaded>>();
  #streams = 0;
  #offloads = 0;
  #withdrawals = 0;
  #packets = 0;
  #bytes = 0;

  constructor(options: OffloadOptions) {
    this.#opts = options;
  }

  figures(): OffloadFigures {
    return {
      streams: this.#streams,
      offloads: this.#offloads,
      withdrawals: this.#withdrawals,
      packets: this.#packets,
      bytes: this.#bytes,
    };
  }

  /** Whether any component of the session is in the kernel. */
  holds(session: Session): boolean {
    return this.#state.has(session);
  }

  /** Whether any session has a component in the kernel. */
  get active(): boolean {
    return this.#state.size > 0;
  }

  /**
   * Moves the session's components to the kernel or back, as their state now asks; the change
   * goes out with the forwarder's next transaction. Returns whether anything left the kernel.
   */
  review(session: Session): boolean {
    const forwarder = this.#opts.forwarder;
    if (forwarder === undefined) return false;
    if (!forwarder.ready && !this.#state.has(session)) return false;
    let withdrew = false;
    for (const component of COMPONENTS) {
      const current = this.#state.get(session)?.get(component);
      const wanted = this.#reason(session, component) === undefined;
      const key = wanted ? componentKey(session, component) : undefined;
      if (current !== undefined && current.key === key) continue;
      if (current !== undefined) {
        this.#drop(session, component, current);
        withdrew = true;
      }
      if (key !== undefined) this.#install(forwarder, session, component, key);
    }
    return withdrew;
  }

  /**
   * Takes every component of the session out of the kernel; resolves once the removal committed
   * and the last packets were counted. Undefined when none was in the kernel.
   */
  withdraw(session: Session): Promise<void> | undefined {
    const forwarder = this.#opts.forwarder;
    const state = this.#state.get(session);
    if (forwarder === undefined || state === undefined) return undefined;
    for (const [component, current] of [...state]) this.#drop(session, component, current);
    return forwarder.settled();
  }

  /** Resolves once every change made so far is committed. */
  settled(): Promise<void> {
    return this.#opts.forwarder?.settled() ?? Promise.resolve();
  }

  /** Reads the kernel's counters again, if any stream is in the kernel. */
  read(): Promise<void> {
    if (!this.active) return Promise.resolve();
    return this.#opts.forwarder?.read() ?? Promise.resolve();
  }

  /** `rtp=kernel rtcp=userspace(latching)`: where each component of the session is relayed. */
  describe(session: Session): string {
    return COMPONENTS.map((component) => {
      const placement = this.placement(session, component);
      return placement.path === 'kernel'
        ? `${component}=kernel`
        : `${component}=userspace(${placement.reason})`;
    }).join(' ');
  }

  /** Where the component is relayed; `pending` while its move to the kernel is on its way. */
  placement(session: Session, component: Component): Placement {
    if (this.#state.get(session)?.has(component) === true) return { path: 'kernel' };
    return { path: 'userspace', reason: this.#reason(session, component) ?? 'pending' };
  }

  /** Why the component stays in userspace; undefined when the kernel may forward it. */
  #reason(session: Session, component: Component): UserspaceReason | undefined {
    const forwarder = this.#opts.forwarder;
    if (forwarder?.ready !== true) return 'off';
    if (this.#opts.sendTwice) return 'send-twice';
    const a = session.legs[0][component];
    const b = session.legs[1][component];
    if (!session.complete || !a.complete || !b.complete) return 'incomplete';
    if (!isLatched(a) || !isLatched(b)) return 'latching';
    if (a.tap !== undefined || b.tap !== undefined) return 'recording';
    if (a.playing || b.playing) return 'playing';
    if (a.blocked || b.blocked) return 'blocked';
    if (a.relatching || b.relatching) return 'relatch';
    if (a.asymmetric || b.asymmetric) return 'asymmetric';
    if (a.repacketizeMs !== undefined || b.repacketizeMs !== undefined) return 'resizing';
    if (a.family !== b.family) return 'family';
    if (!forwarder.families.includes(a.family)) return 'forwarding';
    if (isWildcard(a.local.address) || isWildcard(b.local.address)) return 'wildcard';
    return undefined;
  }

  #install(forwarder: KernelForwarder, session: Session, component: Component, key: string): void {
    const a = session.legs[0][component];
    const b = session.legs[1][component];
    const handles = [
      forwarder.install(direction(a, b), (packets, bytes) => {
        this.#counted(a, packets, bytes);
      }),
      forwarder.install(direction(b, a), (packets, bytes) => {
        this.#counted(b, packets, bytes);
      }),
    ];
    const state = this.#state.get(session) ?? new Map<Component, Offloaded>();
    state.set(component, { key, handles });
    this.#state.set(session, state);
    this.#streams += 1;
    this.#offloads += 1;
  }

  #drop(session: Session, component: Component, current: Offloaded): void {
    for (const handle of current.handles) this.#opts.forwarder?.remove(handle);
    const state = this.#state.get(session);
    state?.delete(component);
    if (state?.size === 0) this.#state.delete(session);
    this.#streams -= 1;
    this.#withdrawals += 1;
  }

  /** The kernel forwarded `packets` of the party `stream` faces. */
  #counted(stream: MediaStream, packets: number, bytes: number): void {
    stream.addKernelTraffic(packets, bytes);
    this.#packets += packets;
    this.#bytes += bytes;
    const stats = this.#opts.stats;
    stats.npktsRcvd += packets;
    stats.npktsRelayed += packets;
    stream.activity.touch(stream.leg);
  }
}

/** Latched, with a remote to send to. */
function isLatched(stream: MediaStream): boolean {
  return stream.latched && stream.remoteAddress !== undefined && stream.remotePort > 0;
}

/** Packets of the party `rx` faces, arriving on `rx`, leave through `tx` to its party. */
function direction(rx: MediaStream, tx: MediaStream): ForwardDirection {
  return {
    family: rx.family,
    from: { address: rx.remoteAddress ?? '', port: rx.remotePort },
    via: rx.local,
    out: tx.local,
    to: { address: tx.remoteAddress ?? '', port: tx.remotePort },
  };
}

/** What the component's directions depend on: a change means new elements. */
function componentKey(session: Session, component: Component): string {
  const a = session.legs[0][component];
  const b = session.legs[1][component];
  const side = (s: MediaStream): string =>
    `${s.remoteAddress ?? ''}/${String(s.remotePort)}>${s.local.address}/${String(s.local.port)}`;
  return `${side(a)}|${side(b)}`;
}
