/**
 * The errors of the recording writers (docs/protocol.md sections 6.1-6.5): the code table, the
 * {@link RecordingError} class thrown by the recorder factory or passed to an `onError` handler,
 * and the one-line description of a system error used in their messages.
 */

/** Failures of the recording writers; `path` is the file (or the rejected name) concerned. */
export const RECORDING_ERROR_CODES = {
  ERR_RECORD_NAME: 'the recording file name is empty, too long or would leave the directory',
  ERR_RECORD_OPEN: 'the recording file could not be created',
  ERR_RECORD_WRITE: 'writing the recording file failed; recording to it stopped',
  ERR_RECORD_CLOSE: 'closing the recording file failed',
  ERR_RECORD_MOVE: 'the recording file could not be moved from the spool directory',
  ERR_RECORD_CLOSED: 'the recorder factory is closed',
} as const;

/** Code of a {@link RecordingError}. */
export type RecordingErrorCode = keyof typeof RECORDING_ERROR_CODES;

/** A recording failure: thrown by the factory (name, open), passed to `onError` otherwise. */
export class RecordingError extends Error {
  override readonly name = 'RecordingError';
  readonly code: RecordingErrorCode;
  /** The file concerned, or the offending name for ERR_RECORD_NAME. */
  readonly path: string;
  constructor(code: RecordingErrorCode, path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.path = path;
  }
}

/** Called at most once per file for the write phase and once for the close/move phase. Must not throw. */
export type RecordingErrorHandler = (err: RecordingError) => void;

/** `CODE: message` of a system error (just the message without a code), for error messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === undefined ? err.message : `${code}: ${err.message}`;
  }
  return String(err);
}
