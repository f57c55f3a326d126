/**
 * Timeout notification targets (`-n`, docs/protocol.md 8.1) and how the NOTIFY_SOCKET of a `U` is
 * matched against them (8.3), after the reference's `src/rtpp_tnotify_set.c`. Pure: no sockets,
 * no DNS; the command line validation and the notification client share it.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The reference's limits: fixed targets (including those made from a wildcard) and wildcards. */
export const MAX_NOTIFY_TARGETS = 64;
const MAX_NOTIFY_WILDCARDS = 2;

/** The host part of the wildcard target: the address the controlling command came from. */
const CC_SELF = '%%CC_SELF%%';

/** One parsed `-n` value. `name` is what NOTIFY_SOCKET is compared with. */
export type NotifyTargetSpec =
  /** `unix:PATH` or a bare `PATH` (stored as `unix:PATH`, as the reference does). */
  | { readonly kind: 'unix'; readonly name: string; readonly path: string }
  /** `tcp:HOST:PORT`: HOST is an IPv4 address or a name resolved for IPv4. */
  | { readonly kind: 'tcp'; readonly name: string; readonly host: string; readonly port: number }
  /** `tcp:%%CC_SELF%%:PORT`: TCP to the source address of each controlling command. */
  | { readonly kind: 'tcp-self'; readonly name: string; readonly port: number };

/**
 * Prefixes of other socket kinds. The reference would take such a value as a unix socket path
 * (`-n udp:10.0.0.1:9` names a file called `udp:10.0.0.1:9`); we refuse it instead, because
 * that is never what the operator meant.
 */
const NOT_A_PATH = ['udp:', 'udp6:', 'tcp6:', 'cunix:', 'xmlrpc:', 'http:', 'https:'] as const;

/**
 * Parses one `-n` value. `noResolve` (`--no_resolve`) refuses host names. Returns the spec or an
 * operator-readable reason.
 */
export function parseNotifyTarget(
  text: string,
  noResolve = false,
): NotifyTargetSpec | { readonly error: string } {
  if (text.startsWith('tcp:')) return parseTcp(text, noResolve);
  const bad = NOT_A_PATH.find((p) => text.startsWith(p));
  if (bad !== undefined) {
    return {
      error: `${JSON.stringify(text)}: notifications go over stream sockets; use unix:PATH or tcp:HOST:PORT (${bad} is not supported)`,
    };
  }
  const path = text.startsWith('unix:') ? text.slice(5) : text;
  if (path === '') return { error: `${JSON.stringify(text)}: the socket path is empty` };
  if (path.includes('\0')) return { error: `${JSON.stringify(text)}: NUL byte in the socket path` };
  return { kind: 'unix', name: `unix:${path}`, path };
}

function parseTcp(text: string, noResolve: boolean): NotifyTargetSpec | { readonly error: string } {
  const rest = text.slice(4);
  // The port is split off at the last colon, as the reference's parse_hostport() does.
  const colon = rest.lastIndexOf(':');
  if (colon <= 0 || colon === rest.length - 1) {
    return { error: `${JSON.stringify(text)}: expected tcp:HOST:PORT` };
  }
  const host = rest.slice(0, colon);
  const portText = rest.slice(colon + 1);
  const port = Number(portText);
  if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) {
    return { error: `${JSON.stringify(text)}: the port must be a number from 1 to 65535` };
  }
  if (host === CC_SELF) return { kind: 'tcp-self', name: text, port };
  if (isIPv6(host) || host.startsWith('[')) {
    return {
      error: `${JSON.stringify(text)}: notification targets are IPv4 only (as in the reference)`,
    };
  }
  if (!isIPv4(host)) {
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/.test(host)) {
      return {
        error: `${JSON.stringify(text)}: ${JSON.stringify(host)} is neither an IPv4 address nor a host name`,
      };
    }
    if (noResolve) {
      return {
        error: `${JSON.stringify(text)}: ${JSON.stringify(host)} is not a numeric address, and --no_resolve forbids name lookups`,
      };
    }
  }
  return { kind: 'tcp', name: text, host, port };
}

/**
 * Parses every `-n` value and applies the reference's limits. Returns the specs, or the errors
 * (one per bad value, plus one per exceeded limit).
 */
export function parseNotifyTargets(
  texts: readonly string[],
  noResolve = false,
): { readonly specs: readonly NotifyTargetSpec[]; readonly errors: readonly string[] } {
  const specs: NotifyTargetSpec[] = [];
  const errors: string[] = [];
  for (const text of texts) {
    const spec = parseNotifyTarget(text, noResolve);
    if ('error' in spec) errors.push(spec.error);
    else specs.push(spec);
  }
  const wildcards = specs.filter((s) => s.kind === 'tcp-self').length;
  if (specs.length - wildcards > MAX_NOTIFY_TARGETS) {
    errors.push(
      `at most ${String(MAX_NOTIFY_TARGETS)} notification targets can be given, got ${String(specs.length - wildcards)}`,
    );
  }
  if (wildcards > MAX_NOTIFY_WILDCARDS) {
    errors.push(
      `at most ${String(MAX_NOTIFY_WILDCARDS)} ${CC_SELF} notification targets can be given, got ${String(wildcards)}`,
    );
  }
  return { specs, errors };
}

/**
 * The configured target a NOTIFY_SOCKET names (docs/protocol.md 8.3): an exact match of the name
 * (bare paths were stored as `unix:PATH`); for a socket without `:`, a unix target by its path
 * (OpenSIPS sends bare paths); otherwise a wildcard by its literal text. The first match wins.
 */
export function matchNotifyTarget(
  specs: readonly NotifyTargetSpec[],
  socket: string,
): NotifyTargetSpec | undefined {
  const exact = specs.find((s) => s.name === socket);
  if (exact !== undefined) return exact;
  if (!socket.includes(':')) return specs.find((s) => s.kind === 'unix' && s.path === socket);
  return undefined;
}
