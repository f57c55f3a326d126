/**
 * The sessions as the admin API shows them (docs/admin-api.md): a summary per session for
 * `GET /sessions`, with its filters and paging, and the whole picture of a call for
 * `GET /sessions/{callid}`. Pure: reads the session model, writes plain JSON values.
 */
import type { Endpoint } from '../base/net.ts';
import type { MediaStream } from '../media/stream.ts';
import type { Component, Placement } from '../session/offload.ts';
import type { Leg, Session } from '../session/session.ts';

/** What the views need besides the sessions. */
export interface SessionViewContext {
  /** Monotonic ms, the clock of Session.createdAt. */
  readonly now: number;
  placement(session: Session, component: Component): Placement;
}

interface LegSummary {
  readonly side: 'callee' | 'caller';
  readonly local: Endpoint;
  readonly remote: Endpoint | null;
  readonly latched: boolean;
  readonly packetsIn: number;
  readonly relayed: number;
}

export interface SessionSummary {
  readonly callId: string;
  readonly tag: string;
  readonly state: 'setup' | 'active';
  readonly ageSeconds: number;
  readonly idleSeconds: number;
  readonly kernel: boolean;
  readonly legs: readonly [LegSummary, LegSummary];
}

interface StreamDetail {
  readonly remote: Endpoint | null;
  readonly latched: boolean;
  readonly path: 'kernel' | 'userspace';
  readonly reason?: string;
  readonly packetsIn: number;
  readonly bytesIn: number;
  readonly relayed: number;
  readonly dropped: number;
  readonly ignored: number;
  readonly sendErrors: number;
  readonly rtpa?: {
    readonly received: number;
    readonly duplicates: number;
    readonly lost: number;
    readonly sent: number;
    readonly perrs: number;
    readonly jitterLast: number;
    readonly jitterMax: number;
    readonly jitterAvg: number;
    readonly longestIpi: number;
  };
}

interface LegDetail {
  readonly side: 'callee' | 'caller';
  readonly local: Endpoint & { readonly advertised?: string };
  readonly ttlSeconds: number;
  readonly onHold: boolean;
  readonly weak: boolean;
  readonly recording: boolean;
  readonly playing: boolean;
  /** The leg's party is blocked (ng `block media`): the RTP it sends is dropped. */
  readonly blocked: boolean;
  readonly rtp: StreamDetail;
  readonly rtcp: StreamDetail;
}

export interface SessionDetail extends Omit<SessionSummary, 'legs'> {
  readonly legs: readonly [LegDetail, LegDetail];
}

/** `GET /sessions`' query: every field optional. */
export interface SessionFilter {
  readonly callIdPrefix?: string;
  readonly state?: 'setup' | 'active';
  readonly kernel?: boolean;
  readonly minAgeSeconds?: number;
  readonly minIdleSeconds?: number;
  readonly offset: number;
  readonly limit: number;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

const PARAMETERS = new Set(['callid', 'state', 'kernel', 'min_age', 'min_idle', 'offset', 'limit']);

/** Parses `GET /sessions`' query string; a message for the 400 reply when it is malformed. */
export function parseSessionFilter(query: URLSearchParams): SessionFilter | { error: string } {
  for (const name of query.keys()) {
    if (!PARAMETERS.has(name)) return { error: `unknown parameter ${JSON.stringify(name)}` };
    if (query.getAll(name).length > 1) return { error: `parameter ${name} given twice` };
  }
  const state = query.get('state');
  if (state !== null && state !== 'setup' && state !== 'active') {
    return { error: 'state must be setup or active' };
  }
  const kernel = query.get('kernel');
  if (kernel !== null && kernel !== 'yes' && kernel !== 'no') {
    return { error: 'kernel must be yes or no' };
  }
  const minAge = number(query, 'min_age', false, Number.MAX_SAFE_INTEGER);
  const minIdle = number(query, 'min_idle', false, Number.MAX_SAFE_INTEGER);
  const offset = number(query, 'offset', true, Number.MAX_SAFE_INTEGER);
  const limit = number(query, 'limit', true, MAX_LIMIT);
  for (const value of [minAge, minIdle, offset, limit]) {
    if (typeof value === 'string') return { error: value };
  }
  if (limit === 0) return { error: `limit must be an integer in 1..${String(MAX_LIMIT)}` };
  const callId = query.get('callid');
  return {
    ...(callId === null ? {} : { callIdPrefix: callId }),
    ...(state === null ? {} : { state }),
    ...(kernel === null ? {} : { kernel: kernel === 'yes' }),
    ...(typeof minAge === 'number' ? { minAgeSeconds: minAge } : {}),
    ...(typeof minIdle === 'number' ? { minIdleSeconds: minIdle } : {}),
    offset: typeof offset === 'number' ? offset : 0,
    limit: typeof limit === 'number' ? limit : DEFAULT_LIMIT,
  };
}

/** A non-negative number parameter: undefined when absent, a message when malformed. */
function number(
  query: URLSearchParams,
  name: string,
  integer: boolean,
  max: number,
): number | string | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  const pattern = integer ? /^\d{1,16}$/ : /^\d{1,16}(\.\d{1,6})?$/;
  const value = Number(text);
  if (!pattern.test(text) || value > max) {
    return `${name} must be ${integer ? 'an integer' : 'a number'} in 0..${String(max)}`;
  }
  return value;
}

/** The page of summaries the filter selects, oldest session first, and how many matched. */
export function listSessions(
  sessions: Iterable<Session>,
  filter: SessionFilter,
  ctx: SessionViewContext,
): { readonly total: number; readonly sessions: readonly SessionSummary[] } {
  const matched: SessionSummary[] = [];
  for (const session of sessions) {
    if (filter.callIdPrefix !== undefined && !session.callId.startsWith(filter.callIdPrefix)) {
      continue;
    }
    const summary = summarize(session, ctx);
    if (filter.state !== undefined && summary.state !== filter.state) continue;
    if (filter.kernel !== undefined && summary.kernel !== filter.kernel) continue;
    if (filter.minAgeSeconds !== undefined && summary.ageSeconds < filter.minAgeSeconds) continue;
    if (filter.minIdleSeconds !== undefined && summary.idleSeconds < filter.minIdleSeconds) {
      continue;
    }
    matched.push(summary);
  }
  matched.sort((a, b) => b.ageSeconds - a.ageSeconds);
  return {
    total: matched.length,
    sessions: matched.slice(filter.offset, filter.offset + filter.limit),
  };
}

function summarize(session: Session, ctx: SessionViewContext): SessionSummary {
  const legSummary = (leg: Leg): LegSummary => ({
    side: sideName(leg),
    local: { address: leg.local.address, port: leg.port },
    remote: remoteOf(leg.rtp),
    latched: leg.rtp.latched,
    packetsIn: leg.rtp.npktsIn + leg.rtcp.npktsIn,
    relayed: leg.rtp.nrelayed + leg.rtcp.nrelayed,
  });
  return {
    ...common(session, ctx),
    legs: [legSummary(session.legs[0]), legSummary(session.legs[1])],
  };
}

export function detail(session: Session, ctx: SessionViewContext): SessionDetail {
  const stream = (s: MediaStream, component: Component): StreamDetail => {
    const placement = ctx.placement(session, component);
    const a = s.rtpStats;
    return {
      remote: remoteOf(s),
      latched: s.latched,
      path: placement.path,
      ...(placement.path === 'userspace' ? { reason: placement.reason } : {}),
      packetsIn: s.npktsIn,
      bytesIn: s.nbytesIn,
      relayed: s.nrelayed,
      dropped: s.ndropped,
      ignored: s.nignored,
      sendErrors: s.nsendErrors,
      ...(a === undefined
        ? {}
        : {
            rtpa: {
              received: a.nrcvd,
              duplicates: a.ndups,
              lost: a.nlost,
              sent: a.nsent,
              perrs: a.perrs,
              jitterLast: a.jlast,
              jitterMax: a.jmax,
              jitterAvg: a.javg,
              longestIpi: a.longestIpi,
            },
          }),
    };
  };
  const legDetail = (leg: Leg): LegDetail => ({
    side: sideName(leg),
    local: {
      address: leg.local.address,
      port: leg.port,
      ...(leg.local.advertised === undefined ? {} : { advertised: leg.local.advertised }),
    },
    ttlSeconds: leg.remaining(),
    onHold: leg.onHold,
    weak: leg.weak,
    recording: leg.recorder !== undefined,
    playing: leg.rtp.playing,
    blocked: leg.rtp.blocked,
    rtp: stream(leg.rtp, 'rtp'),
    rtcp: stream(leg.rtcp, 'rtcp'),
  });
  return {
    ...common(session, ctx),
    legs: [legDetail(session.legs[0]), legDetail(session.legs[1])],
  };
}

function common(session: Session, ctx: SessionViewContext): Omit<SessionSummary, 'legs'> {
  return {
    callId: session.callId,
    tag: session.tag,
    state: session.complete ? 'active' : 'setup',
    ageSeconds: Math.max(0, Math.round(ctx.now - session.createdAt) / 1000),
    idleSeconds: idleSeconds(session),
    kernel:
      ctx.placement(session, 'rtp').path === 'kernel' ||
      ctx.placement(session, 'rtcp').path === 'kernel',
  };
}

/**
 * Whole seconds since a packet last reached either leg, as the idle sweep counts them (once a
 * second): how far the counter of the most recently active leg ran down.
 */
function idleSeconds(session: Session): number {
  return Math.min(...session.legs.map((leg) => Math.max(0, leg.ttl.max - leg.remaining())));
}

/** legs[0] faces the callee, legs[1] the caller (the session-tag party), as the logs say. */
function sideName(leg: Leg): 'callee' | 'caller' {
  return leg.index === 0 ? 'callee' : 'caller';
}

function remoteOf(s: MediaStream): Endpoint | null {
  return s.remoteAddress === undefined ? null : { address: s.remoteAddress, port: s.remotePort };
}
