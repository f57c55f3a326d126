/**
 * Splits a command line into tokens and `&&` sub-commands (docs/protocol.md 2.4, 2.4). Pure.
 *
 * Separators are space, TAB, LF and CR; runs of them are one separator. A NUL byte inside a token,
 * no token at all, more than 23 tokens in a command or sub-command, an empty sub-command or more
 * than 15 sub-commands are tokenizer failures (E5).
 */
const MAX_TOKENS = 23;
const MAX_SUBCOMMANDS = 15;

/** One command or sub-command: its first token (verb + modifiers) and its arguments. */
export interface TokenGroup {
  readonly head: string;
  readonly args: readonly string[];
}

export type TokenizeResult =
  | { readonly ok: true; readonly main: TokenGroup; readonly subs: readonly TokenGroup[] }
  | { readonly ok: false };

const SEPARATORS = /[ \t\r\n]+/;

/** Splits on separators, dropping empty tokens. */
function splitTokens(line: string): string[] {
  return line.split(SEPARATORS).filter((t) => t.length > 0);
}

/** Tokenizes one command line; see the module comment for the failure cases. */
export function tokenize(line: string): TokenizeResult {
  const tokens = splitTokens(line);
  if (tokens.length === 0) return { ok: false };
  const groups: string[][] = [[]];
  for (const token of tokens) {
    if (token.includes('\0')) return { ok: false };
    if (token === '&&') {
      groups.push([]);
      continue;
    }
    const current = groups[groups.length - 1];
    if (current === undefined) return { ok: false };
    current.push(token);
    if (current.length > MAX_TOKENS) return { ok: false };
  }
  if (groups.length - 1 > MAX_SUBCOMMANDS) return { ok: false };
  const parsed: TokenGroup[] = [];
  for (const group of groups) {
    const [head, ...args] = group;
    if (head === undefined) return { ok: false };
    parsed.push({ head, args });
  }
  const [main, ...subs] = parsed;
  if (main === undefined) return { ok: false };
  return { ok: true, main, subs };
}
