/**
 * The transports of `rtpproxyctl`: one command line over a control socket, framed as the daemon
 * expects it on that socket kind (docs/protocol.md 2.1, 2.5), and one request to the admin HTTP
 * API. Every wait has the caller's deadline; every failure is a {@link CtlError} whose message is
 * one line an operator can act on.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { ControlSocketSpec } from '../base/config.ts';
import { formatSocketSpec } from '../control/socket-spec.ts';
import { errorMessage } from '../util/error-message.ts';

/** An expected failure of an operation (exit status 1): its message is the whole story. */
export class CtlError extends Error {
  override readonly name = 'CtlError';
}

/**
 * A control socket the tool can connect to: every `-s` kind of the rtpproxy protocol but the
 * daemon's own stdio (`ng:` sockets speak rtpengine's protocol).
 */
export type ConnectableSpec = Exclude<
  ControlSocketSpec,
  { kind: 'stdio' | 'stdioc' | 'ng-udp' | 'ng-udp6' }
>;

/** Why the tool cannot connect to `spec`, or undefined when it can. */
export function unconnectable(spec: ControlSocketSpec): string | undefined {
  switch (spec.kind) {
    case 'stdio':
    case 'stdioc':
      return `${spec.kind}: is the daemon's own stdin, not a socket to connect to`;
    case 'ng-udp':
    case 'ng-udp6':
      return 'an ng: socket speaks the ng protocol (docs/ng.md); give an rtpproxy control socket';
    case 'unix':
    case 'cunix':
    case 'udp':
    case 'udp6':
    case 'tcp':
    case 'tcp6':
      return undefined;
  }
}

/** Whether the tool can connect to `spec` (see {@link unconnectable}). */
export function isConnectable(spec: ControlSocketSpec): spec is ConnectableSpec {
  return unconnectable(spec) === undefined;
}

/**
 * How many times a UDP command is sent within the deadline, at even intervals, always with the
 * same cookie: the daemon answers a repeat from its reply cache and never runs the command twice
 * (docs/protocol.md 2.7). Kamailio and OpenSIPS retransmit the same way.
 */
const UDP_SENDS = 4;

/** Largest reply read from a stream socket (an `Iv` on a busy daemon has one line per session). */
const MAX_STREAM_REPLY = 16 * 1024 * 1024;

let cookieSeq = 0;

/** A cookie unique to this process and command: the daemon's reply cache is shared by all clients. */
function newCookie(): string {
  cookieSeq += 1;
  return `ctl${String(process.pid)}_${randomBytes(4).toString('hex')}_${String(cookieSeq)}`;
}

/**
 * Sends `line` to the control socket `spec` and resolves with the reply text, without the cookie
 * and without the final LF (an `I` reply keeps its inner LFs). Rejects with a CtlError when the
 * socket cannot be reached or does not answer within `timeoutMs`.
 */
export function controlCommand(
  spec: ConnectableSpec,
  line: string,
  timeoutMs: number,
): Promise<string> {
  let reply: Promise<string>;
  switch (spec.kind) {
    case 'udp':
    case 'udp6':
      reply = udpCommand(spec, line, timeoutMs);
      break;
    case 'unix':
    case 'cunix':
    case 'tcp':
    case 'tcp6':
      reply = streamCommand(spec, line, timeoutMs);
      break;
  }
  return reply.then((text) => (text.endsWith('\n') ? text.slice(0, -1) : text));
}

/**
 * One datagram `COOKIE LINE`, sent again until the `COOKIE REPLY` datagram comes. The socket is
 * connected, as Kamailio's is, so that the kernel reports a closed port (ICMP port unreachable)
 * at once instead of leaving us to wait for the deadline.
 */
function udpCommand(
  spec: Extract<ConnectableSpec, { kind: 'udp' | 'udp6' }>,
  line: string,
  timeoutMs: number,
): Promise<string> {
  const name = formatSocketSpec(spec);
  const cookie = newCookie();
  const prefix = `${cookie} `;
  const datagram = Buffer.from(`${prefix}${line}`, 'latin1');
  const socket = dgram.createSocket(spec.kind === 'udp6' ? 'udp6' : 'udp4');
  return new Promise<string>((resolve, reject) => {
    let sends = 0;
    let retransmit: NodeJS.Timeout | undefined;
    const finish = (outcome: { reply: string } | { error: CtlError }): void => {
      clearTimeout(deadline);
      clearInterval(retransmit);
      socket.removeAllListeners('message');
      socket.on('error', () => undefined);
      socket.close();
      if ('reply' in outcome) resolve(outcome.reply);
      else reject(outcome.error);
    };
    const deadline = setTimeout(() => {
      finish({ error: noAnswer(name, timeoutMs) });
    }, timeoutMs);
    const send = (): void => {
      if (sends >= UDP_SENDS) return;
      sends += 1;
      socket.send(datagram, (err) => {
        if (err !== null) finish({ error: unreachable(name, err) });
      });
    };
    socket.on('error', (err) => {
      finish({ error: unreachable(name, err) });
    });
    socket.on('message', (msg) => {
      const text = msg.toString('latin1');
      // A late reply to another command of this socket, or anything else: not ours.
      if (text.startsWith(prefix)) finish({ reply: text.slice(prefix.length) });
    });
    socket.once('connect', () => {
      send();
      retransmit = setInterval(send, Math.max(1, Math.floor(timeoutMs / UDP_SENDS)));
    });
    socket.connect(spec.port, spec.host);
  });
}

/**
 * One command over a stream socket: the line with its LF, then our end of the connection is shut,
 * and the reply is everything the daemon writes until it closes. That suits every stream kind:
 * `unix:` answers one command and closes; `cunix:` and `tcp:` close once the last reply after
 * our EOF is written (docs/protocol.md 2.1), so a reply of several lines (`I`) needs no framing.
 */
function streamCommand(
  spec: Extract<ConnectableSpec, { kind: 'unix' | 'cunix' | 'tcp' | 'tcp6' }>,
  line: string,
  timeoutMs: number,
): Promise<string> {
  const name = formatSocketSpec(spec);
  const socket =
    'path' in spec
      ? net.connect({ path: spec.path })
      : net.connect({ host: spec.host, port: spec.port, family: spec.kind === 'tcp6' ? 6 : 4 });
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let connected = false;
    const finish = (outcome: { reply: string } | { error: CtlError }): void => {
      clearTimeout(deadline);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      if ('reply' in outcome) resolve(outcome.reply);
      else reject(outcome.error);
    };
    const deadline = setTimeout(() => {
      finish({ error: noAnswer(name, timeoutMs) });
    }, timeoutMs);
    socket.on('error', (err) => {
      finish({
        error: connected ? new CtlError(`${name}: ${describe(err)}`) : unreachable(name, err),
      });
    });
    socket.once('connect', () => {
      connected = true;
      socket.end(`${line}\n`, 'latin1');
    });
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_STREAM_REPLY) {
        finish({
          error: new CtlError(`${name}: reply longer than ${String(MAX_STREAM_REPLY)} bytes`),
        });
        return;
      }
      chunks.push(chunk);
    });
    socket.once('end', () => {
      if (size === 0) {
        finish({ error: new CtlError(`${name} closed the connection without a reply`) });
      } else {
        finish({ reply: Buffer.concat(chunks).toString('latin1') });
      }
    });
  });
}

/** What the admin API answered: the status and the parsed JSON body. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * One request to the admin API at `base` (e.g. `http://127.0.0.1:9090`): `path` is appended to
 * the base's own path, `query` becomes the query string. Resolves with any status the server
 * answered with a JSON body; rejects with a CtlError when it cannot be reached, does not answer
 * within `timeoutMs`, or answers something that is not JSON.
 */
export async function httpRequest(
  base: URL,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  timeoutMs: number,
  query: Readonly<Record<string, string>> = {},
): Promise<HttpAnswer> {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.search = new URLSearchParams(query).toString();
  const where = `${method} ${url.href}`;
  let status: number;
  let text: string;
  try {
    const response = await fetch(url, {
      method,
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    text = await response.text();
  } catch (err) {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
      throw noAnswer(url.origin, timeoutMs);
    }
    throw unreachable(
      url.origin,
      err instanceof Error && err.cause !== undefined ? err.cause : err,
    );
  }
  try {
    return { status, body: JSON.parse(text) as unknown };
  } catch {
    throw new CtlError(`${where}: answered ${String(status)} with a body that is not JSON`);
  }
}

function noAnswer(name: string, timeoutMs: number): CtlError {
  return new CtlError(`no answer from ${name} within ${String(timeoutMs)} ms`);
}

function unreachable(name: string, err: unknown): CtlError {
  const hint =
    isErrno(err, 'ECONNREFUSED') || isErrno(err, 'ENOENT') ? ' (is the daemon running?)' : '';
  return new CtlError(`cannot reach ${name}: ${describe(err)}${hint}`);
}

/** Plain words for the errors an operator meets; anything else by its own message. */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOENT: 'no such socket file',
  EACCES: 'permission denied',
  ENOTSOCK: 'not a socket',
  ENOTFOUND: 'unknown host',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  EPIPE: 'connection closed',
};

function describe(err: unknown): string {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  if (code !== undefined && Object.hasOwn(ERRNO_TEXT, code)) return ERRNO_TEXT[code] ?? code;
  return errorMessage(err).split('\n')[0] ?? 'error';
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
