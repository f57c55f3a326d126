/**
 * Runs nftables transactions. Each is one `nft -f FILE` (text) or `nft -j -f FILE` (libnftables'
 * JSON schema), and the kernel commits all of it or none of it: nft's exit status is the
 * acknowledgement, its stderr only the reason of a failure, its stdout (JSON) the listings and
 * counters a transaction asked for.
 *
 * The `nft` children are started by one small long-lived shell, not by the daemon: a fork of the
 * daemon costs it milliseconds of CPU per transaction (its page tables are copied), a fork of the
 * shell costs the shell. The daemon writes a transaction to a file in a private directory, writes
 * one line to the shell (`t` or `j`), and reads one line back: nft's exit status. One transaction
 * at a time; the shell is started with the first and again after it died. Asynchronous: nothing
 * here runs on the packet path.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorMessage } from '../util/error-message.ts';

/** The outcome of one transaction. */
export type NftResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** Runs one text transaction; never rejects. */
export type NftRun = (script: string) => Promise<NftResult>;

/** The outcome of one JSON transaction: what nft printed when it succeeded. */
export type NftJsonResult =
  { readonly ok: true; readonly output: string } | { readonly ok: false; readonly message: string };

/** Runs one JSON transaction (`{"nftables": commands}`); never rejects. */
export type NftJsonRun = (commands: readonly unknown[]) => Promise<NftJsonResult>;

/**
 * The nft binary: the first executable `nft` on PATH, then in /usr/sbin and /sbin (a service
 * user's PATH often lacks the sbin directories). undefined when there is none.
 */
export function findNft(searchPath: string): string | undefined {
  const dirs = [...searchPath.split(path.delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, 'nft');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** stderr kept per transaction, enough for nft's error lines. */
const STDERR_MAX = 4096;

/**
 * The shell's loop: for each line, nft reads the transaction file (JSON with `j`), its output
 * and errors go to files, and its exit status comes back as one line.
 */
const SHELL_LOOP = [
  'nft=$1; d=$2',
  'while IFS= read -r mode; do',
  '  if [ "$mode" = j ]; then "$nft" -j -f "$d/in" >"$d/out" 2>"$d/err"',
  '  else "$nft" -f "$d/in" >"$d/out" 2>"$d/err"; fi',
  '  echo "$?"',
  'done',
].join('\n');

interface Job {
  readonly mode: 't' | 'j';
  readonly input: string;
  readonly done: (result: NftJsonResult) => void;
}

/**
 * The daemon's nft runner: text and JSON transactions, one at a time, through the long-lived
 * shell (see the file comment).
 */
export class NftShell {
  readonly #binary: string;
  readonly #queue: Job[] = [];
  #dir: string | undefined;
  #child: ChildProcess | undefined;
  /** The status line the running job waits for. */
  #awaiting: ((line: string | undefined) => void) | undefined;
  #buffered = '';
  #running = false;
  #closed = false;

  constructor(binary: string) {
    this.#binary = binary;
  }

  /** A text transaction (`nft -f`). */
  readonly text: NftRun = async (script) => {
    const result = await this.#submit('t', script);
    return result.ok ? { ok: true } : result;
  };

  /** A JSON transaction (`nft -j -f`). */
  readonly json: NftJsonRun = (commands) =>
    this.#submit('j', JSON.stringify({ nftables: commands }));

  /** Stops the shell and removes its directory once the queue is done. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#running) this.#stop();
  }

  #submit(mode: 't' | 'j', input: string): Promise<NftJsonResult> {
    if (this.#closed) return Promise.resolve({ ok: false, message: 'nft runner closed' });
    return new Promise((done) => {
      this.#queue.push({ mode, input, done });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    // Bounded by the queue: each round takes one job off it.
    for (let job = this.#queue.shift(); job !== undefined; job = this.#queue.shift()) {
      job.done(await this.#run(job));
    }
    this.#running = false;
    if (this.#closed) this.#stop();
  }

  async #run(job: Job): Promise<NftJsonResult> {
    let dir: string;
    try {
      dir = this.#directory();
      await writeFile(path.join(dir, 'in'), job.input, { mode: 0o600 });
    } catch (err) {
      return { ok: false, message: `cannot write the nft transaction: ${errorMessage(err)}` };
    }
    const child = this.#shell(dir);
    const status = new Promise<string | undefined>((resolve) => {
      this.#awaiting = resolve;
    });
    child.stdin?.write(`${job.mode}\n`);
    const line = await status;
    if (line === undefined) return { ok: false, message: `${this.#binary}: its shell exited` };
    const [out, err] = await Promise.all([
      readFile(path.join(dir, 'out'), 'utf8').catch(() => ''),
      readFile(path.join(dir, 'err'), 'utf8').catch(() => ''),
    ]);
    if (line === '0') return { ok: true, output: out };
    const reason = err.slice(0, STDERR_MAX).trim().split('\n').slice(0, 4).join(' | ');
    return { ok: false, message: reason === '' ? `nft exited with status ${line}` : reason };
  }

  /** The private directory of the transaction files, made once (mode 0700). */
  #directory(): string {
    this.#dir ??= mkdtempSync(path.join(tmpdir(), 'rtpproxy-nft-'));
    return this.#dir;
  }

  /** The running shell, started if needed. */
  #shell(dir: string): ChildProcess {
    if (this.#child !== undefined) return this.#child;
    const child = spawn('/bin/sh', ['-c', SHELL_LOOP, 'rtpproxy-nft', this.#binary, dir], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.#child = child;
    this.#buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.#buffered += chunk;
      // Bounded: one line per job, and one job at a time.
      for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
        const line = this.#buffered.slice(0, nl).trim();
        this.#buffered = this.#buffered.slice(nl + 1);
        this.#answer(line);
      }
    });
    child.stdin.on('error', () => undefined);
    const gone = (): void => {
      if (this.#child === child) this.#child = undefined;
      this.#answer(undefined);
    };
    child.on('error', gone);
    child.on('close', gone);
    return child;
  }

  #answer(line: string | undefined): void {
    const awaiting = this.#awaiting;
    this.#awaiting = undefined;
    awaiting?.(line);
  }

  #stop(): void {
    this.#child?.stdin?.end();
    this.#child = undefined;
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

/** CAP_NET_ADMIN's bit in the capability masks of /proc/PID/status. */
const CAP_NET_ADMIN = 12n;

/**
 * Whether an `nft` child of this process would hold CAP_NET_ADMIN, from the text of
 * /proc/self/status: as root a child gets the bounding set, otherwise only the ambient set. A
 * reason when it would not, undefined when it would (or when the text says nothing).
 */
export function netAdminProblem(status: string, euid: number): string | undefined {
  const field = euid === 0 ? 'CapBnd' : 'CapAmb';
  const m = new RegExp(`^${field}:\\s*([0-9a-fA-F]+)$`, 'm').exec(status);
  if (m?.[1] === undefined) return undefined;
  if ((BigInt(`0x${m[1]}`) >> CAP_NET_ADMIN) & 1n) return undefined;
  return euid === 0
    ? 'CAP_NET_ADMIN is not in the bounding set'
    : 'no CAP_NET_ADMIN (not root, and not an ambient capability)';
}
