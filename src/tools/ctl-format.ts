/**
 * What `rtpproxyctl` prints for people: aligned tables and blocks built from the daemon's replies
 * (`I`, `G`) and from the admin API's documents. Pure: values in, lines out. The API documents are
 * read defensively: a field that is missing or of another type shows as `-` instead of failing.
 */

/** A table: a header line and one line per row, columns aligned; numeric columns to the right. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => /^-?[0-9][0-9.]*$/.test(r[i] ?? '')),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        return numeric[i] === true ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** `name  value` lines, the names aligned. */
export function pairs(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(0, ...rows.map(([name]) => name.length));
  return rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`.trimEnd());
}

/** The figures of an `Il` reply (docs/protocol.md 10.2), null when the reply lacks one. */
export interface InfoFigures {
  readonly sessionsCreated: number | null;
  readonly activeSessions: number | null;
  readonly activeStreams: number | null;
  readonly packetsReceived: number | null;
  readonly packetsTransmitted: number | null;
  readonly averageLoad: number | null;
}

/** The `I` reply's line labels, by field. */
const INFO_LABELS: Readonly<Record<keyof InfoFigures, string>> = {
  sessionsCreated: 'sessions created',
  activeSessions: 'active sessions',
  activeStreams: 'active streams',
  packetsReceived: 'packets received',
  packetsTransmitted: 'packets transmitted',
  averageLoad: 'average load',
};

/**
 * Reads an `I`/`Il` reply: `label: value` lines in any order, labels compared without case or
 * extra spaces; lines it does not know (the kernel lines of `Iv`) are skipped.
 */
export function parseInfo(reply: string): InfoFigures {
  const values = new Map<string, number>();
  for (const line of reply.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const label = line.slice(0, colon).trim().replace(/\s+/g, ' ').toLowerCase();
    const value = Number(line.slice(colon + 1).trim());
    if (line.slice(colon + 1).trim() !== '' && Number.isFinite(value)) values.set(label, value);
  }
  const read = (field: keyof InfoFigures): number | null => values.get(INFO_LABELS[field]) ?? null;
  return {
    sessionsCreated: read('sessionsCreated'),
    activeSessions: read('activeSessions'),
    activeStreams: read('activeStreams'),
    packetsReceived: read('packetsReceived'),
    packetsTransmitted: read('packetsTransmitted'),
    averageLoad: read('averageLoad'),
  };
}

/** The `info` verb's lines: the protocol version, then the figures. */
export function formatInfo(version: string, info: InfoFigures): string[] {
  const rows: [string, string][] = [['protocol version', version]];
  for (const [field, label] of Object.entries(INFO_LABELS) as [keyof InfoFigures, string][]) {
    const value = info[field];
    rows.push([label, value === null ? '-' : String(value)]);
  }
  return pairs(rows);
}

/**
 * Reads a `Gv` reply, `name=value` pairs separated by spaces, in the reply's order; undefined when
 * a pair is malformed or a value is not a number.
 */
export function parseVerboseCounters(reply: string): [string, string][] | undefined {
  const out: [string, string][] = [];
  for (const token of reply.split(/\s+/)) {
    if (token === '') continue;
    const eq = token.indexOf('=');
    const value = token.slice(eq + 1);
    if (eq <= 0 || !/^-?[0-9]+(\.[0-9]+)?$/.test(value)) return undefined;
    out.push([token.slice(0, eq), value]);
  }
  return out;
}

// The admin API's documents, read from unknown JSON.

type Json = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(doc: unknown, name: string): unknown {
  return isObject(doc) ? doc[name] : undefined;
}

function text(value: unknown): string {
  if (typeof value === 'string') return value === '' ? '-' : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return '-';
}

/** A float to at most three decimals (jitter in timestamp units, gaps in seconds). */
function decimal(value: unknown): string {
  return typeof value === 'number' && Number.isFinite(value)
    ? String(Math.round(value * 1000) / 1000)
    : '-';
}

function yesNo(value: unknown): string {
  return typeof value === 'boolean' ? (value ? 'yes' : 'no') : '-';
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** `ADDR:PORT` (`[ADDR]:PORT` for IPv6) of an `{address, port}`, `-` for null or garbage. */
function endpoint(value: unknown): string {
  const address = field(value, 'address');
  const port = field(value, 'port');
  if (typeof address !== 'string' || typeof port !== 'number') return '-';
  return address.includes(':') ? `[${address}]:${String(port)}` : `${address}:${String(port)}`;
}

function seconds(value: unknown): string {
  return typeof value === 'number' && Number.isFinite(value) ? String(Math.round(value)) : '-';
}

/** The leg of `legs` facing `side` (`caller` or `callee`), whatever its position. */
function legOf(legs: unknown, side: 'caller' | 'callee'): unknown {
  if (!Array.isArray(legs)) return undefined;
  return (legs as unknown[]).find((leg) => field(leg, 'side') === side);
}

/** True when `doc` has the shape of `GET /sessions`' answer (a list of sessions). */
export function isSessionList(doc: unknown): boolean {
  return Array.isArray(field(doc, 'sessions')) && typeof field(doc, 'total') === 'number';
}

/** True when `doc` has the shape of `GET /sessions/{callid}`'s answer. */
export function isSessionDetail(doc: unknown): boolean {
  return Array.isArray(field(doc, 'sessions')) && typeof field(doc, 'callId') === 'string';
}

/** The `list` verb's table, and a line saying which part of the total it shows. */
export function formatSessionList(doc: unknown): string[] {
  const sessions = field(doc, 'sessions');
  const list = Array.isArray(sessions) ? (sessions as unknown[]) : [];
  const rows = list.map((s) => {
    const legs = field(s, 'legs');
    const legList = Array.isArray(legs) ? (legs as unknown[]) : [];
    const packets = legList.reduce<number>((sum, leg) => sum + count(field(leg, 'packetsIn')), 0);
    const relayed = legList.reduce<number>((sum, leg) => sum + count(field(leg, 'relayed')), 0);
    return [
      text(field(s, 'callId')),
      text(field(s, 'tag')),
      text(field(s, 'state')),
      seconds(field(s, 'ageSeconds')),
      seconds(field(s, 'idleSeconds')),
      yesNo(field(s, 'kernel')),
      endpoint(field(legOf(legs, 'caller'), 'remote')),
      endpoint(field(legOf(legs, 'callee'), 'remote')),
      String(packets),
      String(relayed),
    ];
  });
  const total = count(field(doc, 'total'));
  const offset = count(field(doc, 'offset'));
  const lines = table(
    [
      'CALL-ID',
      'TAG',
      'STATE',
      'AGE',
      'IDLE',
      'KERNEL',
      'CALLER REMOTE',
      'CALLEE REMOTE',
      'PACKETS',
      'RELAYED',
    ],
    rows,
  );
  const shown =
    rows.length === 0
      ? `no sessions of ${String(total)} matching`
      : `sessions ${String(offset + 1)}-${String(offset + rows.length)} of ${String(total)} matching`;
  return [...lines, shown];
}

/** The `show` verb's blocks: each session of the call-id, both legs, both streams. */
export function formatSessionDetail(doc: unknown): string[] {
  const sessions = field(doc, 'sessions');
  const list = Array.isArray(sessions) ? (sessions as unknown[]) : [];
  const lines: string[] = [];
  for (const s of list) {
    if (lines.length > 0) lines.push('');
    lines.push(`session ${text(field(s, 'callId'))} tag ${text(field(s, 'tag'))}`);
    lines.push(
      `  state ${text(field(s, 'state'))}, age ${seconds(field(s, 'ageSeconds'))} s, idle ${seconds(field(s, 'idleSeconds'))} s, kernel ${yesNo(field(s, 'kernel'))}`,
    );
    const legs = field(s, 'legs');
    for (const side of ['caller', 'callee'] as const) {
      const leg = legOf(legs, side);
      if (leg === undefined) continue;
      lines.push(...formatLeg(side, leg));
    }
  }
  return lines;
}

function formatLeg(side: 'caller' | 'callee', leg: unknown): string[] {
  const local = field(leg, 'local');
  const advertised = field(local, 'advertised');
  const flags = [
    ['on hold', field(leg, 'onHold')],
    ['weak', field(leg, 'weak')],
    ['recording', field(leg, 'recording')],
    ['playing', field(leg, 'playing')],
    ['blocked', field(leg, 'blocked')],
  ]
    .map(([name, value]) => `${String(name)} ${yesNo(value)}`)
    .join(', ');
  return [
    `  ${side} leg: local ${endpoint(local)}${typeof advertised === 'string' ? ` (advertised ${advertised})` : ''}, ttl ${seconds(field(leg, 'ttlSeconds'))} s`,
    `    ${flags}`,
    ...formatStream('rtp', field(leg, 'rtp')),
    ...formatStream('rtcp', field(leg, 'rtcp')),
  ];
}

function formatStream(name: string, stream: unknown): string[] {
  const reason = field(stream, 'reason');
  const latched = field(stream, 'latched');
  const lines = [
    `    ${name.padEnd(4)} remote ${endpoint(field(stream, 'remote'))}${latched === true ? ' (latched)' : latched === false ? ' (not latched)' : ''}, path ${text(field(stream, 'path'))}${typeof reason === 'string' ? ` (${reason})` : ''}`,
    `         in ${text(field(stream, 'packetsIn'))} packets ${text(field(stream, 'bytesIn'))} bytes, relayed ${text(field(stream, 'relayed'))}, dropped ${text(field(stream, 'dropped'))}, ignored ${text(field(stream, 'ignored'))}, send errors ${text(field(stream, 'sendErrors'))}`,
  ];
  const rtpa = field(stream, 'rtpa');
  if (isObject(rtpa)) {
    lines.push(
      `         rtpa received ${text(rtpa['received'])}, duplicates ${text(rtpa['duplicates'])}, lost ${text(rtpa['lost'])}, sent ${text(rtpa['sent'])}, parse errors ${text(rtpa['perrs'])}`,
      `         jitter last ${decimal(rtpa['jitterLast'])}, max ${decimal(rtpa['jitterMax'])}, avg ${decimal(rtpa['jitterAvg'])}, longest gap ${decimal(rtpa['longestIpi'])} s`,
    );
  }
  return lines;
}
