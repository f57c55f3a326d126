/**
 * The recorders of the legs (docs/protocol.md sections 6.1-6.3, 6.7): {@link Recorder} is what
 * one leg's recorder slot holds, {@link RecorderFactory} creates recorders from the
 * `-r`/`-S`/`-P`/`-R` settings and shares open files between them. The files themselves are
 * recording-file.ts, their on-disk formats recording-format.ts, the errors recording-error.ts;
 * their names are re-exported here for the recorders' users.
 */

import { legFileNames, namedFileNames, resolveInside, type RecordFileNames } from './paths.ts';
import type { Endpoint, IpFamily } from './record-types.ts';
import {
  RECORDING_ERROR_CODES,
  RecordingError,
  type RecordingErrorHandler,
} from './recording-error.ts';
import { RecordingFile, type RecordingFileOptions, type RecordingStats } from './recording-file.ts';
import type { Side } from '../base/side.ts';

export { RecordingError } from './recording-error.ts';
export { RecordingFile, type RecordingFileOptions, type RecordingStats } from './recording-file.ts';

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
  /** Files not closed yet: their bytes are read from them (figures()). */
  readonly #live = new Set<RecordingFile>();
  /** Bytes written to files closed since start. */
  #closedBytes = 0;
  /** Files stopped by an error (write, close, move, deferred create) since start. */
  #failures = 0;

  constructor(options: RecorderFactoryOptions) {
    this.#recordDir = options.recordDir;
    this.#spoolDir = options.spoolDir;
    this.#pcap = options.pcap;
    this.#noRtcp = options.noRtcp;
    this.#fileOptions = {
      format: options.pcap ? 'pcap' : 'adhoc',
      maxQueueBytes: options.maxQueueBytes,
      flushBytes: options.flushBytes,
      onError: (err) => {
        this.#failures += 1;
        options.onError?.(err);
      },
    };
  }

  /** For the metrics: files open now, bytes written since start, files that failed. */
  figures(): { readonly open: number; readonly bytesWritten: number; readonly failures: number } {
    let bytes = this.#closedBytes;
    for (const file of this.#live) bytes += file.stats.bytesWritten;
    return { open: this.#open.size, bytesWritten: bytes, failures: this.#failures };
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
      this.#live.add(file);
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
      this.#live.delete(entry.file);
      this.#closedBytes += entry.file.stats.bytesWritten;
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
