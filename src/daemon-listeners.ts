/**
 * The control listeners the daemon opens, one per control socket of the Config: which class
 * serves which kind, the unix socket's owner and mode, whether the end of stdin ends the daemon,
 * and the warning about a network socket other hosts can reach.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './base/config.ts';
import { controlSocketExposure } from './control/exposure.ts';
import { StdioControlListener, StreamControlListener } from './control/listener-stream.ts';
import { type DatagramFraming, UdpControlListener } from './control/listener-udp.ts';
import type { ReplyCache } from './control/reply-cache.ts';
import type { CommandRunner, ControlListener } from './control/runner.ts';
import { formatSocketSpec } from './control/socket-spec.ts';
import type { OwnEndpoints } from './media/own-endpoints.ts';

/** A control listener with the address it bound (tests bind port 0). */
export interface BoundListener extends ControlListener {
  readonly port?: number;
  address?(): AddressInfo | string;
}

/** What every control listener is made with. */
export interface ListenerDeps {
  readonly config: Config;
  readonly runner: CommandRunner;
  readonly cache: ReplyCache;
  readonly log: Logger;
  readonly own: OwnEndpoints;
  /** The end of stdin ends the daemon (see {@link stdinEndsDaemon}). */
  readonly onStdioEof: () => void;
  /**
   * The ng protocol's framing and its reply cache (its cookies are not the rtpproxy protocol's);
   * given when an ng socket is configured.
   */
  readonly ng?: { readonly framing: DatagramFraming; readonly cache: ReplyCache };
}

/** The listener of one control socket, not yet listening. */
export function createControlListener(
  spec: Config['controlSockets'][number],
  deps: ListenerDeps,
): BoundListener {
  const { config, runner, cache, log, own } = deps;
  switch (spec.kind) {
    case 'udp':
    case 'udp6':
      return new UdpControlListener({ spec, runner, cache, log, own });
    case 'ng-udp':
    case 'ng-udp6': {
      const ng = deps.ng;
      if (ng === undefined) throw new Error('the ng protocol was not loaded');
      return new UdpControlListener({
        spec,
        runner,
        cache: ng.cache,
        log,
        own,
        framing: ng.framing,
      });
    }
    case 'stdio':
    case 'stdioc':
      return new StdioControlListener({
        kind: spec.kind,
        input: process.stdin,
        output: process.stdout,
        runner,
        log,
        ...(stdinEndsDaemon(spec.kind, config.controlSockets)
          ? { onEof: () => deps.onStdioEof() }
          : {}),
      });
    case 'unix':
    case 'cunix':
    case 'tcp':
    case 'tcp6':
      return new StreamControlListener({ spec, runner, log, ...unixOwnership(config, spec) });
  }
}

/** `-u`/`-w` for unix control sockets: chown when a user or group is given, and the mode. */
function unixOwnership(
  c: Config,
  spec: Config['controlSockets'][number],
): { owner?: { uid: number; gid: number }; mode?: number } {
  if (spec.kind !== 'unix' && spec.kind !== 'cunix') return {};
  return {
    ...(c.uid === undefined && c.gid === undefined
      ? {}
      : { owner: { uid: c.uid ?? -1, gid: c.gid ?? -1 } }),
    ...(c.socketMode === undefined ? {} : { mode: c.socketMode }),
  };
}

/**
 * Whether the end of stdin ends the daemon (a graceful drain: new sessions refused, exit 0 once
 * none is left), as the reference decides it (sippy/rtpproxy src/rtpp_command_async.c, init_pollset
 * and rtpp_cmd_queue_run): always for `stdioc:`, and for `stdio:` when it is the only control
 * socket read without accepting connections, that is with no udp:/udp6: socket beside it (unix:,
 * cunix:, tcp: and tcp6: listeners do not count).
 */
function stdinEndsDaemon(kind: 'stdio' | 'stdioc', sockets: Config['controlSockets']): boolean {
  if (kind === 'stdioc') return true;
  const polled = sockets.filter(
    (s) => s.kind === 'udp' || s.kind === 'udp6' || s.kind === 'stdio' || s.kind === 'stdioc',
  );
  return polled.length === 1;
}

/**
 * Warns at start about a network control socket that other hosts can reach: the control
 * protocol has no authentication, so anyone who reaches it controls the daemon.
 */
export function warnIfExposed(
  spec: Config['controlSockets'][number],
  listener: BoundListener,
  log: Logger,
): void {
  const bound = listener.address?.();
  if (bound === undefined || typeof bound === 'string') return;
  const exposure = controlSocketExposure(bound.address);
  if (exposure === undefined) return;
  log.warn(
    { socket: formatSocketSpec(spec), address: bound.address, port: bound.port },
    `control socket ${formatSocketSpec(spec)} listens on ${exposure === 'wildcard' ? 'every interface' : 'an address other hosts can reach'}, and the control protocol has no authentication: anyone who can reach it can control the daemon. Bind it to 127.0.0.1 or ::1, use a unix: socket, or allow only the SIP proxies with a firewall`,
  );
}
