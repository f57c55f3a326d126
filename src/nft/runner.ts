/**
 * Runs one nftables transaction: `nft -f -` reads the script on its stdin, and the kernel commits
 * all of it or none of it. The exit status is the acknowledgement; stderr is kept only as the
 * reason of a failure. Asynchronous: the child runs beside the event loop, never on the packet path.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorMessage } from '../util/error-message.ts';

/** The outcome of one transaction. */
export type NftResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** Runs one transaction; never rejects. */
export type NftRun = (script: string) => Promise<NftResult>;

/** The outcome of one JSON transaction: what nft printed (the listings asked for) when it succeeded. */
export type NftJsonResult =
  { readonly ok: true; readonly output: string } | { readonly ok: false; readonly message: string };

/** Runs one JSON transaction (libnftables' JSON schema, `nft -j -f -`); never rejects. */
export type NftJsonRun = (commands: readonly unknown[]) => Promise<NftJsonResult>;

/** stderr kept per transaction, enough for nft's error lines. */
const STDERR_MAX = 4096;

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

/** A {@link NftRun} that spawns `binary -f -` for every transaction. */
export function nftRunner(binary: string): NftRun {
  return async (script) => {
    const result = await spawnNft(binary, ['-f', '-'], script, false);
    return result.ok ? { ok: true } : result;
  };
}

/**
 * A {@link NftJsonRun} that spawns `binary -j -f FILE` for every transaction: the commands go in as
 * one `{"nftables": [...]}` document, the listings come back on stdout as JSON, and the exit
 * status acknowledges the whole transaction. The document goes through a file in a private
 * directory made for the transaction: nft's JSON parser opens `-f -` as /dev/stdin, which fails on
 * the socket Node gives a child as its stdin.
 */
export function nftJsonRunner(binary: string): NftJsonRun {
  return async (commands) => {
    let dir: string;
    try {
      dir = await mkdtemp(path.join(tmpdir(), 'rtpproxy-nft-'));
    } catch (err) {
      return { ok: false, message: `cannot write the nft transaction: ${errorMessage(err)}` };
    }
    try {
      const file = path.join(dir, 'transaction.json');
      await writeFile(file, JSON.stringify({ nftables: commands }), { mode: 0o600 });
      return await spawnNft(binary, ['-j', '-f', file], '', true);
    } catch (err) {
      return { ok: false, message: `cannot write the nft transaction: ${errorMessage(err)}` };
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  };
}

/** Runs `binary ARGS` with `input` on stdin; stdout kept when `keepOutput`. Never rejects. */
function spawnNft(
  binary: string,
  args: readonly string[],
  input: string,
  keepOutput: boolean,
): Promise<NftJsonResult> {
  return new Promise<NftJsonResult>((resolve) => {
    let stderr = '';
    const stdout: string[] = [];
    let child;
    try {
      child = spawn(binary, args, { stdio: ['pipe', keepOutput ? 'pipe' : 'ignore', 'pipe'] });
    } catch (err) {
      resolve({ ok: false, message: errorMessage(err) });
      return;
    }
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      stdout.push(chunk);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < STDERR_MAX) stderr += chunk;
    });
    child.on('error', (err) => {
      resolve({ ok: false, message: `${binary}: ${err.message}` });
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ ok: true, output: stdout.join('') });
      else {
        const reason = stderr.trim().split('\n').slice(0, 4).join(' | ');
        const status = code === null ? `signal ${String(signal)}` : `status ${String(code)}`;
        resolve({ ok: false, message: reason === '' ? `nft exited with ${status}` : reason });
      }
    });
    // A child that died before reading its input: the 'close' above reports it.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
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
