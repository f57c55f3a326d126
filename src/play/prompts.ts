/**
 * Prompt files (docs/protocol.md 7.1, 7.2): `NAME.PT` holds raw encoded audio for payload type PT,
 * frames back to back, no header, as `rtpproxy-makeann` (or the reference's `makeann`) writes it.
 *
 * {@link PromptCache} reads each file once and shares the bytes between every player using it; on
 * every use it `stat`s the file (asynchronously) and reads it again when its modification time,
 * size or inode changed, so a prompt replaced on disk is picked up without a restart. A file larger
 * than {@link MAX_PROMPT_BYTES} is never read: a prompt is held in memory whole, and a huge file
 * given to `P` by mistake must not take the daemon's memory (docs/playback.md).
 */
import { promises as fsp } from 'node:fs';

/** Frame sizes of the codecs the reference's player knows (sippy/rtpproxy src/rtpp_server.c). */
export const PROMPT_CODECS = {
  0: { name: 'PCMU', bytesPerFrame: 8, msPerFrame: 1 },
  3: { name: 'GSM', bytesPerFrame: 33, msPerFrame: 20 },
  4: { name: 'G723', bytesPerFrame: 24, msPerFrame: 30 },
  8: { name: 'PCMA', bytesPerFrame: 8, msPerFrame: 1 },
  9: { name: 'G722', bytesPerFrame: 8, msPerFrame: 1 },
  18: { name: 'G729', bytesPerFrame: 10, msPerFrame: 10 },
} as const satisfies Readonly<Record<number, PromptCodec>>;

/** How one codec's prompt file is cut into frames. */
export interface PromptCodec {
  readonly name: string;
  readonly bytesPerFrame: number;
  readonly msPerFrame: number;
}

/** Packet time of a player without a stored `z` value (the reference's RTPS_TICKS_MIN). */
export const DEFAULT_PACKET_MS = 10;

/** RTP timestamp units per millisecond: the reference uses an 8 kHz clock for every codec above. */
const CLOCK_PER_MS = 8;

/** Size and pacing of the packets a player sends. */
export interface PacketFraming {
  readonly payloadType: number;
  /** Payload bytes per packet: whole frames. */
  readonly payloadBytes: number;
  /** Audio per packet, ms; packets are sent this far apart. */
  readonly packetMs: number;
  /** RTP timestamp increment per packet. */
  readonly timestampStep: number;
}

/** The codec of a payload type the player can send, or undefined. */
export function promptCodec(payloadType: number): PromptCodec | undefined {
  return (PROMPT_CODECS as Readonly<Record<number, PromptCodec>>)[payloadType];
}

/**
 * Packet size for a payload type at a packet time (`<= 0`: the default 10 ms), rounded up to whole
 * frames as the reference does (GSM 20 ms, G.723 30 ms at least). Undefined for payload types the
 * player cannot frame.
 */
export function packetFraming(payloadType: number, packetMs: number): PacketFraming | undefined {
  const codec = promptCodec(payloadType);
  if (codec === undefined) return undefined;
  const wanted = packetMs > 0 ? packetMs : DEFAULT_PACKET_MS;
  const frames = Math.ceil(wanted / codec.msPerFrame);
  const ms = frames * codec.msPerFrame;
  return {
    payloadType,
    payloadBytes: frames * codec.bytesPerFrame,
    packetMs: ms,
    timestampStep: ms * CLOCK_PER_MS,
  };
}

/** The file name of prompt NAME for a payload type: `NAME.PT` (docs/protocol.md 7.1). */
export function promptPath(name: string, payloadType: number): string {
  return `${name}.${String(payloadType)}`;
}

/** A prompt ready to play: the file chosen, its bytes and how they are cut into packets. */
export interface PromptSource {
  readonly path: string;
  readonly data: Buffer;
  readonly framing: PacketFraming;
}

/** The part of `node:fs/promises` the cache uses (injected by tests). */
export interface PromptFs {
  stat(path: string): Promise<{
    readonly mtimeMs: number;
    readonly size: number;
    readonly ino: number;
    isFile(): boolean;
  }>;
  readFile(path: string): Promise<Buffer>;
}

/** Largest prompt file played: 16 MiB, 35 minutes of G.711, 3.6 hours of G.729. */
export const MAX_PROMPT_BYTES = 16 * 1024 * 1024;

/** A prompt file over the size limit: `P` is refused (docs/playback.md). */
export class PromptTooLargeError extends Error {
  override readonly name = 'PromptTooLargeError';
  readonly path: string;
  readonly size: number;
  readonly limit: number;
  constructor(path: string, size: number, limit: number) {
    super(`prompt file ${path} is ${String(size)} bytes, over the limit of ${String(limit)}`);
    this.path = path;
    this.size = size;
    this.limit = limit;
  }
}

/** What the cache found at a path. */
export type PromptFile =
  | { readonly kind: 'ok'; readonly data: Buffer }
  | { readonly kind: 'missing' }
  | { readonly kind: 'too-large'; readonly size: number; readonly limit: number };

const MISSING: PromptFile = { kind: 'missing' };

/** Default bound of the bytes the cache keeps for prompts no player uses any more. */
const DEFAULT_MAX_CACHED_BYTES = 64 * 1024 * 1024;

interface CacheEntry {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
  readonly data: Buffer;
}

/** Prompt file contents by path, read once and re-read when the file changes. */
export class PromptCache {
  readonly #fs: PromptFs;
  readonly #maxBytes: number;
  readonly #maxFileBytes: number;
  /** In least-recently-used order (a hit moves the entry to the end). */
  readonly #entries = new Map<string, CacheEntry>();
  readonly #loading = new Map<string, Promise<PromptFile>>();
  #bytes = 0;
  /** Files read from disk (tests check that a hit does not read again). */
  reads = 0;

  constructor(
    options: {
      readonly fs?: PromptFs;
      readonly maxBytes?: number;
      /** Largest file read; default {@link MAX_PROMPT_BYTES}. */
      readonly maxFileBytes?: number;
    } = {},
  ) {
    this.#fs = options.fs ?? fsp;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_CACHED_BYTES;
    this.#maxFileBytes = options.maxFileBytes ?? MAX_PROMPT_BYTES;
  }

  /** Bytes held by the cache. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The contents of the file at `path`, or undefined when it does not exist or cannot be read (a
   * missing prompt is an answer, not an error: docs/protocol.md 7.1). Never rejects.
   */
  async get(path: string): Promise<Buffer | undefined> {
    const file = await this.lookup(path);
    return file.kind === 'ok' ? file.data : undefined;
  }

  /**
   * What is at `path`: the contents, nothing usable, or a file over the size limit (not read).
   * Never rejects.
   */
  lookup(path: string): Promise<PromptFile> {
    const pending = this.#loading.get(path);
    if (pending !== undefined) return pending;
    const load = this.#load(path).finally(() => this.#loading.delete(path));
    this.#loading.set(path, load);
    return load;
  }

  async #load(path: string): Promise<PromptFile> {
    let stat: Awaited<ReturnType<PromptFs['stat']>>;
    try {
      stat = await this.#fs.stat(path);
    } catch {
      this.#forget(path);
      return MISSING;
    }
    if (!stat.isFile()) {
      this.#forget(path);
      return MISSING;
    }
    if (stat.size > this.#maxFileBytes) {
      this.#forget(path);
      return { kind: 'too-large', size: stat.size, limit: this.#maxFileBytes };
    }
    const cached = this.#entries.get(path);
    if (cached?.mtimeMs === stat.mtimeMs && cached.size === stat.size && cached.ino === stat.ino) {
      this.#entries.delete(path);
      this.#entries.set(path, cached);
      return { kind: 'ok', data: cached.data };
    }
    let data: Buffer;
    try {
      data = await this.#fs.readFile(path);
      this.reads += 1;
    } catch {
      this.#forget(path);
      return MISSING;
    }
    this.#forget(path);
    // The file grew between stat and read: refused as well (it was read once, not kept).
    if (data.length > this.#maxFileBytes) {
      return { kind: 'too-large', size: data.length, limit: this.#maxFileBytes };
    }
    this.#entries.set(path, { mtimeMs: stat.mtimeMs, size: stat.size, ino: stat.ino, data });
    this.#bytes += data.length;
    this.#evict(path);
    return { kind: 'ok', data };
  }

  #forget(path: string): void {
    const entry = this.#entries.get(path);
    if (entry === undefined) return;
    this.#entries.delete(path);
    this.#bytes -= entry.data.length;
  }

  /** Drops the least recently used entries (never `keep`) while over the bound. Players keep their own reference. */
  #evict(keep: string): void {
    for (const [path, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) return;
      if (path === keep) continue;
      this.#entries.delete(path);
      this.#bytes -= entry.data.length;
    }
  }
}

/**
 * The first playable prompt for `NAME` among the payload types, in order (docs/protocol.md 7.1): the
 * file must exist, be readable, hold at least one packet, and its payload type must be one the
 * player can frame. The reference creates a silent player for other payload types; we skip them
 * and try the next one instead (docs/protocol.md 7.2: "we should rather refuse such files"). A file over
 * the size limit is skipped too; when no other file plays, this rejects with a
 * {@link PromptTooLargeError} naming the first such file, so that `P` can say why.
 */
export async function resolvePrompt(
  cache: PromptCache,
  name: string,
  payloadTypes: readonly number[],
  packetMs: number,
): Promise<PromptSource | undefined> {
  let tooLarge: PromptTooLargeError | undefined;
  for (const pt of payloadTypes) {
    const framing = packetFraming(pt, packetMs);
    if (framing === undefined) continue;
    const path = promptPath(name, pt);
    const file = await cache.lookup(path);
    if (file.kind === 'too-large') {
      tooLarge ??= new PromptTooLargeError(path, file.size, file.limit);
      continue;
    }
    if (file.kind === 'missing' || file.data.length < framing.payloadBytes) continue;
    return { path, data: file.data, framing };
  }
  if (tooLarge !== undefined) throw tooLarge;
  return undefined;
}
