/**
 * The daemon's nftables table (TOS marks, `--nft`): whether it can be used, its creation at start
 * (or with the warm-up), the line saying why TOS is not applied, and its removal last at shutdown.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './base/config.ts';
import { formatSocketSpec } from './control/socket-spec.ts';
import { findNft, netAdminProblem, nftRunner } from './nft/runner.ts';
import { instanceTableName, NftTable } from './nft/table.ts';
import { tosDefinition, TOS_ADDR_MAP, TOS_PORT_MAP } from './nft/tos.ts';

/** The nftables table of a daemon, or why it has none. */
export class DaemonNft {
  readonly #config: Config;
  readonly #log: Logger;
  /** The table; undefined with `--nft off`, when nft is missing or cannot change the ruleset. */
  readonly table: NftTable | undefined;
  /** Why the table cannot be used, found before trying (no nft, no CAP_NET_ADMIN, `-u`). */
  readonly #problem: string | undefined;
  /** The table's creation (or the line saying why there is none), once started. */
  #ready: Promise<void> | undefined;

  constructor(config: Config, logger: Logger, now: () => number) {
    this.#config = config;
    this.#log = logger.child({ mod: 'nft' });
    const binary = config.nft === 'off' ? undefined : findNft(process.env['PATH'] ?? '');
    this.#problem = config.nft === 'off' ? undefined : nftProblem(config, binary);
    this.table =
      binary === undefined || this.#problem !== undefined
        ? undefined
        : new NftTable({
            name: nftTableName(config),
            definition: tosDefinition(),
            maps: [TOS_ADDR_MAP, TOS_PORT_MAP],
            run: nftRunner(binary),
            logger: this.#log,
            now,
          });
  }

  /**
   * Creates the table, or says once why TOS is not applied (`--nft auto`), or rejects (`--nft
   * on`). Idempotent: every call returns the first one's promise.
   */
  open(): Promise<void> {
    this.#ready ??= this.#open();
    return this.#ready;
  }

  /** Whether open() was called. */
  get opening(): boolean {
    return this.#ready !== undefined;
  }

  /** The table, for tests; undefined when the daemon does not use one (or not yet). */
  get openTable(): NftTable | undefined {
    return this.table?.open === true ? this.table : undefined;
  }

  /** Shutdown, once no session holds an element: waits for the creation, removes the table. */
  async close(): Promise<void> {
    await this.#ready?.catch(() => undefined);
    await this.table?.close();
  }

  async #open(): Promise<void> {
    const mode = this.#config.nft;
    const log = this.#log;
    if (mode === 'off') {
      log.info({ tos: this.#config.tos }, 'TOS is not applied: --nft off');
      return;
    }
    let problem = this.#problem;
    const table = this.table;
    if (problem === undefined && table === undefined) problem = 'nft is not installed';
    if (problem === undefined && table !== undefined) {
      const result = await table.create();
      if (result.ok) {
        log.info({ table: `inet ${table.name}`, tos: this.#config.tos }, 'nftables table created');
        return;
      }
      problem = result.message;
    }
    const reason = problem ?? 'unknown';
    if (mode === 'on') throw new Error(`--nft on: cannot create the nftables table: ${reason}`);
    log.warn(
      { tos: this.#config.tos, reason },
      'TOS is not applied: the nftables table cannot be created (--nft auto)',
    );
  }
}

/** The nftables table of an instance: named after its first control socket. */
function nftTableName(config: Config): string {
  const first = config.controlSockets[0];
  return instanceTableName(first === undefined ? 'none' : formatSocketSpec(first));
}

/** Why an `nft` child could not change the ruleset, known before trying; undefined if none. */
function nftProblem(config: Config, binary: string | undefined): string | undefined {
  if (binary === undefined) return 'nft is not installed';
  const euid = process.geteuid?.() ?? 0;
  if (config.uid !== undefined && config.uid !== euid) {
    return '-u switches to another user, which drops CAP_NET_ADMIN (run as that user with the ambient capability instead, see docs/operations.md)';
  }
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined; // Not Linux's procfs: nft itself will say.
  }
  return netAdminProblem(status, euid);
}
