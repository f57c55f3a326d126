/**
 * One LF-framed command stream (a cunix or tcp connection, or stdio): lines in, replies out in
 * command order, with the back-pressure that bounds what one connection can hold.
 */
import type { Readable, Writable } from 'node:stream';
import type { CommandOrigin } from '../base/net.ts';
import { NO_ANSWER, type CommandRunner } from './runner.ts';

/** Input buffer of a line-framed stream connection; a line (with its LF) must fit (docs/protocol.md 2.8). */
const STREAM_LINE_BUFFER = 8192;
/**
 * Commands of one connection queued or running before we stop reading from it, so one client
 * cannot fill the command queue that every socket shares.
 */
export const MAX_PENDING_PER_CONNECTION = 16;

/**
 * Reply bytes waiting in one connection's output buffer (not yet taken by the kernel) before we
 * stop reading from it: a client that writes commands and never reads the replies gets no more
 * commands executed, and its replies cannot grow our memory.
 */
export const STREAM_REPLY_BUFFER = 64 * 1024;

/**
 * Why a channel stopped reading: its input ended, a line did not fit the buffer, or a command was
 * left unanswered (the connection must close instead of its reply).
 */
export type FinishReason = 'eof' | 'overflow' | 'unanswered';

const EMPTY = Buffer.alloc(0);

/**
 * LF-framed commands from one input, replies in command order on one output. Used for cunix,
 * tcp and stdio; a net.Socket is both its input and its output. Reading pauses while this
 * channel has {@link MAX_PENDING_PER_CONNECTION} commands in the queue or
 * {@link STREAM_REPLY_BUFFER} reply bytes unsent, so what one connection holds is bounded: that,
 * one input chunk and the partial line (under 8192 bytes).
 */
export class LineChannel {
  readonly #input: Readable;
  readonly #output: Writable;
  readonly #runner: CommandRunner;
  readonly #onFinished: (reason: FinishReason) => void;
  readonly #origin: CommandOrigin | undefined;
  readonly #mayLeaveUnanswered: boolean;
  /** Bytes read and not yet submitted: whole lines held back while blocked, then a partial line. */
  #buffer: Buffer = EMPTY;
  #pending = 0;
  #commands = 0;
  #lastCommandAt = performance.now();
  #writes: Promise<void> = Promise.resolve();
  #ended = false;
  #pumpScheduled = false;
  #stopped = false;
  #disposed = false;
  /** A command was left unanswered: no reply is written after it. */
  #unanswered = false;

  /**
   * `mayLeaveUnanswered`: the output is a connection that closes instead of replying to a command
   * left unanswered (cunix, tcp); stdio replies to every command.
   */
  constructor(
    input: Readable,
    output: Writable,
    runner: CommandRunner,
    onFinished: (reason: FinishReason) => void,
    origin?: CommandOrigin,
    mayLeaveUnanswered = false,
  ) {
    this.#input = input;
    this.#output = output;
    this.#runner = runner;
    this.#onFinished = onFinished;
    this.#origin = origin;
    this.#mayLeaveUnanswered = mayLeaveUnanswered;
  }

  /** Complete command lines received so far. */
  get commands(): number {
    return this.#commands;
  }

  /** Milliseconds (performance.now()) since which this channel has run nothing; undefined while busy. */
  idleSince(): number | undefined {
    if (this.#pending > 0 || this.#stopped) return undefined;
    return this.#lastCommandAt;
  }

  start(): void {
    this.#input.on('data', this.#onData);
    this.#input.on('end', this.#onEnd);
    this.#output.on('drain', this.#pump);
    this.#input.resume();
  }

  /** Stops reading and drops replies not yet written. */
  dispose(): void {
    this.#disposed = true;
    this.#detach();
  }

  readonly #onData = (chunk: Buffer | string): void => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    this.#buffer = this.#buffer.length === 0 ? data : Buffer.concat([this.#buffer, data]);
    this.#pump();
  };

  // A partial last line without LF is dropped at EOF, as the reference does.
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#pump();
  };

  #blocked(): boolean {
    return (
      this.#pending >= MAX_PENDING_PER_CONNECTION ||
      this.#output.writableLength >= STREAM_REPLY_BUFFER
    );
  }

  /** Submits the complete lines held while not blocked, then pauses or resumes reading. */
  readonly #pump = (): void => {
    if (this.#stopped) return;
    const buffer = this.#buffer;
    let from = 0;
    let blocked = this.#blocked();
    while (!blocked) {
      const lf = buffer.indexOf(0x0a, from);
      if (lf < 0) break;
      // The line and its LF did not fit the reference's 8192-byte buffer: it drops the connection.
      if (lf - from >= STREAM_LINE_BUFFER) {
        this.#stop('overflow');
        return;
      }
      this.#submit(buffer.toString('latin1', from, lf));
      from = lf + 1;
      blocked = this.#blocked();
    }
    const rest = buffer.length - from;
    if (!blocked && rest >= STREAM_LINE_BUFFER) {
      this.#stop('overflow');
      return;
    }
    // A short partial line is copied so that it does not keep the whole chunk alive.
    if (rest === 0) {
      this.#buffer = EMPTY;
    } else if (from > 0) {
      this.#buffer = blocked ? buffer.subarray(from) : Buffer.from(buffer.subarray(from));
    }
    if (blocked) {
      this.#input.pause();
      return;
    }
    if (this.#ended) {
      this.#stop('eof');
      return;
    }
    this.#input.resume();
  };

  /**
   * Pumps again after the event loop has polled for I/O: replies resolve in microtasks, so pumping
   * from there would let one busy connection run command after command without the other sockets
   * ever being read.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled || this.#stopped) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #submit(line: string): void {
    // Submitted at once, so the runner sees commands in arrival order across all sockets; the
    // write chain keeps this connection's replies in command order.
    const reply = this.#runner.run(line, this.#origin, this.#mayLeaveUnanswered);
    this.#pending++;
    this.#commands++;
    this.#lastCommandAt = performance.now();
    this.#writes = this.#writes.then(async () => {
      const text = await reply;
      this.#pending--;
      if (this.#disposed || this.#unanswered) return;
      if (text === NO_ANSWER) {
        // The client reads the closed connection as the failed exchange; the replies of commands
        // it sent after this one are not written either.
        this.#unanswered = true;
        this.#stop('unanswered');
        return;
      }
      try {
        if (this.#output.writable) this.#output.write(Buffer.from(text, 'latin1'));
      } catch {
        // A stream torn down under us reports through its 'error' event; the reply is lost.
      }
      this.#schedulePump();
    });
  }

  #stop(reason: FinishReason): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#detach();
    void this.#writes.then(() => {
      if (!this.#disposed) this.#onFinished(reason);
    });
  }

  #detach(): void {
    this.#stopped = true;
    this.#input.off('data', this.#onData);
    this.#input.off('end', this.#onEnd);
    this.#output.off('drain', this.#pump);
    this.#input.pause();
    this.#buffer = EMPTY;
  }
}
