/** The `stdio:` and `stdioc:` control "sockets": LF-framed commands on stdin, replies on stdout. */
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { type FinishReason, LineChannel } from './line-channel.ts';
import type { CommandRunner, ControlListener } from './runner.ts';

/** Collaborators of {@link StdioControlListener}; the streams are injected so tests need no child process. */
export interface StdioControlListenerOptions {
  readonly kind: 'stdio' | 'stdioc';
  /** Normally process.stdin. */
  readonly input: Readable;
  /** Normally process.stdout. */
  readonly output: Writable;
  readonly runner: CommandRunner;
  readonly log: Logger;
  /**
   * Called once stdin ended (or overflowed) and the replies to every command read were written;
   * the daemon gives it when the end of its input ends the daemon (daemon.ts, stdinEndsDaemon).
   */
  readonly onEof?: () => void;
}

/** `stdio:` and `stdioc:`: LF-framed commands on stdin, replies on stdout. */
export class StdioControlListener implements ControlListener {
  readonly #options: StdioControlListenerOptions;
  readonly #channel: LineChannel;
  #started = false;
  #closed = false;

  constructor(options: StdioControlListenerOptions) {
    this.#options = options;
    this.#channel = new LineChannel(options.input, options.output, options.runner, (reason) => {
      this.#finished(reason);
    });
  }

  /** Starts reading stdin. */
  listen(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Error(`control socket ${this.#options.kind}: is closed`));
    }
    if (!this.#started) {
      this.#started = true;
      this.#options.input.on('error', this.#onError);
      this.#options.output.on('error', this.#onError);
      this.#channel.start();
    }
    return Promise.resolve();
  }

  /** Stops reading; leaves the streams themselves open (they belong to the process). Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#channel.dispose();
    this.#options.input.off('error', this.#onError);
    this.#options.output.off('error', this.#onError);
    return Promise.resolve();
  }

  readonly #onError = (err: Error): void => {
    this.#options.log.warn({ err, socket: `${this.#options.kind}:` }, 'control stream error');
  };

  #finished(reason: FinishReason): void {
    if (this.#closed) return;
    if (reason === 'overflow') {
      this.#options.log.warn(
        { socket: `${this.#options.kind}:` },
        'control command line too long, input closed',
      );
    } else {
      this.#options.log.info({ socket: `${this.#options.kind}:` }, 'control input ended');
    }
    // The reference sees a full buffer and EOF alike (read() returns 0): both end the input.
    this.#options.onEof?.();
  }
}
