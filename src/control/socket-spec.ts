import { isIPv4, isIPv6 } from 'node:net';
import type { ControlSocketSpec } from '../base/config.ts';

/** Port used when a `udp:`/`tcp:` control socket gives none (docs/protocol.md 2.1). */
export const DEFAULT_CONTROL_PORT = 22222;

type InetKind = 'udp' | 'udp6' | 'tcp' | 'tcp6' | 'ng-udp' | 'ng-udp6';

/**
 * Longest unix socket path in bytes: `sun_path` holds 108 bytes on Linux, the terminating NUL
 * included. A longer path would be cut short by the kernel, and the socket created at a name
 * nobody asked for.
 */
const MAX_UNIX_PATH_BYTES = 107;

const INET_KINDS: readonly InetKind[] = ['udp', 'udp6', 'tcp', 'tcp6'];

// Prefixes the reference knows but we do not implement: fd: only exists in the library build,
// systemd: needs socket activation, which Node cannot take over without native code.
const UNSUPPORTED = ['systemd:', 'fd:'] as const;

/**
 * Parses one `-s` value (docs/protocol.md 2.1). Pure: no resolution, no file system access.
 * Host `*` becomes the wildcard address of the family; the port is split at the LAST colon.
 */
export function parseSocketSpec(text: string): ControlSocketSpec | { error: string } {
  for (const prefix of UNSUPPORTED) {
    if (text.startsWith(prefix)) return { error: `${prefix} control sockets are not supported` };
  }
  if (text === 'stdio:' || text === 'stdioc:') {
    return { kind: text === 'stdio:' ? 'stdio' : 'stdioc' };
  }
  if (text.startsWith('stdio:') || text.startsWith('stdioc:')) {
    return {
      error: `${text.slice(0, text.indexOf(':') + 1)} takes no argument: ${JSON.stringify(text)}`,
    };
  }
  for (const kind of ['cunix', 'unix'] as const) {
    if (text.startsWith(`${kind}:`)) return unixSpec(kind, text.slice(kind.length + 1), text);
  }
  for (const kind of INET_KINDS) {
    if (text.startsWith(`${kind}:`)) return inetSpec(kind, text.slice(kind.length + 1), text);
  }
  // The ng protocol (docs/ng.md): `ng:udp:HOST[:PORT]`, `ng:udp6:HOST[:PORT]`.
  if (text.startsWith('ng:')) {
    for (const kind of ['udp', 'udp6'] as const) {
      const prefix = `ng:${kind}:`;
      if (text.startsWith(prefix)) return inetSpec(`ng-${kind}`, text.slice(prefix.length), text);
    }
    return { error: `the ng protocol listens on ng:udp:HOST:PORT or ng:udp6:[HOST]:PORT` };
  }
  // The reference treats anything without a known prefix as a unix: path.
  return unixSpec('unix', text, text);
}

/** The canonical `-s` text of a spec, for logs and error messages. */
export function formatSocketSpec(spec: ControlSocketSpec): string {
  switch (spec.kind) {
    case 'unix':
    case 'cunix':
      return `${spec.kind}:${spec.path}`;
    case 'udp':
    case 'udp6':
    case 'tcp':
    case 'tcp6':
    case 'ng-udp':
    case 'ng-udp6': {
      const kind = spec.kind.startsWith('ng-') ? `ng:${spec.kind.slice(3)}` : spec.kind;
      return spec.host.includes(':')
        ? `${kind}:[${spec.host}]:${String(spec.port)}`
        : `${kind}:${spec.host}:${String(spec.port)}`;
    }
    case 'stdio':
    case 'stdioc':
      return `${spec.kind}:`;
  }
}

function unixSpec(
  kind: 'unix' | 'cunix',
  path: string,
  text: string,
): ControlSocketSpec | { error: string } {
  if (path === '') return { error: `empty socket path in ${JSON.stringify(text)}` };
  if (path.includes('\0')) return { error: `NUL byte in socket path ${JSON.stringify(text)}` };
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    return {
      error: `the socket path is ${String(bytes)} bytes long; the system allows at most ${String(MAX_UNIX_PATH_BYTES)}`,
    };
  }
  return { kind, path };
}

function inetSpec(
  kind: InetKind,
  rest: string,
  text: string,
): ControlSocketSpec | { error: string } {
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return { error: `missing ']' in ${JSON.stringify(text)}` };
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return { error: `junk after ']' in ${JSON.stringify(text)}` };
      portText = after.slice(1);
    }
  } else {
    // Last colon, as the reference does: `udp6:::1` is host `::` port 1, not host `::1`.
    const colon = rest.lastIndexOf(':');
    if (colon < 0) {
      host = rest;
    } else {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    }
  }
  if (host === '') return { error: `empty host in ${JSON.stringify(text)}` };
  const label = kind.startsWith('ng-') ? `ng:${kind.slice(3)}` : kind;
  const v6 = kind === 'udp6' || kind === 'tcp6' || kind === 'ng-udp6';
  if (host === '*') host = v6 ? '::' : '0.0.0.0';
  // Caught here rather than at bind time, where the message would not say why.
  if (v6 && (isIPv4(host) || (host.includes(':') && !isIPv6(host)))) {
    return {
      error: `bad IPv6 address ${JSON.stringify(host)} in ${JSON.stringify(text)} (the port is split at the last colon: give one, e.g. ${label}:[::1]:${String(DEFAULT_CONTROL_PORT)})`,
    };
  }
  if (!v6 && isIPv6(host)) {
    return { error: `IPv6 address in ${JSON.stringify(text)}: use ${label}6:` };
  }
  let port = DEFAULT_CONTROL_PORT;
  // An empty port (`udp:HOST:`) means the default, as in the reference.
  if (portText !== undefined && portText !== '') {
    // Port 0 is allowed so tests (and a daemon that reports its port) can let the kernel pick.
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
      return { error: `bad port ${JSON.stringify(portText)} in ${JSON.stringify(text)}` };
    }
    port = Number(portText);
  }
  return { kind, host, port };
}
