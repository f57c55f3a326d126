/**
 * One open recording file (docs/protocol.md sections 6.1-6.5, 6.7), in the format its
 * {@link RecordingFileFormat} strategy frames (recording-format.ts).
 *
 * The packet path only ever calls the synchronous, non-throwing `write()`: records go into a
 * bounded in-memory queue that is written asynchronously with `fs.writev` (header and packet as
 * two chunks, style.md P17). When the queue is full, records are dropped and counted. The first
 * write error stops the file, is counted and reported once through `onError`; the relay goes on
 * (P8). `close()` flushes, closes, moves a spooled file into the record directory, never rejects,
 * and is idempotent (P18). The file is normally created synchronously, like the reference's
 * `open(2)` in `ropen()` (sippy/rtpproxy src/rtpp_record.c), so a bad directory is an immediate,
 * clear error for R/C to answer with.
 */

import fs from 'node:fs';
import {
  describeError,
  RecordingError,
  type RecordingErrorCode,
  type RecordingErrorHandler,
} from './recording-error.ts';
import {
  recordingFileFormat,
  type RecordingFileFormat,
  type RecordingFormat,
} from './recording-format.ts';
import type { Endpoint, IpFamily } from './record-types.ts';

/** Default bound of a file's in-memory queue: beyond it, records are dropped and counted. */
const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
/**
 * Queued bytes that trigger a write. Below it records wait in memory (the reference buffers 4 KiB
 * per file the same way); `close()` writes the rest. Keeps the syscall rate low with many files.
 */
const DEFAULT_FLUSH_BYTES = 16 * 1024;
/** Linux IOV_MAX: most buffers one writev takes. */
const MAX_IOV = 1024;
/** Mode of created files before the umask, as the reference's DEFFILEMODE. */
const FILE_MODE = 0o666;

/** Options of one {@link RecordingFile}. */
export interface RecordingFileOptions {
  /** Final location of the file. */
  readonly path: string;
  /** When set, the file is written here and renamed to `path` on close (`-S`). */
  readonly spoolPath?: string | undefined;
  readonly format: RecordingFormat;
  /** Queue bound in bytes; default {@link DEFAULT_MAX_QUEUE_BYTES}. */
  readonly maxQueueBytes?: number | undefined;
  /** Queued bytes that start a write; default {@link DEFAULT_FLUSH_BYTES}. 0 writes at once. */
  readonly flushBytes?: number | undefined;
  readonly onError?: RecordingErrorHandler | undefined;
}

/** Counters of a recording file (or, summed, of a recorder). */
export interface RecordingStats {
  /** Records accepted into the queue. */
  readonly records: number;
  /** Records refused: queue full, packet or address not encodable, file failed or closing. */
  readonly dropped: number;
  /** Bytes written to the file, headers included. */
  readonly bytesWritten: number;
  /** Files stopped by a write (or deferred open) error. */
  readonly failed: number;
}

/** Moves `from` to `to`: rename, or copy + unlink when they are on different file systems. */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fs.promises.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fs.promises.copyFile(from, to);
    await fs.promises.unlink(from);
  }
}

/**
 * One open recording file, ad-hoc or pcap (see {@link recordingFileFormat}). Create it with
 * {@link RecordingFile.open} (synchronous create-and-truncate, throws) or
 * {@link RecordingFile.openWhenReady}.
 */
export class RecordingFile {
  readonly path: string;
  readonly spoolPath: string | undefined;
  readonly format: RecordingFormat;
  #fileFormat: RecordingFileFormat;
  #maxQueueBytes: number;
  #flushBytes: number;
  #onError: RecordingErrorHandler | undefined;
  #fd: number | undefined;
  /** True once the file exists on disk (so close() has something to move). */
  #created: boolean;
  /** Chunks waiting to be written, in order. */
  #queue: Buffer[] = [];
  /** Bytes in the queue plus bytes of the write in flight. */
  #pendingBytes = 0;
  #writing = false;
  #failed = false;
  #closing = false;
  #closePromise: Promise<void> | undefined;
  #opened: Promise<void> | undefined;
  #idleWaiters: (() => void)[] = [];
  #records = 0;
  #dropped = 0;
  #bytesWritten = 0;

  private constructor(options: RecordingFileOptions, fd: number | undefined) {
    this.path = options.path;
    this.spoolPath = options.spoolPath;
    this.format = options.format;
    this.#fileFormat = recordingFileFormat(options.format);
    this.#maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.#flushBytes = options.flushBytes ?? DEFAULT_FLUSH_BYTES;
    this.#onError = options.onError;
    this.#fd = fd;
    this.#created = fd !== undefined;
    const fileHeader = this.#fileFormat.fileHeader();
    if (fileHeader !== undefined) this.#enqueue(fileHeader, undefined);
  }

  /** Where the bytes go while the file is open: the spool path if any, else the final path. */
  get writePath(): string {
    return this.spoolPath ?? this.path;
  }

  /**
   * Creates (truncating) the file now. Throws {@link RecordingError} `ERR_RECORD_OPEN` with the
   * system error as `cause` when it cannot be created.
   */
  static open(options: RecordingFileOptions): RecordingFile {
    const target = options.spoolPath ?? options.path;
    let fd: number;
    try {
      fd = fs.openSync(target, 'w', FILE_MODE);
    } catch (err) {
      throw new RecordingError(
        'ERR_RECORD_OPEN',
        target,
        `cannot create recording file ${target}: ${describeError(err)}`,
        { cause: err },
      );
    }
    return new RecordingFile(options, fd);
  }

  /**
   * Creates the file once `previous` settles (used when an earlier file of the same name is still
   * being flushed and moved). Records are queued meanwhile. Never throws: a failure to create
   * the file is reported through `onError` as `ERR_RECORD_OPEN` and the file counts as failed.
   */
  static openWhenReady(previous: Promise<unknown>, options: RecordingFileOptions): RecordingFile {
    const file = new RecordingFile(options, undefined);
    file.#opened = previous.then(
      () => file.#openDeferred(),
      () => file.#openDeferred(),
    );
    return file;
  }

  async #openDeferred(): Promise<void> {
    const target = this.writePath;
    try {
      // Callback fs.open: a raw descriptor, like fs.openSync (a FileHandle would be closed on GC).
      this.#fd = await new Promise<number>((resolve, reject) => {
        fs.open(target, 'w', FILE_MODE, (err, fd) => (err === null ? resolve(fd) : reject(err)));
      });
      this.#created = true;
    } catch (err) {
      this.#fail(
        'ERR_RECORD_OPEN',
        `cannot create recording file ${target}: ${describeError(err)}`,
        err,
      );
      return;
    }
    this.#pump();
  }

  /** Counters of this file. */
  get stats(): RecordingStats {
    return {
      records: this.#records,
      dropped: this.#dropped,
      bytesWritten: this.#bytesWritten,
      failed: this.#failed ? 1 : 0,
    };
  }

  /** True once a write error stopped the file. */
  get failed(): boolean {
    return this.#failed;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * Records one packet: encodes the format's record header and queues it with the packet.
   * Never blocks, never throws. The packet Buffer is kept (not copied) until written, so the
   * caller must not modify it afterwards (style.md P14). Ad-hoc records store `from` only; pcap
   * records show `from` -> `to` (see `Recorder.record` in recorder.ts for which addresses to pass).
   */
  write(packet: Buffer, from: Endpoint, to: Endpoint, family: IpFamily, wallMs: number): void {
    try {
      if (this.#closing || this.#failed) {
        this.#dropped++;
        return;
      }
      const headerSize = this.#fileFormat.recordHeaderSize(family);
      if (this.#pendingBytes + headerSize + packet.length > this.#maxQueueBytes) {
        this.#dropped++;
        return;
      }
      const header = this.#fileFormat.recordHeader(packet, from, to, family, wallMs);
      if (header === undefined) {
        this.#dropped++;
        return;
      }
      this.#records++;
      this.#enqueue(header, packet);
      if (this.#pendingBytes >= this.#flushBytes) this.#pump();
    } catch {
      // Unreachable by design (the encoders do not throw); kept so the relay can never see one.
      this.#dropped++;
    }
  }

  #enqueue(header: Buffer, packet: Buffer | undefined): void {
    this.#queue.push(header);
    this.#pendingBytes += header.length;
    if (packet !== undefined && packet.length > 0) {
      this.#queue.push(packet);
      this.#pendingBytes += packet.length;
    }
  }

  /** Starts one writev of the queued chunks unless one is in flight. */
  #pump(): void {
    const fd = this.#fd;
    if (this.#writing || fd === undefined || this.#failed) return;
    if (this.#queue.length === 0) {
      this.#notifyIdle();
      return;
    }
    const chunks = this.#queue.length <= MAX_IOV ? this.#queue : this.#queue.slice(0, MAX_IOV);
    this.#queue = this.#queue.length <= MAX_IOV ? [] : this.#queue.slice(MAX_IOV);
    this.#writing = true;
    try {
      fs.writev(fd, chunks, (err, written) => {
        this.#writing = false;
        this.#afterWrite(err, written, chunks);
      });
    } catch (err) {
      // Argument validation throws synchronously; #pump also runs from fs callbacks, where a
      // throw would be an uncaught exception.
      this.#writing = false;
      this.#fail(
        'ERR_RECORD_WRITE',
        `error writing recording file ${this.writePath}: ${describeError(err)}`,
        err,
      );
    }
  }

  #afterWrite(err: NodeJS.ErrnoException | null, written: number, chunks: Buffer[]): void {
    if (err !== null || written <= 0) {
      const why = err === null ? 'no bytes written' : describeError(err);
      this.#fail(
        'ERR_RECORD_WRITE',
        `error writing recording file ${this.writePath}: ${why}`,
        err ?? undefined,
      );
      return;
    }
    this.#bytesWritten += written;
    this.#pendingBytes -= written;
    let total = 0;
    for (const chunk of chunks) total += chunk.length;
    if (written < total) {
      // Short write: put the unwritten tail back in front, in order.
      let skip = written;
      const rest: Buffer[] = [];
      for (const chunk of chunks) {
        if (skip >= chunk.length) {
          skip -= chunk.length;
          continue;
        }
        rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
        skip = 0;
      }
      this.#queue = rest.concat(this.#queue);
    }
    if (this.#closing || this.#pendingBytes >= this.#flushBytes || written < total) {
      this.#pump();
    } else {
      this.#notifyIdle();
    }
  }

  /** Stops the file after an error: drops the queue, closes the descriptor, reports once. */
  #fail(code: RecordingErrorCode, message: string, cause: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#queue = [];
    this.#pendingBytes = 0;
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) fs.close(fd, () => undefined);
    this.#report(
      new RecordingError(
        code,
        this.writePath,
        message,
        cause === undefined ? undefined : { cause },
      ),
    );
    this.#notifyIdle();
  }

  #report(err: RecordingError): void {
    try {
      this.#onError?.(err);
    } catch {
      // A failing error handler must not reach the packet path (P8).
    }
  }

  #notifyIdle(): void {
    if (this.#writing) return;
    if (this.#queue.length > 0 && !this.#failed) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Resolves when nothing is queued or in flight (or the file failed). */
  #idle(): Promise<void> {
    if (!this.#writing && (this.#queue.length === 0 || this.#failed)) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#pump();
    });
  }

  /**
   * Writes what is queued, closes the file and, with a spool path, moves it to its final path
   * (rename; copy + unlink across file systems). A failed file is still moved, with what it got.
   * Idempotent; never rejects: errors go to `onError` (`ERR_RECORD_CLOSE`, `ERR_RECORD_MOVE`).
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#finish();
    return this.#closePromise;
  }

  async #finish(): Promise<void> {
    this.#closing = true;
    try {
      if (this.#opened !== undefined) await this.#opened;
      await this.#idle();
      const fd = this.#fd;
      this.#fd = undefined;
      if (fd !== undefined) {
        try {
          await new Promise<void>((resolve, reject) => {
            fs.close(fd, (err) => (err === null ? resolve() : reject(err)));
          });
        } catch (err) {
          const message = `error closing recording file ${this.writePath}: ${describeError(err)}`;
          this.#report(
            new RecordingError('ERR_RECORD_CLOSE', this.writePath, message, { cause: err }),
          );
        }
      }
      if (this.spoolPath !== undefined && this.#created) {
        try {
          await moveFile(this.spoolPath, this.path);
        } catch (err) {
          const message = `cannot move recording file ${this.spoolPath} to ${this.path}: ${describeError(err)}`;
          this.#report(
            new RecordingError('ERR_RECORD_MOVE', this.spoolPath, message, { cause: err }),
          );
        }
      }
    } catch (err) {
      // Nothing above should throw; never let close() reject (callers may not await it).
      const message = `error finishing recording file ${this.writePath}: ${describeError(err)}`;
      this.#report(new RecordingError('ERR_RECORD_CLOSE', this.writePath, message, { cause: err }));
    }
  }
}
