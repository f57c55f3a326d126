/**
 * The local-address choice of a session's legs (docs/protocol.md 3.2, the `l`/`r`/`4`/`6`/`i`/`e`
 * modifiers): which configured (`-l`/`-6`) or learnt address a leg binds on, and the addresses
 * `l` and `r` teach the daemon (sippy/rtpproxy src/rtpp_bindaddrs.c).
 */
import type { Family, LocalChoice } from '../base/net.ts';
import { sameAddress } from '../util/net.ts';
import { RelayError } from './errors.ts';
import type { Leg, LegLocal } from './session.ts';

/**
 * Local addresses learnt from `l`/`r` that are remembered at most (the reference keeps every one;
 * a host has far fewer, and an `l` with a new address per command must not grow the list).
 */
export const MAX_LEARNT_ADDRESSES = 64;

/** A configured local address (`-l` / `-6`). */
export interface ConfiguredAddress extends LegLocal {
  readonly label?: string;
}

/** Finds the local source address the host routes `address` from (the media plane's lookup). */
export type RouteSource = (address: string, family: Family) => Promise<string | undefined>;

/** The configured and learnt local addresses, and the choice of one for a leg. */
export class LocalAddresses {
  /** First is the default; the first two are `i` and `e` in bridge mode. */
  readonly #configured: readonly ConfiguredAddress[];
  readonly #routeSource: RouteSource;
  /**
   * Local addresses first used by `l`/`r` that were not configured, newest first; at most
   * {@link MAX_LEARNT_ADDRESSES}, so that `l` with ever new addresses cannot grow it for good.
   */
  readonly #learnt: ConfiguredAddress[] = [];

  constructor(configured: readonly ConfiguredAddress[], routeSource: RouteSource) {
    this.#configured = configured;
    this.#routeSource = routeSource;
  }

  /** Number of local addresses learnt from `l`/`r` and remembered. */
  get learntCount(): number {
    return this.#learnt.length;
  }

  /**
   * Whether a local address of this family is known: configured, or learnt from `l`/`r`. The
   * parser asks before answering E36 (the reference's `foraf()` check runs at parse time).
   */
  hasFamily(family: Family): boolean {
    return this.#forFamily(family) !== undefined;
  }

  /**
   * [leg facing T1, reply leg] local addresses of a new session. The first interface letter is
   * the leg facing T1, the second the reply leg; a reply leg without a letter gets the first
   * address, as in the reference (`lia[]` starts as `bindaddr[0]` for both legs).
   */
  async forNewSession(choice: LocalChoice): Promise<[LegLocal, LegLocal]> {
    if (choice.kind === 'interfaces') {
      const forward = this.#interface(choice.first);
      return [
        forward,
        choice.second === undefined ? this.#default() : this.#interface(choice.second),
      ];
    }
    const local = await this.#resolveChoice(choice);
    return [local, local];
  }

  /**
   * Local address of an existing leg that gets a port pair now: `l`, `r` and the family choice
   * move it; interface letters move it only with `n` and both letters (the second names the reply
   * leg); otherwise it keeps the address it was given when the session was created.
   */
  async forExistingLeg(leg: Leg, choice: LocalChoice, fresh: boolean): Promise<LegLocal> {
    if (choice.kind === 'default') return leg.local;
    if (choice.kind === 'interfaces') {
      return fresh && choice.second !== undefined ? this.#interface(choice.second) : leg.local;
    }
    return this.#resolveChoice(choice);
  }

  #default(): ConfiguredAddress {
    const first = this.#configured[0];
    if (first === undefined) return { address: '0.0.0.0', family: 4 };
    return first;
  }

  /**
   * The reference's `foraf()`: its address list is newest first, so this is the address of the
   * family learnt last by `l`/`r`, else the one configured last.
   */
  #forFamily(family: Family): ConfiguredAddress | undefined {
    const learnt = this.#learnt.find((a) => a.family === family);
    return learnt ?? this.#configured.findLast((a) => a.family === family);
  }

  /**
   * A numeric address named by `l` or found by `r`: the configured entry when there is one (so its
   * label and advertised address apply), otherwise it joins the live list, as `addr2bindaddr()`
   * adds it in the reference. Binding it may still fail later (E72/E71).
   */
  #known(address: string, family: Family): ConfiguredAddress {
    const configured = this.#configured.find((a) => sameAddress(a.address, address));
    if (configured !== undefined) return configured;
    const learnt = this.#learnt.find((a) => sameAddress(a.address, address));
    if (learnt !== undefined) return learnt;
    const added: ConfiguredAddress = { address, family };
    this.#learnt.unshift(added);
    // The oldest is forgotten; legs bound on it keep their own copy of the address.
    if (this.#learnt.length > MAX_LEARNT_ADDRESSES) this.#learnt.pop();
    return added;
  }

  async #resolveChoice(choice: LocalChoice): Promise<ConfiguredAddress> {
    switch (choice.kind) {
      case 'default':
      case 'interfaces':
        return this.#default();
      case 'family': {
        const found = this.#forFamily(choice.family);
        if (found === undefined) throw new RelayError('ERR_NO_LOCAL_ADDRESS');
        return found;
      }
      case 'label': {
        const labelled = this.#configured.find((a) => a.label === choice.label);
        if (labelled === undefined) throw new RelayError('ERR_NO_LOCAL_ADDRESS');
        return labelled;
      }
      case 'address':
        return this.#known(choice.address, choice.family);
      case 'route': {
        const source = await this.#routeSource(choice.address, choice.family);
        if (source === undefined) throw new RelayError('ERR_NO_ROUTE');
        return this.#known(source, choice.family);
      }
    }
  }

  /** Bridge mode: `i` is the first (internal) address, `e` the second (external) one. */
  #interface(letter: 'i' | 'e'): ConfiguredAddress {
    const a = this.#configured[letter === 'i' ? 0 : 1];
    return a ?? this.#default();
  }
}
