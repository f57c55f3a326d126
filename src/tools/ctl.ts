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
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ECODES } from '../control/ecodes.ts';
import { parseSocketSpec } from '../control/socket-spec.ts';
import { GLOBAL_COUNTER_NAMES } from '../session/query.ts';
import {
  controlCommand,
  CtlError,
  isConnectable,
  httpRequest,
  type ConnectableSpec,
  type HttpAnswer,
} from './ctl-client.ts';
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

/** The control socket when neither `-s` nor RTPPROXY_SOCKET names one: the README's start command. */
export const DEFAULT_SOCKET = 'udp:127.0.0.1:22222';
const DEFAULT_TIMEOUT_MS = 2000;
const MAX_TIMEOUT_MS = 600_000;
/**
 * Counter names per `G` command: a command holds at most 23 tokens, the verb included
 * (docs/protocol.md 2.4), and a reply at most 1024 bytes (2.6).
 */
const G_NAMES_PER_COMMAND = 16;
/** The admin API's largest page (`GET /sessions?limit=`). */
const MAX_LIST_LIMIT = 1000;

/** Where the tool writes: stdout lines and stderr lines. */
export type CtlIo = Pick<ToolIo, 'out' | 'err'>;

/** What the command line asks for. */
export type CtlAction =
  | { readonly verb: 'info' }
  | { readonly verb: 'stats'; readonly names: readonly string[] }
  | {
      readonly verb: 'alloc' | 'update';
      readonly callId: string;
      readonly address: string;
      readonly port: number;
      readonly fromTag: string;
      readonly toTag?: string;
      readonly modifiers: string;
    }
  | {
      readonly verb: 'delete';
      readonly callId: string;
      readonly fromTag?: string;
      readonly toTag?: string;
    }
  | { readonly verb: 'list'; readonly query: Readonly<Record<string, string>> }
  | { readonly verb: 'show'; readonly callId: string }
  | { readonly verb: 'drain' }
  | { readonly verb: 'query'; readonly line: string };

/** A checked command line. */
export interface CtlInvocation {
  readonly socket: ConnectableSpec;
  readonly http: URL | undefined;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly action: CtlAction;
}

/** Environment variables the tool reads: the default control socket and admin API. */
export interface CtlEnv {
  readonly RTPPROXY_SOCKET?: string | undefined;
  readonly RTPPROXY_HTTP?: string | undefined;
}

const HELP_AFTER = `
The control socket is any -s value of the daemon: unix:PATH (or a bare PATH), cunix:PATH,
udp:HOST[:PORT], udp6:[HOST]:PORT, tcp:HOST[:PORT], tcp6:[HOST]:PORT; the default is
$RTPPROXY_SOCKET, else ${DEFAULT_SOCKET}. list, show, drain and delete without tags need the
admin API: --http URL, or $RTPPROXY_HTTP.

Exit status: 0 done, 1 the operation failed (an E<n> reply, an HTTP error, no answer),
2 a usage error.`;

/** Parses the command line: an invocation, the help text, or a usage error (one line). */
export function parseCtlArgs(
  argv: readonly string[],
  env: CtlEnv = {},
): CtlInvocation | { readonly help: string } | { readonly usage: string } {
  let action: CtlAction | undefined;
  let help = '';
  const program = new Command('rtpproxyctl')
    .usage('[-s SPEC] [--http URL] [--json] [--timeout MS] VERB [ARGS]')
    .description('Query and manage a running rtpproxy daemon.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => (help += text),
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .option('-s, --socket <spec>', `control socket (default: ${DEFAULT_SOCKET})`)
    .option('--http <url>', 'admin API, e.g. http://127.0.0.1:9090')
    .option('--json', 'print one JSON document instead of tables')
    .option(
      '--timeout <ms>',
      `how long to wait for an answer (default: ${String(DEFAULT_TIMEOUT_MS)})`,
      integerIn(1, MAX_TIMEOUT_MS),
    )
    .addHelpText('after', HELP_AFTER);
  // exitOverride and configureOutput are inherited by the verbs defined from here on.
  program
    .command('info')
    .description('version, sessions, streams, packets and load (V, Il)')
    .action(() => {
      action = { verb: 'info' };
    });
  program
    .command('stats')
    .description('global counters (G); every counter the daemon knows by default')
    .argument('[counter...]', 'counter names, e.g. nsess_created npkts_relayed')
    .action((names: string[]) => {
      action = { verb: 'stats', names };
    });
  program
    .command('alloc')
    .description("create or update a session from the caller's side (U); prints port and address")
    .argument('<callid>')
    .argument('<addr>', 'media address of the party')
    .argument('<port>', 'media port of the party', integerIn(0, 65535))
    .argument('<fromtag>')
    .option('--modifiers <mods>', 'modifiers after the verb letter, e.g. c0,8', modifierText)
    .action(
      (
        callId: string,
        address: string,
        port: number,
        fromTag: string,
        o: { modifiers?: string },
      ) => {
        action = { verb: 'alloc', callId, address, port, fromTag, modifiers: o.modifiers ?? '' };
      },
    );
  program
    .command('update')
    .description("complete a session from the callee's side (L); prints port and address")
    .argument('<callid>')
    .argument('<addr>', 'media address of the party')
    .argument('<port>', 'media port of the party', integerIn(0, 65535))
    .argument('<fromtag>')
    .argument('<totag>')
    .option('--modifiers <mods>', 'modifiers after the verb letter, e.g. c0', modifierText)
    .action(
      (
        callId: string,
        address: string,
        port: number,
        fromTag: string,
        toTag: string,
        o: { modifiers?: string },
      ) => {
        action = {
          verb: 'update',
          callId,
          address,
          port,
          fromTag,
          toTag,
          modifiers: o.modifiers ?? '',
        };
      },
    );
  program
    .command('delete')
    .description('delete sessions: with tags by D, without by the admin API (every session)')
    .argument('<callid>')
    .argument('[fromtag]')
    .argument('[totag]')
    .action((callId: string, fromTag: string | undefined, toTag: string | undefined) => {
      action = {
        verb: 'delete',
        callId,
        ...(fromTag === undefined ? {} : { fromTag }),
        ...(toTag === undefined ? {} : { toTag }),
      };
    });
  program
    .command('list')
    .description('sessions, one line each (admin API)')
    .option('--callid <prefix>', 'call-ids that start with this')
    .addOption(new Option('--state <state>', 'setup or active').choices(['setup', 'active']))
    .addOption(
      new Option('--kernel <yes|no>', 'relayed by the kernel or not').choices(['yes', 'no']),
    )
    .option('--min-age <s>', 'at least this old (seconds)', decimalAtLeast0)
    .option('--min-idle <s>', 'idle at least this long (seconds)', decimalAtLeast0)
    .option('--offset <n>', 'skip this many', integerIn(0, Number.MAX_SAFE_INTEGER))
    .option(
      '--limit <n>',
      `at most this many (1..${String(MAX_LIST_LIMIT)})`,
      integerIn(1, MAX_LIST_LIMIT),
    )
    .action((o: ListOptions) => {
      action = { verb: 'list', query: listQuery(o) };
    });
  program
    .command('show')
    .description('every session of a call-id in detail (admin API)')
    .argument('<callid>')
    .action((callId: string) => {
      action = { verb: 'show', callId };
    });
  program
    .command('drain')
    .description('refuse new sessions and exit once the last one ends (admin API)')
    .action(() => {
      action = { verb: 'drain' };
    });
  program
    .command('query')
    .description('send a raw command line and print the reply as is')
    .argument('<raw...>', 'the command, e.g. G nsess_created or "Q CALLID FROMTAG TOTAG"')
    .allowUnknownOption()
    .action((raw: string[]) => {
      action = { verb: 'query', line: raw.join(' ') };
    });

  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (
      error.code === 'commander.helpDisplayed' ||
      (error.code === 'commander.help' && error.exitCode === 0)
    ) {
      return { help };
    }
    if (error.code === 'commander.help') return { usage: 'no verb given (see rtpproxyctl --help)' };
    // Commander's words for the verbs are "command"; ours are the protocol's.
    const message = error.message
      .replace(/^error: /, '')
      .replace(/^unknown command/, 'unknown verb')
      .replace(/^command-argument value/, 'value')
      .replace(/\s*\n\s*/g, ' ');
    return { usage: `${message} (see rtpproxyctl --help)` };
  }
  if (action === undefined) return { usage: 'no verb given (see rtpproxyctl --help)' };
  return checkInvocation(action, program.opts(), env);
}

interface GlobalOptions {
  readonly socket?: string;
  readonly http?: string;
  readonly json?: boolean;
  readonly timeout?: number;
}

interface ListOptions {
  readonly callid?: string;
  readonly state?: string;
  readonly kernel?: string;
  readonly minAge?: number;
  readonly minIdle?: number;
  readonly offset?: number;
  readonly limit?: number;
}

/** The admin API's query parameters of `list` (only those given). */
function listQuery(o: ListOptions): Record<string, string> {
  const query: Record<string, string> = {};
  if (o.callid !== undefined) query['callid'] = o.callid;
  if (o.state !== undefined) query['state'] = o.state;
  if (o.kernel !== undefined) query['kernel'] = o.kernel;
  if (o.minAge !== undefined) query['min_age'] = String(o.minAge);
  if (o.minIdle !== undefined) query['min_idle'] = String(o.minIdle);
  if (o.offset !== undefined) query['offset'] = String(o.offset);
  if (o.limit !== undefined) query['limit'] = String(o.limit);
  return query;
}

/** The checks that need more than one option: the socket, the admin API, protocol arguments. */
function checkInvocation(
  action: CtlAction,
  opts: GlobalOptions,
  env: CtlEnv,
): CtlInvocation | { readonly usage: string } {
  const socketText = opts.socket ?? nonEmpty(env.RTPPROXY_SOCKET) ?? DEFAULT_SOCKET;
  const spec = parseSocketSpec(socketText);
  if ('error' in spec) {
    return { usage: `bad control socket ${JSON.stringify(socketText)}: ${spec.error}` };
  }
  if (!isConnectable(spec)) {
    return { usage: `${spec.kind}: is the daemon's own stdin, not a socket to connect to` };
  }
  if ('port' in spec && spec.port === 0) {
    return { usage: `bad control socket ${JSON.stringify(socketText)}: port 0` };
  }
  const httpText = opts.http ?? nonEmpty(env.RTPPROXY_HTTP);
  let http: URL | undefined;
  if (httpText !== undefined) {
    const parsed = adminUrl(httpText);
    if (typeof parsed === 'string') return { usage: parsed };
    http = parsed;
  }
  const needsHttp =
    action.verb === 'list' ||
    action.verb === 'show' ||
    action.verb === 'drain' ||
    (action.verb === 'delete' && action.fromTag === undefined);
  if (needsHttp && http === undefined) {
    const what = action.verb === 'delete' ? 'delete without tags' : action.verb;
    return { usage: `${what} needs the admin API: give --http URL or set RTPPROXY_HTTP` };
  }
  const bad = badProtocolArgument(action);
  if (bad !== undefined) return { usage: bad };
  return {
    socket: spec,
    http,
    json: opts.json === true,
    timeoutMs: opts.timeout ?? DEFAULT_TIMEOUT_MS,
    action,
  };
}

/**
 * Why an argument cannot go into a command line, if one cannot: the protocol separates
 * arguments by spaces and has no quoting (docs/protocol.md 2.4).
 */
function badProtocolArgument(action: CtlAction): string | undefined {
  const args: string[] = [];
  switch (action.verb) {
    case 'stats':
      args.push(...action.names);
      break;
    case 'alloc':
    case 'update':
      args.push(
        action.callId,
        action.address,
        action.fromTag,
        ...(action.toTag === undefined ? [] : [action.toTag]),
      );
      break;
    case 'delete':
      if (action.fromTag !== undefined) {
        args.push(action.callId, action.fromTag);
        if (action.toTag !== undefined) args.push(action.toTag);
      }
      break;
    case 'info':
    case 'list':
    case 'show':
    case 'drain':
      break;
    case 'query':
      if (action.line.trim() === '') return 'query needs a command';
      break;
  }
  const bad = args.find((a) => a === '' || /[\s\0]/.test(a));
  return bad === undefined
    ? undefined
    : `${JSON.stringify(bad)} cannot be a protocol argument: no spaces, no empty values`;
}

/** The admin API's base URL: a `http(s)://` URL, or `HOST:PORT` as the daemon's `--http` takes. */
function adminUrl(text: string): URL | string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return `bad admin API address ${JSON.stringify(text)}: give http://HOST:PORT`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `bad admin API address ${JSON.stringify(text)}: only http and https`;
  }
  return url;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function integerIn(min: number, max: number): (text: string) => number {
  return (text) => {
    if (!/^[0-9]+$/.test(text)) throw new InvalidArgumentError('It must be a decimal integer.');
    const n = Number(text);
    if (n < min || n > max) {
      throw new InvalidArgumentError(`It must be from ${String(min)} to ${String(max)}.`);
    }
    return n;
  };
}

function decimalAtLeast0(text: string): number {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) {
    throw new InvalidArgumentError('It must be a number of seconds, 0 or more.');
  }
  return Number(text);
}

function modifierText(text: string): string {
  if (text === '' || /[\s\0]/.test(text)) {
    throw new InvalidArgumentError('It must be one word, e.g. c0,8.');
  }
  return text;
}

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
      const version = checkReply('V', await command('V'));
      const reply = checkReply('I', await command('Il'));
      const info = parseInfo(reply);
      if (Object.values(info).every((v) => v === null)) throw unexpected('Il', reply);
      print({ version, ...info }, () => formatInfo(version, info));
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
