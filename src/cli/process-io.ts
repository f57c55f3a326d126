/**
 * The process's standard streams and errno errors, for the cli files: writes that resolve once
 * the text is handed to the stream, so that an exit right after them loses nothing.
 */

/** True for an error from a system call (it has an errno `code`). */
export function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && 'code' in err;
}

function writeStream(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    stream.write(text, () => {
      resolve();
    });
  });
}

/** Writes to stdout; resolves once written. */
export function writeStdout(text: string): Promise<void> {
  return writeStream(process.stdout, text);
}

/** Writes to stderr; resolves once written. */
export function writeStderr(text: string): Promise<void> {
  return writeStream(process.stderr, text);
}
