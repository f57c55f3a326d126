/**
 * Local recording writers (docs/protocol.md sections 6.1-6.5, 6.7): {@link RecordingFile} is one
 * open file, {@link Recorder} is what one leg's recorder slot holds, {@link RecorderFactory}
 * creates recorders from the `-r`/`-S`/`-P`/`-R` settings.
 *
 * The packet path only ever calls the synchronous, non-throwing `record()`/`write()`: records go
 * into a bounded in-memory queue that is written asynchronously with `fs.writev` (header and
 * packet as two chunks, style.md P17). When the queue is full, records are dropped and counted.
 * The first write error stops that file, is counted and reported once through `onError`; the
 * relay goes on (P8). `close()` flushes, closes, moves a spooled file into the record directory,
 * never rejects, and is idempotent (P18).
 *
 * Files are created synchronously when a recorder starts (like the reference's `open(2)` in
 * `ropen()`), so a bad directory is an immediate, clear error for R/C to answer with.
 */

import fs from 'node:fs';
import { adhocRecordHeader, ADHOC_HEADER_SIZE } from './adhoc.ts';
import { legFileNames, namedFileNames, resolveInside, type RecordFileNames } from './paths.ts';
import {
  PCAP_IPV4_PREFIX_SIZE,
  PCAP_IPV6_PREFIX_SIZE,
  pcapGlobalHeader,
  pcapRecordPrefix,
} from './pcap.ts';
import type { Endpoint, IpFamily } from './record-types.ts';
import type { Side } from '../base/side.ts';

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

/** On-disk format of a recording file. */
export type RecordingFormat = 'adhoc' | 'pcap';

/** Default bound of a file's in-memory queue: beyond it, records are dropped and counted. */
export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
/**
 * Queued bytes that trigger a write. Below it records wait in memory (the reference buffers 4 KiB
 * per file the same way); `close()` writes the rest. Keeps the syscall rate low with many files.
 */
export const DEFAULT_FLUSH_BYTES = 16 * 1024;
/** Linux IOV_MAX: most buffers one writev takes. */
const MAX_IOV = 1024;
/** Mode of created files before the umask, as the reference's DEFFILEMODE. */
const FILE_MODE = 0o666;

/*
 * One IPv4 identification counter shared by every pcap file (6.5: "one global 16-bit counter
 * incremented per record"), as the reference's static `ip_id`. IPv6 records do not use it.
 */
let pcapIpId = 0;

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

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === undefined ? err.message : `${code}: ${err.message}`;
  }
  return String(err);
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
 * One open recording file, ad-hoc or pcap. Create it with {@link RecordingFile.open} (synchronous
 * create-and-truncate, throws) or {@link RecordingFile.openWhenReady}.
 */
export class RecordingFile {
  readonly path: string;
  readonly spoolPath: string | undefined;
  readonly format: RecordingFormat;
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
    this.#maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.#flushBytes = options.flushBytes ?? DEFAULT_FLUSH_BYTES;
    this.#onError = options.onError;
    this.#fd = fd;
    this.#created = fd !== undefined;
    if (this.format === 'pcap') this.#enqueue(pcapGlobalHeader(), undefined);
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
        `cannot create recording file ${target}: ${describe(err)}`,
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
        `cannot create recording file ${target}: ${describe(err)}`,
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
   * Records one packet: encodes the ad-hoc header or pcap prefix and queues it with the packet.
   * Never blocks, never throws. The packet Buffer is kept (not copied) until written, so the
   * caller must not modify it afterwards (style.md P14). Ad-hoc records store `from` only; pcap
   * records show `from` -> `to` (see {@link Recorder.record} for which addresses to pass).
   */
  write(packet: Buffer, from: Endpoint, to: Endpoint, family: IpFamily, wallMs: number): void {
    try {
      if (this.#closing || this.#failed) {
        this.#dropped++;
        return;
      }
      const pcap = this.format === 'pcap';
      const headerSize = pcap
        ? family === 4
          ? PCAP_IPV4_PREFIX_SIZE
          : PCAP_IPV6_PREFIX_SIZE
        : ADHOC_HEADER_SIZE;
      if (this.#pendingBytes + headerSize + packet.length > this.#maxQueueBytes) {
        this.#dropped++;
        return;
      }
      const header = pcap
        ? pcapRecordPrefix(packet, from, to, family, wallMs, pcapIpId)
        : adhocRecordHeader(from, family, wallMs, packet.length);
      if (header === undefined) {
        this.#dropped++;
        return;
      }
      if (pcap && family === 4) pcapIpId = (pcapIpId + 1) & 0xffff;
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
        `error writing recording file ${this.writePath}: ${describe(err)}`,
        err,
      );
    }
  }

  #afterWrite(err: NodeJS.ErrnoException | null, written: number, chunks: Buffer[]): void {
    if (err !== null || written <= 0) {
      const why = err === null ? 'no bytes written' : describe(err);
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
          const message = `error closing recording file ${this.writePath}: ${describe(err)}`;
          this.#report(
            new RecordingError('ERR_RECORD_CLOSE', this.writePath, message, { cause: err }),
          );
        }
      }
      if (this.spoolPath !== undefined && this.#created) {
        try {
          await moveFile(this.spoolPath, this.path);
        } catch (err) {
          const message = `cannot move recording file ${this.spoolPath} to ${this.path}: ${describe(err)}`;
          this.#report(
            new RecordingError('ERR_RECORD_MOVE', this.spoolPath, message, { cause: err }),
          );
        }
      }
    } catch (err) {
      // Nothing above should throw; never let close() reject (callers may not await it).
      const message = `error finishing recording file ${this.writePath}: ${describe(err)}`;
      this.#report(new RecordingError('ERR_RECORD_CLOSE', this.writePath, message, { cause: err }));
    }
  }
}

/**
 * What one leg's recorder slot holds (6.1): routes the packets arriving on that leg to its RTP
 * file, its RTCP file (none with `-R`), or the one combined pcap file.
 */
export interface Recorder {
  /** True when this recorder writes one combined pcap file (`s` / `-a` with `-P`). */
  readonly combined: boolean;
  /** Final paths of the files this recorder writes to. */
  readonly paths: readonly string[];
  /**
   * Records one packet that arrived on the leg, at wall-clock time `wallMs` (ms since epoch).
   * Never blocks, never throws; the packet must not be modified afterwards.
   *
   * Addresses (6.5): normally `from` = the sending party's address/port as received and `to` =
   * the relay's local address/port that received it (for a wildcard local address, pass the
   * local address that routes back to the sender). Exception, combined files only: for RTCP pass
   * the packet *as the relay sends it on*, `from` = the other leg's local address/port and `to` =
   * the other party's address/port. Ad-hoc files store `from` only.
   *
   * `family` is the IP version of the socket; addresses may be in IPv4-mapped form.
   */
  record(
    packet: Buffer,
    isRtp: boolean,
    from: Endpoint,
    to: Endpoint,
    family: IpFamily,
    wallMs: number,
  ): void;
  /** Counters summed over this recorder's files (a shared combined file counts both legs). */
  stats(): RecordingStats;
  /**
   * Stops recording. The files are flushed, closed and moved out of the spool directory once no
   * other recorder shares them. Idempotent; never rejects.
   */
  close(): Promise<void>;
}

/** Settings of a {@link RecorderFactory}, from `-r`, `-S`, `-P` and `-R`. */
export interface RecorderFactoryOptions {
  /** `-r`: directory of the finished recordings. */
  readonly recordDir: string;
  /** `-S`: spool directory; files are written there and renamed into `recordDir` when closed. */
  readonly spoolDir?: string | undefined;
  /** `-P`: pcap files instead of ad-hoc; makes `single` effective. */
  readonly pcap: boolean;
  /** `-R`: do not record RTCP. */
  readonly noRtcp: boolean;
  /** Queue bound per file; default {@link DEFAULT_MAX_QUEUE_BYTES}. */
  readonly maxQueueBytes?: number | undefined;
  /** Queued bytes that start a write; default {@link DEFAULT_FLUSH_BYTES}. */
  readonly flushBytes?: number | undefined;
  /** Receives asynchronous failures of every file (write, close, move, deferred create). */
  readonly onError?: RecordingErrorHandler | undefined;
}

/** A shared open file and the number of recorders using it. */
interface FileEntry {
  readonly key: string;
  readonly file: RecordingFile;
  refs: number;
  done: boolean;
}

/** One recorder's claim on a {@link FileEntry}; release() is idempotent. */
interface FileLease {
  readonly entry: FileEntry;
  release(): Promise<void>;
}

class LegRecorder implements Recorder {
  readonly combined: boolean;
  readonly paths: readonly string[];
  #rtp: FileLease | undefined;
  #rtcp: FileLease | undefined;
  #noRtcp: boolean;
  #leases: readonly FileLease[];
  #closePromise: Promise<void> | undefined;

  constructor(rtp: FileLease, rtcp: FileLease | undefined, combined: boolean, noRtcp: boolean) {
    this.combined = combined;
    this.#rtp = rtp;
    this.#rtcp = combined ? rtp : rtcp;
    this.#noRtcp = noRtcp;
    this.#leases = rtcp === undefined || combined ? [rtp] : [rtp, rtcp];
    this.paths = this.#leases.map((lease) => lease.entry.file.path);
  }

  record(
    packet: Buffer,
    isRtp: boolean,
    from: Endpoint,
    to: Endpoint,
    family: IpFamily,
    wallMs: number,
  ): void {
    if (isRtp) {
      this.#rtp?.entry.file.write(packet, from, to, family, wallMs);
    } else if (!this.#noRtcp) {
      this.#rtcp?.entry.file.write(packet, from, to, family, wallMs);
    }
  }

  stats(): RecordingStats {
    let records = 0;
    let dropped = 0;
    let bytesWritten = 0;
    let failed = 0;
    for (const lease of this.#leases) {
      const s = lease.entry.file.stats;
      records += s.records;
      dropped += s.dropped;
      bytesWritten += s.bytesWritten;
      failed += s.failed;
    }
    return { records, dropped, bytesWritten, failed };
  }

  close(): Promise<void> {
    if (this.#closePromise === undefined) {
      this.#rtp = undefined;
      this.#rtcp = undefined;
      this.#closePromise = Promise.all(this.#leases.map((lease) => lease.release())).then(
        () => undefined,
      );
    }
    return this.#closePromise;
  }
}

/**
 * Creates the recorders of R, C with a file name, and `-a`. Keeps a registry of open files by
 * final path: a second recorder for a file that is already open joins it (reference counted; the
 * file closes when its last user closes). That is how both legs share a combined file; it also
 * keeps the reference's quirks (`C NAME` on both legs, `abc;1`/`abc;2` streams) from writing
 * the same file through two descriptors. A file still being flushed and moved is not truncated
 * under the old writer: the new one is created once the old one is done.
 */
export class RecorderFactory {
  #recordDir: string;
  #spoolDir: string | undefined;
  #pcap: boolean;
  #noRtcp: boolean;
  #fileOptions: Pick<RecordingFileOptions, 'maxQueueBytes' | 'flushBytes' | 'onError' | 'format'>;
  #open = new Map<string, FileEntry>();
  #finishing = new Map<string, Promise<void>>();
  #closed = false;
  #closePromise: Promise<void> | undefined;

  constructor(options: RecorderFactoryOptions) {
    this.#recordDir = options.recordDir;
    this.#spoolDir = options.spoolDir;
    this.#pcap = options.pcap;
    this.#noRtcp = options.noRtcp;
    this.#fileOptions = {
      format: options.pcap ? 'pcap' : 'adhoc',
      maxQueueBytes: options.maxQueueBytes,
      flushBytes: options.flushBytes,
      onError: options.onError,
    };
  }

  /** Number of distinct files open now (shared files count once). */
  get openFiles(): number {
    return this.#open.size;
  }

  /**
   * Recorder for `R` / `-a` on one leg (leg 1 = `o`, leg 0 = `a`): files `CALLID=TAG.o.rtp` and
   * `.o.rtcp` (none with `-R`), or with `single` and `-P` the combined `CALLID=TAG.pcap` shared
   * with the other leg. `sessionTag` is the session's tag; its `;N` media number is dropped.
   * Throws {@link RecordingError}: `ERR_RECORD_NAME` (unsafe name), `ERR_RECORD_OPEN` (cannot
   * create), `ERR_RECORD_CLOSED`.
   */
  forLeg(callId: string, sessionTag: string, leg: Side, single: boolean): Recorder {
    const names = legFileNames(callId, sessionTag, leg, single && this.#pcap);
    if (names === undefined) {
      throw new RecordingError(
        'ERR_RECORD_NAME',
        callId,
        `unsafe recording file name for call-id ${JSON.stringify(callId)} tag ${JSON.stringify(sessionTag)}`,
      );
    }
    return this.#create(names, JSON.stringify(callId));
  }

  /**
   * Recorder for `C NAME` (a local file name): `NAME.rtp` and `NAME.rtcp` (none with `-R`), or
   * with `single` and `-P` the file `NAME` itself, shared with any other recorder of that name.
   * NAME may name a file in an existing subdirectory of the record directory; absolute names,
   * `..` and NUL are refused. Throws like {@link forLeg}.
   */
  forName(name: string, single: boolean): Recorder {
    const names = namedFileNames(name, single && this.#pcap);
    if (names === undefined) {
      throw new RecordingError(
        'ERR_RECORD_NAME',
        name,
        `unsafe recording file name ${JSON.stringify(name)}`,
      );
    }
    return this.#create(names, JSON.stringify(name));
  }

  #create(names: RecordFileNames, what: string): Recorder {
    if (this.#closed) {
      throw new RecordingError('ERR_RECORD_CLOSED', what, RECORDING_ERROR_CODES.ERR_RECORD_CLOSED);
    }
    if (names.kind === 'combined') {
      return new LegRecorder(this.#acquire(names.file), undefined, true, this.#noRtcp);
    }
    const rtp = this.#acquire(names.rtp);
    let rtcp: FileLease | undefined;
    if (!this.#noRtcp) {
      try {
        rtcp = this.#acquire(names.rtcp);
      } catch (err) {
        void rtp.release();
        throw err;
      }
    }
    return new LegRecorder(rtp, rtcp, false, this.#noRtcp);
  }

  /** Opens (or joins) the file `rel` under the record (and spool) directory. */
  #acquire(rel: string): FileLease {
    const path = resolveInside(this.#recordDir, rel);
    const spoolPath = this.#spoolDir === undefined ? undefined : resolveInside(this.#spoolDir, rel);
    if (path === undefined || (this.#spoolDir !== undefined && spoolPath === undefined)) {
      throw new RecordingError(
        'ERR_RECORD_NAME',
        rel,
        `recording file name ${JSON.stringify(rel)} leaves the directory`,
      );
    }
    let entry = this.#open.get(path);
    if (entry === undefined) {
      const options: RecordingFileOptions = { ...this.#fileOptions, path, spoolPath };
      const previous = this.#finishing.get(path);
      const file =
        previous === undefined
          ? RecordingFile.open(options)
          : RecordingFile.openWhenReady(previous, options);
      entry = { key: path, file, refs: 0, done: false };
      this.#open.set(path, entry);
    }
    entry.refs++;
    return this.#lease(entry);
  }

  #lease(entry: FileEntry): FileLease {
    let released: Promise<void> | undefined;
    return {
      entry,
      release: () => {
        if (released === undefined) {
          entry.refs--;
          released = entry.refs <= 0 ? this.#finish(entry) : Promise.resolve();
        }
        return released;
      },
    };
  }

  /** Closes an entry's file (once) and tracks it until flushed and moved. */
  #finish(entry: FileEntry): Promise<void> {
    if (entry.done) return entry.file.close();
    entry.done = true;
    if (this.#open.get(entry.key) === entry) this.#open.delete(entry.key);
    const closing = entry.file.close();
    this.#finishing.set(entry.key, closing);
    void closing.then(() => {
      if (this.#finishing.get(entry.key) === closing) this.#finishing.delete(entry.key);
    });
    return closing;
  }

  /**
   * Shutdown: closes every file still open (their recorders then record nothing) and waits until
   * all files are flushed, closed and moved. Afterwards new recorders are refused. Idempotent;
   * never rejects.
   */
  close(): Promise<void> {
    if (this.#closePromise === undefined) {
      this.#closed = true;
      for (const entry of [...this.#open.values()]) void this.#finish(entry);
      this.#closePromise = Promise.all([...this.#finishing.values()]).then(() => undefined);
    }
    return this.#closePromise;
  }
}
