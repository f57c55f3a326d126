/**
 * `rtpproxyctl`: the daemon's management tool (docs/operations.md, "rtpproxyctl").
 *
 *     rtpproxyctl [-s SPEC] [--http URL] [--json] [--timeout MS] VERB [ARGS]
 *
 * `info`, `stats`, `alloc`, `update`, `delete` with tags and `query` speak the control protocol on
 * any socket kind the daemon's `-s` takes (docs/protocol.md); `list`, `show`, `drain` and
 * `delete` without tags use the admin HTTP API (`--http`). Exit status: 0 done, 1 the operation
 * failed (an `E<n>` reply, an HTTP error, no answer), 2 a usage error. Every failure is one line
 * on stderr.
 */
import { ECODES } from '../control/ecodes.ts';
import { GLOBAL_COUNTER_NAMES } from '../session/query.ts';
import { parseCtlArgs, type CtlEnv, type CtlInvocation } from './ctl-args.ts';
import { controlCommand, CtlError, httpRequest, type HttpAnswer } from './ctl-client.ts';
import {
  formatInfo,
  formatSessionDetail,
  formatSessionList,
  isSessionDetail,
  isSessionList,
  pairs,
  parseInfo,
  parseVerboseCounters,
  table,
} from './ctl-format.ts';
import { processIo, type ToolIo } from './io.ts';

/**
 * Counter names per `G` command: a command holds at most 23 tokens, the verb included
 * (docs/protocol.md 2.4), and a reply at most 1024 bytes (2.6).
 */
const G_NAMES_PER_COMMAND = 16;

/** Where the tool writes: stdout lines and stderr lines. */
export type CtlIo = Pick<ToolIo, 'out' | 'err'>;

/** The E-code names and descriptions by number (docs/protocol.md 12.1). */
const ECODE_TEXT = new Map<number, string>(
  Object.values(ECODES).map(({ code, text }) => [code, text]),
);

/** Throws a CtlError when `reply` is an error reply: `VERB failed: E50 (no matching session)`. */
function checkReply(verb: string, reply: string): string {
  const m = /^E([0-9]+)$/.exec(reply.trim());
  if (m?.[1] !== undefined) {
    const code = Number(m[1]);
    throw new CtlError(
      `${verb} failed: E${m[1]} (${ECODE_TEXT.get(code) ?? 'unknown error code'})`,
    );
  }
  return reply;
}

function unexpected(verb: string, reply: string): CtlError {
  const first = reply.split('\n')[0] ?? '';
  return new CtlError(`${verb}: unexpected reply ${JSON.stringify(first.slice(0, 200))}`);
}

/** Runs the tool; resolves with the exit status (0 done, 1 failed, 2 usage error). */
export async function runCtl(
  argv: readonly string[],
  io: CtlIo = processIo,
  env: CtlEnv = process.env,
): Promise<number> {
  const parsed = parseCtlArgs(argv, env);
  if ('usage' in parsed) {
    io.err(`rtpproxyctl: ${parsed.usage}`);
    return 2;
  }
  if ('help' in parsed) {
    io.out(parsed.help.trimEnd());
    return 0;
  }
  try {
    await execute(parsed, io);
    return 0;
  } catch (error) {
    if (!(error instanceof CtlError)) throw error;
    io.err(`rtpproxyctl: ${error.message}`);
    return 1;
  }
}

/** Runs one checked invocation, writing its output; throws a CtlError when it fails. */
async function execute(inv: CtlInvocation, io: CtlIo): Promise<void> {
  const command = (line: string): Promise<string> =>
    controlCommand(inv.socket, line, inv.timeoutMs);
  const print = (doc: unknown, lines: () => string[]): void => {
    if (inv.json) io.out(JSON.stringify(doc, null, 2));
    else for (const line of lines()) io.out(line);
  };
  const action = inv.action;
  switch (action.verb) {
    case 'info': {
      // A draining daemon answers V with E99 (docs/operations.md, "Drain"), and is still shown.
      const v = (await command('V')).trim();
      const draining = v === `E${String(ECODES.SLOWSHTDN.code)}`;
      const version = draining ? v : checkReply('V', v);
      const reply = checkReply('I', await command('Il'));
      const info = parseInfo(reply);
      if (Object.values(info).every((x) => x === null)) throw unexpected('Il', reply);
      print({ version: draining ? null : version, draining, ...info }, () =>
        formatInfo(draining ? 'draining (V answers E99)' : version, info),
      );
      return;
    }
    case 'stats': {
      const names = action.names.length > 0 ? action.names : GLOBAL_COUNTER_NAMES;
      const counters: [string, string][] = [];
      for (let i = 0; i < names.length; i += G_NAMES_PER_COMMAND) {
        const batch = names.slice(i, i + G_NAMES_PER_COMMAND);
        const reply = checkReply('G', await command(`Gv ${batch.join(' ')}`));
        const read = parseVerboseCounters(reply);
        if (read?.length !== batch.length) throw unexpected('G', reply);
        counters.push(...read);
      }
      print(Object.fromEntries(counters.map(([name, value]) => [name, Number(value)])), () =>
        table(['COUNTER', 'VALUE'], counters),
      );
      return;
    }
    case 'alloc':
    case 'update': {
      const verb = action.verb === 'alloc' ? 'U' : 'L';
      const tags =
        action.toTag === undefined ? action.fromTag : `${action.fromTag} ${action.toTag}`;
      const reply = checkReply(
        verb,
        await command(
          `${verb}${action.modifiers} ${action.callId} ${action.address} ${String(action.port)} ${tags}`,
        ),
      );
      const m = /^([0-9]+)(?: (\S+)(?: (6))?)?$/.exec(reply.trim());
      if (m?.[1] === undefined) throw unexpected(verb, reply);
      const port = Number(m[1]);
      // An L that finds no session answers port 0 (docs/protocol.md 3.3).
      if (port === 0) throw new CtlError(`${verb} failed: no session matches (the reply is 0)`);
      const address = m[2] ?? null;
      print({ port, address, ipv6: m[3] === '6' }, () =>
        pairs([
          ['port', String(port)],
          ['address', address ?? "- (a wildcard: the daemon's host address)"],
        ]),
      );
      return;
    }
    case 'delete': {
      if (action.fromTag !== undefined) {
        const tags =
          action.toTag === undefined ? action.fromTag : `${action.fromTag} ${action.toTag}`;
        const reply = checkReply('D', await command(`D ${action.callId} ${tags}`));
        if (reply.trim() !== '0') throw unexpected('D', reply);
        print({ callId: action.callId, deleted: true }, () => [`deleted ${action.callId}`]);
        return;
      }
      const body = await admin(
        inv,
        'delete',
        'DELETE',
        `/sessions/${encodeURIComponent(action.callId)}`,
      );
      const deleted = member(body, 'deleted');
      if (typeof deleted !== 'number') throw unexpected('delete', JSON.stringify(body));
      print(body, () => [
        `deleted ${String(deleted)} session${deleted === 1 ? '' : 's'} of ${action.callId}`,
      ]);
      return;
    }
    case 'list': {
      const body = await admin(inv, 'list', 'GET', '/sessions', action.query);
      if (!isSessionList(body)) throw unexpected('list', JSON.stringify(body));
      print(body, () => formatSessionList(body));
      return;
    }
    case 'show': {
      const body = await admin(
        inv,
        'show',
        'GET',
        `/sessions/${encodeURIComponent(action.callId)}`,
      );
      if (!isSessionDetail(body)) throw unexpected('show', JSON.stringify(body));
      print(body, () => formatSessionDetail(body));
      return;
    }
    case 'drain': {
      const body = await admin(inv, 'drain', 'POST', '/drain');
      const sessions = member(body, 'sessions');
      print(body, () => [
        `draining: new sessions are refused; ${typeof sessions === 'number' ? String(sessions) : '-'} left`,
      ]);
      return;
    }
    case 'query': {
      const reply = await command(action.line);
      print({ command: action.line, reply }, () => [reply]);
      checkReply(action.line.trim().charAt(0).toUpperCase(), reply);
      return;
    }
  }
}

/** One admin API request; a status outside 2xx fails with the API's own error text. */
async function admin(
  inv: CtlInvocation,
  verb: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  query: Readonly<Record<string, string>> = {},
): Promise<unknown> {
  if (inv.http === undefined) throw new CtlError(`${verb} needs the admin API (--http)`);
  const answer: HttpAnswer = await httpRequest(inv.http, method, path, inv.timeoutMs, query);
  if (answer.status >= 200 && answer.status < 300) return answer.body;
  const error = member(answer.body, 'error');
  throw new CtlError(
    `${verb} failed: HTTP ${String(answer.status)}${typeof error === 'string' ? `: ${error}` : ''}`,
  );
}

/** `doc[name]` of a JSON object; undefined for anything else. */
function member(doc: unknown, name: string): unknown {
  return typeof doc === 'object' && doc !== null && !Array.isArray(doc)
    ? (doc as Readonly<Record<string, unknown>>)[name]
    : undefined;
}
