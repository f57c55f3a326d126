/**
 * `rtpproxyctl`'s command line (docs/operations.md, "rtpproxyctl"): commander reads the options and
 * the verbs, then the checks that need more than one of them (the control socket, the admin API,
 * arguments the protocol cannot carry) turn it into a {@link CtlInvocation}, or into a usage
 * error of one line.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parseSocketSpec } from '../control/socket-spec.ts';
import { isConnectable, unconnectable, type ConnectableSpec } from './ctl-client.ts';

/** The control socket when neither `-s` nor RTPPROXY_SOCKET names one: the README's start command. */
const DEFAULT_SOCKET = 'udp:127.0.0.1:22222';
const DEFAULT_TIMEOUT_MS = 2000;
const MAX_TIMEOUT_MS = 600_000;
/** The admin API's largest page (`GET /sessions?limit=`). */
const MAX_LIST_LIMIT = 1000;

/** What the command line asks for. */
type CtlAction =
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
    return { usage: unconnectable(spec) ?? `${spec.kind}: cannot be connected to` };
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
