/**
 * The admin listener (`--http ADDR:PORT`, docs/admin-api.md): Prometheus metrics at `/metrics`,
 * and a small JSON API to see and steer the relay: `/health`, `/sessions`, `/sessions/{callid}`,
 * `/drain`. node:http, no framework: five routes, JSON in and out.
 *
 * Like the control protocol it has no authentication: it listens on loopback unless the operator
 * binds it elsewhere, and then the daemon warns at start. Requests are bounded (headers, time,
 * connections); a request body is never read.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Session } from '../session/session.ts';
import { formatHostPort } from '../util/net.ts';
import type { DaemonMetrics } from './metrics.ts';
import { detail, listSessions, parseSessionFilter, type SessionViewContext } from './sessions.ts';

/** What the admin API needs from the daemon. */
export interface AdminDeps {
  readonly metrics: DaemonMetrics;
  readonly logger: Logger;
  /** Brings the counters up to date (media workers, the kernel path, ended sessions). */
  refresh(): Promise<void>;
  sessions(): Iterable<Session>;
  sessionsOf(callId: string): readonly Session[];
  /** Destroys every session of the call; how many there were. */
  deleteCall(callId: string): number;
  /** Live sessions. */
  count(): number;
  draining(): boolean;
  overloaded(): boolean;
  /** Starts the drain (as SIGHUP does). */
  drain(): void;
  view(): SessionViewContext;
}

/** Bounds of one request. */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const MAX_CONNECTIONS = 64;

type Handler = (req: http.IncomingMessage, url: URL, match: string | undefined) => Promise<Reply>;

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly type?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

interface Route {
  /** An exact path, or a prefix ending in `/` whose rest is the parameter. */
  readonly path: string;
  readonly methods: Readonly<Record<string, Handler>>;
}

export class AdminServer {
  readonly #deps: AdminDeps;
  readonly #server: http.Server;
  readonly #routes: readonly Route[];
  #closing: Promise<void> | undefined;

  constructor(deps: AdminDeps) {
    this.#deps = deps;
    this.#routes = [
      { path: '/metrics', methods: { GET: () => this.#metrics() } },
      { path: '/health', methods: { GET: () => Promise.resolve(this.#health()) } },
      { path: '/sessions', methods: { GET: (_req, url) => this.#list(url) } },
      {
        path: '/sessions/',
        methods: {
          GET: (_req, _url, callId) => this.#show(callId ?? ''),
          DELETE: (_req, _url, callId) => Promise.resolve(this.#delete(callId ?? '')),
        },
      },
      { path: '/drain', methods: { POST: () => Promise.resolve(this.#drain()) } },
    ];
    this.#server = http.createServer((req, res) => {
      void this.#serve(req, res);
    });
    this.#server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.#server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.#server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.#server.maxConnections = MAX_CONNECTIONS;
    this.#server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Binds; rejects with an Error naming the address when it cannot. */
  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new Error(`cannot listen on ${formatHostPort(host, port)} (--http): ${err.message}`),
        );
      };
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => {
          this.#deps.logger.error({ err }, 'admin listener failed');
        });
        resolve();
      });
    });
  }

  /** The bound address, once listening. */
  get address(): AddressInfo | undefined {
    const a = this.#server.address();
    return a === null || typeof a === 'string' ? undefined : a;
  }

  /** Stops listening and ends open connections; idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // No route takes a body: it is discarded, not buffered.
    req.resume();
    let reply: Reply;
    try {
      reply = await this.#route(req);
    } catch (err) {
      this.#deps.logger.error({ err, url: req.url, method: req.method }, 'admin request failed');
      reply = json(500, { error: 'internal error' });
    }
    const head = req.method === 'HEAD';
    res.writeHead(reply.status, {
      'content-type': reply.type ?? 'application/json',
      'cache-control': 'no-store',
      ...reply.headers,
    });
    res.end(head ? undefined : reply.body);
  }

  #route(req: http.IncomingMessage): Promise<Reply> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      return Promise.resolve(json(400, { error: 'malformed request target' }));
    }
    for (const route of this.#routes) {
      let param: string | undefined;
      if (route.path.endsWith('/')) {
        if (!url.pathname.startsWith(route.path) || url.pathname.length === route.path.length) {
          continue;
        }
        const raw = url.pathname.slice(route.path.length);
        if (raw.includes('/')) continue;
        try {
          param = decodeURIComponent(raw);
        } catch {
          return Promise.resolve(json(400, { error: 'malformed %-encoding in the call-id' }));
        }
      } else if (url.pathname !== route.path) continue;
      const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');
      const handler = route.methods[method];
      if (handler === undefined) {
        const allow = Object.keys(route.methods);
        if (allow.includes('GET')) allow.push('HEAD');
        return Promise.resolve(
          json(
            405,
            { error: `${req.method ?? ''} is not allowed on ${url.pathname}` },
            { allow: allow.join(', ') },
          ),
        );
      }
      return handler(req, url, param);
    }
    return Promise.resolve(json(404, { error: `no such resource: ${url.pathname}` }));
  }

  async #metrics(): Promise<Reply> {
    await this.#deps.refresh();
    const metrics = this.#deps.metrics;
    return { status: 200, body: await metrics.text(), type: metrics.contentType };
  }

  #health(): Reply {
    const deps = this.#deps;
    const draining = deps.draining();
    const overloaded = deps.overloaded();
    const status = draining ? 'draining' : overloaded ? 'overloaded' : 'serving';
    return json(status === 'serving' ? 200 : 503, {
      status,
      draining,
      overloaded,
      sessions: deps.count(),
    });
  }

  async #list(url: URL): Promise<Reply> {
    const filter = parseSessionFilter(url.searchParams);
    if ('error' in filter) return json(400, { error: filter.error });
    await this.#deps.refresh();
    const page = listSessions(this.#deps.sessions(), filter, this.#deps.view());
    return json(200, {
      total: page.total,
      offset: filter.offset,
      limit: filter.limit,
      sessions: page.sessions,
    });
  }

  async #show(callId: string): Promise<Reply> {
    if (this.#deps.sessionsOf(callId).length === 0) return notFound(callId);
    await this.#deps.refresh();
    const sessions = this.#deps.sessionsOf(callId);
    if (sessions.length === 0) return notFound(callId);
    const view = this.#deps.view();
    return json(200, { callId, sessions: sessions.map((s) => detail(s, view)) });
  }

  #delete(callId: string): Reply {
    const deleted = this.#deps.deleteCall(callId);
    if (deleted === 0) return notFound(callId);
    this.#deps.logger.info({ callId, sessions: deleted }, 'sessions deleted through the admin API');
    return json(200, { deleted });
  }

  #drain(): Reply {
    this.#deps.drain();
    return json(202, { draining: true, sessions: this.#deps.count() });
  }
}

function json(status: number, value: unknown, headers?: Readonly<Record<string, string>>): Reply {
  return {
    status,
    body: `${JSON.stringify(value)}\n`,
    ...(headers === undefined ? {} : { headers }),
  };
}

function notFound(callId: string): Reply {
  return json(404, { error: `no session with call-id ${JSON.stringify(callId)}` });
}
