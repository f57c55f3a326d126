/** Domain refusals of the session manager; dispatch maps each code to one wire E-code. */
export const RELAY_ERROR_CODES = {
  ERR_SESSION_NOT_FOUND: 'no session matches the call-id and tags',
  ERR_NO_PORTS_NEW: 'no port pair could be bound for a new session',
  ERR_NO_PORTS_EXISTING: 'no port pair could be bound for the reply leg of an existing session',
  ERR_SHUTTING_DOWN: 'graceful shutdown in progress: no new sessions',
  ERR_OVERLOADED: 'overloaded: no new sessions',
  ERR_NOTIFY_DISABLED: 'a notify socket was given but no -n target is configured',
  ERR_NO_ROUTE: 'no local address routes to the requested remote address',
  ERR_NO_LOCAL_ADDRESS: 'no configured local address of the requested family',
  ERR_PLAYBACK: 'prompt playback could not start',
  ERR_PROMPT_TOO_LARGE: 'the prompt file is over the size limit',
  ERR_NO_SESSION_CODECS: 'P asked for the session codecs but no c list is stored on the leg',
  ERR_RECORDING: 'no recorder could be started',
  ERR_COPY: 'copy or recording to a named target could not start',
} as const;

/** Code of a RelayError. */
export type RelayErrorCode = keyof typeof RELAY_ERROR_CODES;

/** A refusal the session manager reports; never carries wire text. */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  readonly code: RelayErrorCode;
  constructor(
    code: RelayErrorCode,
    message: string = RELAY_ERROR_CODES[code],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
  }
}
