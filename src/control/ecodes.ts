/**
 * Wire error codes, numbered as the reference numbers them (sippy/rtpproxy
 * src/rtpp_command_ecodes.h; docs/protocol.md 12.1). One distinct code per failure site, so the code
 * alone tells which check failed.
 */
export const ECODES = {
  CMDUNKN: { code: 0, text: 'unknown command verb' },
  PARSE_NARGS: { code: 1, text: 'wrong number of arguments' },
  PARSE_MODS: { code: 2, text: 'modifiers not allowed on this command' },
  PARSE_SUBC: { code: 3, text: 'sub-command not allowed or not parsable' },
  PARSE_1: { code: 5, text: 'tokenizer failure' },
  PARSE_2: { code: 6, text: 'N with a followed by more characters, or p on R' },
  PARSE_3: { code: 7, text: 'unknown modifier on R, C or N' },
  PARSE_4: { code: 8, text: 'unknown modifier on D' },
  PARSE_5: { code: 9, text: 'unknown modifier on G' },
  PARSE_10: { code: 10, text: 'bad %-encoding or a control character in the notify tag' },
  PARSE_11: { code: 11, text: 'e modifier without bridge mode or after two interface letters' },
  PARSE_12: { code: 12, text: 'i modifier without bridge mode or after two interface letters' },
  PARSE_13: { code: 13, text: 'z value missing or outside 1..999' },
  PARSE_14: { code: 14, text: 'c list empty or given twice' },
  PARSE_15: { code: 15, text: 'l not followed by an address or label' },
  PARSE_16: { code: 16, text: 'r not followed by an address' },
  PARSE_6: { code: 17, text: 'P count is not a decimal integer' },
  PARSE_7: { code: 18, text: 'unknown modifier on I' },
  PARSE_8: { code: 19, text: 'unknown modifier on Q' },
  RTOOBIG_1: { code: 25, text: 'G reply too big' },
  RTOOBIG_2: { code: 26, text: 'Q reply too big' },
  INVLARG_1: { code: 31, text: 'l address unusable or unknown label' },
  INVLARG_2: { code: 32, text: 'r address unusable or unreachable' },
  INVLARG_3: { code: 33, text: 'defined, never produced' },
  INVLARG_4: { code: 34, text: 'defined, never produced' },
  INVLARG_5: { code: 35, text: 'unknown U/L modifier, or P session codecs without a stored list' },
  INVLARG_6: { code: 36, text: 'no local address of the family the command needs' },
  INVLARG_7: { code: 37, text: 'remote address or port cannot be parsed' },
  SESUNKN: { code: 50, text: 'no matching session' },
  PLRFAIL: { code: 60, text: 'prompt playback could not start' },
  PLRFAIL_2: { code: 61, text: 'prompt file over the size limit' },
  QRYFAIL: { code: 62, text: 'unknown Q counter name' },
  CPYFAIL: { code: 65, text: 'recording or copy could not start' },
  STSFAIL: { code: 68, text: 'unknown G counter name' },
  LSTFAIL_1: { code: 71, text: 'no port pair could be bound for an existing session' },
  LSTFAIL_2: { code: 72, text: 'new session could not be created' },
  NSOFF: { code: 75, text: 'notify socket given but no -n target configured' },
  NOMEM_1: { code: 81, text: 'out of memory (command options)' },
  NOMEM_2: { code: 82, text: 'out of memory (codec list)' },
  NOMEM_3: { code: 83, text: 'out of memory (remote address)' },
  NOMEM_4: { code: 84, text: 'defined, never produced' },
  NOMEM_5: { code: 85, text: 'out of memory (new session)' },
  NOMEM_6: { code: 86, text: 'I reply too big' },
  NOMEM_7: { code: 87, text: 'defined, never produced' },
  NOMEM_8: { code: 88, text: 'out of memory (new session, second table)' },
  NOMEM_9: { code: 89, text: 'internal error' },
  OVERLOAD: { code: 98, text: 'new session refused: overloaded' },
  SLOWSHTDN: { code: 99, text: 'new session refused: graceful shutdown in progress' },
} as const satisfies Readonly<Record<string, { readonly code: number; readonly text: string }>>;

/** Name of a wire error code. */
export type ECode = keyof typeof ECODES;

/** The wire text of an error reply, without LF: `E50`. */
export function ecodeText(name: ECode): string {
  return `E${String(ECODES[name].code)}`;
}
