/**
 * Validation of the media addresses: `-l` and `-6` (labels, advertised addresses, bridge mode)
 * and `-A`, following the reference's `init_bindaddrs()` and `bindarg_parse()`
 * (sippy/rtpproxy src/main.c).
 */
import { isIP } from 'node:net';
import type { LocalAddress } from '../base/config.ts';
import type { Family } from '../base/net.ts';
import { DEFAULTS, type Fail } from './config-defaults.ts';
import type { ListenArg, RawOptions } from './options.ts';

/**
 * True when the address is a host name that still has to be resolved (with `dns.lookup`, in the
 * address's family) before the daemon can bind it. `buildConfig` keeps names as given; with
 * `--no_resolve` it refuses them instead.
 */
export function needsResolution(address: LocalAddress): boolean {
  return isIP(address.address) === 0;
}

interface SplitListen {
  readonly flag: '-l' | '-6';
  readonly family: Family;
  readonly text: string;
  readonly label?: string;
  readonly advertised?: string;
  /** The address part, still possibly `A/B`. */
  readonly host: string;
}

/** `[label@]ADDR[=ADV]`, split as the reference's `bindarg_parse()` does (first `@`, then first `=`). */
function splitListen(arg: ListenArg): SplitListen {
  let rest = arg.value;
  let label: string | undefined;
  let advertised: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    label = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  const eq = rest.indexOf('=');
  if (eq !== -1) {
    advertised = rest.slice(eq + 1);
    rest = rest.slice(0, eq);
  }
  return {
    flag: arg.family === 4 ? '-l' : '-6',
    family: arg.family,
    text: arg.value,
    host: rest,
    ...(label === undefined ? {} : { label }),
    ...(advertised === undefined ? {} : { advertised }),
  };
}

/** Validates the address part of `-l`/`-6`; returns the address to store (wildcards normalised). */
function checkHost(
  host: string,
  arg: SplitListen,
  noResolve: boolean,
  fail: Fail,
): string | undefined {
  const { flag, family, text } = arg;
  const what = family === 4 ? 'IPv4' : 'IPv6';
  if (host === '') return fail(flag, `${JSON.stringify(text)}: the address is empty`);
  if (host === '*') return family === 4 ? '0.0.0.0' : '::';
  const ipFamily = isIP(host);
  if (ipFamily === family) return host;
  if (ipFamily !== 0) {
    const other = family === 4 ? '-6' : '-l';
    return fail(flag, `${JSON.stringify(host)} is not an ${what} address; give it with ${other}`);
  }
  if (host.startsWith('[')) {
    return fail(flag, `${JSON.stringify(host)}: write IPv6 addresses without brackets`);
  }
  if (!/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/.test(host)) {
    return fail(
      flag,
      `${JSON.stringify(host)} is neither a numeric ${what} address nor a host name`,
    );
  }
  if (noResolve) {
    return fail(
      flag,
      `${JSON.stringify(host)} is not a numeric ${what} address, and --no_resolve forbids name lookups`,
    );
  }
  return host;
}

/**
 * Local addresses from `-l`/`-6`/`-A`, following the reference's `init_bindaddrs()` (docs/protocol.md
 * 4.6): the first `-l` and the first `-6` decide bridge mode; in bridge mode both of them make up
 * the internal/external pair; every other address needs a unique label.
 */
export function buildAddresses(
  raw: RawOptions,
  fail: Fail,
): { addresses: LocalAddress[]; bridge: boolean } | undefined {
  const advertisedPair = parseAdvertisedOption(raw.advertised, fail);
  if (raw.listen.length === 0) {
    return { addresses: [{ address: '0.0.0.0', family: 4 }], bridge: false };
  }
  if (raw.listen.length > DEFAULTS.maxAddresses) {
    return fail(
      '-l/-6',
      `at most ${String(DEFAULTS.maxAddresses)} local addresses can be given, got ${String(raw.listen.length)}`,
    );
  }
  const args = raw.listen.map(splitListen);
  /** Address part still to be processed per argument; undefined once the bridge pair took it. */
  const hosts: (string | undefined)[] = args.map((a) => a.host);
  const firstOf = [args.findIndex((a) => a.family === 4), args.findIndex((a) => a.family === 6)];
  const addresses: LocalAddress[] = [];
  let errorCount = 0;
  const failCounted: Fail = (flag, message) => {
    errorCount++;
    return fail(flag, message);
  };

  let external: { arg: SplitListen; host: string } | undefined;
  for (const i of firstOf) {
    const arg = args[i];
    const host = hosts[i];
    if (arg === undefined || host === undefined) continue;
    const slash = host.indexOf('/');
    if (slash === -1) continue;
    if (external !== undefined) {
      return fail(
        '-l/-6',
        'bridge mode: the external (second) address is given by both the first -l and the first -6 (A/B); give it only once',
      );
    }
    external = { arg, host: host.slice(slash + 1) };
    hosts[i] = slash === 0 ? undefined : host.slice(0, slash);
  }
  const bridge = external !== undefined;

  if (external !== undefined) {
    let internal: { arg: SplitListen; host: string } | undefined;
    for (const i of firstOf) {
      const arg = args[i];
      const host = hosts[i];
      if (arg === undefined || host === undefined) continue;
      if (internal !== undefined) {
        return fail(
          '-l/-6',
          'bridge mode needs exactly two addresses, but the first -l and the first -6 both give an internal (first) address; write the other one as a labelled address after them, or use the -l A -6 /B form',
        );
      }
      internal = { arg, host };
      hosts[i] = undefined;
    }
    if (internal === undefined) {
      return fail(
        '-l/-6',
        'bridge mode needs exactly two addresses: -l INTERNAL/EXTERNAL (or one half from -6, such as -l 10.0.0.1 -6 /2001:db8::1)',
      );
    }
    if (advertisedPair !== undefined && advertisedPair.external === undefined) {
      failCounted(
        '-A',
        'bridge mode needs two advertised addresses, for the internal and the external address: -A ADV1/ADV2',
      );
    }
    const pair = [
      { part: internal, advertised: advertisedPair?.internal },
      { part: external, advertised: advertisedPair?.external },
    ];
    for (const { part, advertised } of pair) {
      const { arg } = part;
      if (arg.label !== undefined) {
        failCounted(
          arg.flag,
          `${JSON.stringify(arg.text)}: bridge mode addresses cannot have a label`,
        );
        continue;
      }
      if (arg.advertised !== undefined) {
        failCounted(
          arg.flag,
          `${JSON.stringify(arg.text)}: bridge mode addresses cannot have an advertised address (=ADV); use -A ADV1/ADV2`,
        );
        continue;
      }
      const address = checkHost(part.host, arg, raw.noResolve, failCounted);
      if (address === undefined) continue;
      addresses.push({
        address,
        family: arg.family,
        ...(advertised === undefined ? {} : { advertised }),
      });
    }
  }

  const labels = new Set<string>();
  args.forEach((arg, i) => {
    const host = hosts[i];
    if (host === undefined) return;
    if (arg.label === '') {
      failCounted(arg.flag, `${JSON.stringify(arg.text)}: the label before '@' is empty`);
      return;
    }
    const isFirst = !bridge && i === hosts.findIndex((h) => h !== undefined);
    if (!isFirst && arg.label === undefined) {
      failCounted(
        arg.flag,
        `${JSON.stringify(arg.text)}: address label is missing; every local address after the first${bridge ? ' (and after the bridge pair)' : ''} needs one, as in ${arg.flag} name@${arg.family === 4 ? '192.0.2.1' : '2001:db8::1'}`,
      );
      return;
    }
    if (host.includes('/')) {
      failCounted(
        arg.flag,
        `${JSON.stringify(arg.text)}: only the first ${arg.flag} address can have the bridge form A/B`,
      );
      return;
    }
    if (arg.advertised === '') {
      failCounted(
        arg.flag,
        `${JSON.stringify(arg.text)}: the advertised address after '=' is empty`,
      );
      return;
    }
    if (arg.label !== undefined) {
      if (labels.has(arg.label)) {
        failCounted(
          arg.flag,
          `${JSON.stringify(arg.text)}: the label ${JSON.stringify(arg.label)} is used twice`,
        );
        return;
      }
      labels.add(arg.label);
    }
    const address = checkHost(host, arg, raw.noResolve, failCounted);
    if (address === undefined) return;
    addresses.push({
      address,
      family: arg.family,
      ...(arg.label === undefined ? {} : { label: arg.label }),
      ...(arg.advertised === undefined ? {} : { advertised: arg.advertised }),
    });
  });

  if (errorCount > 0) return undefined;
  return { addresses, bridge };
}

/** `-A ADV1[/ADV2]`; checked even outside bridge mode, where it is otherwise ignored. */
function parseAdvertisedOption(
  value: string | undefined,
  fail: Fail,
): { internal: string; external?: string } | undefined {
  if (value === undefined) return undefined;
  const slash = value.indexOf('/');
  const internal = slash === -1 ? value : value.slice(0, slash);
  const external = slash === -1 ? undefined : value.slice(slash + 1);
  if (internal === '') {
    return fail('-A', `${JSON.stringify(value)}: the first advertised address is empty`);
  }
  if (external === '') {
    return fail('-A', `${JSON.stringify(value)}: the second advertised address is empty`);
  }
  return external === undefined ? { internal } : { internal, external };
}
