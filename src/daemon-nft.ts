/**
 * The daemon's nftables table (`--nft`): TOS marks, and the kernel fast path (`--kernel`,
 * docs/kernel.md). Whether each can be used, the table's creation at start (or with the warm-up),
 * the line saying why one is not applied, and the table's removal last at shutdown.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './base/config.ts';
import type { Family } from './base/net.ts';
import type { KernelState } from './control/dispatch.ts';
import { formatSocketSpec } from './control/socket-spec.ts';
import { kernelDefinition, KernelFlows } from './nft/kernel.ts';
import { findNft, netAdminProblem, nftJsonRunner, nftRunner } from './nft/runner.ts';
import { instanceTableName, NftTable } from './nft/table.ts';
import { tosDefinition, TOS_ADDR_MAP, TOS_PORT_MAP } from './nft/tos.ts';

/** The forwarding switch of each family: the kernel path forwards a family only when it is on. */
const FORWARDING: Readonly<Record<Family, string>> = {
  4: '/proc/sys/net/ipv4/ip_forward',
  6: '/proc/sys/net/ipv6/conf/all/forwarding',
};

/** The nftables table of a daemon, or why it has none. */
export class DaemonNft {
  readonly #config: Config;
  readonly #log: Logger;
  /** The table; undefined with `--nft off`, when nft is missing or cannot change the ruleset. */
  readonly table: NftTable | undefined;
  /** The kernel fast path; undefined when `--kernel off` or known unusable before trying. */
  readonly kernel: KernelFlows | undefined;
  /** Why the table cannot be used, found before trying (no nft, no CAP_NET_ADMIN, `-u`). */
  readonly #problem: string | undefined;
  /** Why the kernel path is off; undefined while it runs or may still run. */
  #kernelOff: string | undefined;
  /** The table's creation (or the line saying why there is none), once started. */
  #ready: Promise<void> | undefined;

  constructor(config: Config, logger: Logger, now: () => number) {
    this.#config = config;
    this.#log = logger.child({ mod: 'nft' });
    const binary = config.nft === 'off' ? undefined : findNft(process.env['PATH'] ?? '');
    this.#problem = config.nft === 'off' ? undefined : nftProblem(config, binary);
    const name = nftTableName(config);
    this.table =
      binary === undefined || this.#problem !== undefined
        ? undefined
        : new NftTable({
            name,
            definition: tosDefinition(),
            maps: [TOS_ADDR_MAP, TOS_PORT_MAP],
            run: nftRunner(binary),
            logger: this.#log,
            now,
          });
    if (config.kernel === 'off') this.#kernelOff = '--kernel off';
    else if (config.nft === 'off') this.#kernelOff = '--nft off';
    else this.#kernelOff = this.#problem ?? kernelProblem();
    const families = forwardingFamilies();
    this.kernel =
      binary === undefined || this.table === undefined || this.#kernelOff !== undefined
        ? undefined
        : new KernelFlows({
            table: name,
            run: nftJsonRunner(binary),
            families,
            logger: this.#log,
            now,
          });
  }

  /**
   * Why `--kernel on` cannot start, known before trying (no nft, no capability, forwarding off);
   * undefined when it may.
   */
  get kernelRefusal(): string | undefined {
    return this.#config.kernel === 'on' ? this.#kernelOff : undefined;
  }

  /** The kernel path as `Iv` reports it. */
  kernelState(): KernelState {
    const kernel = this.kernel;
    const on = kernel?.ready === true;
    const reason = this.#kernelOff ?? (this.#ready === undefined ? 'not started yet' : 'starting');
    return {
      state: on ? 'on' : `off (${reason})`,
      committed: kernel?.committed ?? 0,
      failed: kernel?.failed ?? 0,
    };
  }

  /**
   * Creates the table, or says once why TOS or the kernel path is not applied (`auto`), or
   * rejects (`on`). Idempotent: every call returns the first one's promise.
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
    await this.kernel?.close();
    await this.table?.close();
  }

  async #open(): Promise<void> {
    const mode = this.#config.nft;
    const log = this.#log;
    const refusal = this.kernelRefusal;
    if (refusal !== undefined) {
      throw new Error(`--kernel on: the kernel path cannot run: ${refusal}`);
    }
    if (mode === 'off') {
      log.info(
        { tos: this.#config.tos },
        'TOS is not applied and the kernel path is off: --nft off',
      );
      return;
    }
    let problem = this.#problem;
    const table = this.table;
    if (problem === undefined && table === undefined) problem = 'nft is not installed';
    if (problem === undefined && table !== undefined) {
      const tos = tosDefinition();
      const kernel = this.kernel;
      // With the kernel path, its chains first; in auto mode, TOS alone if the kernel refuses them.
      const variants =
        kernel === undefined
          ? [tos]
          : this.#config.kernel === 'on'
            ? [[...tos, ...kernelDefinition(TOS_ADDR_MAP)]]
            : [[...tos, ...kernelDefinition(TOS_ADDR_MAP)], tos];
      const result = await table.create(variants);
      if (result.ok) {
        const withKernel = kernel !== undefined && result.variant === 0;
        if (withKernel) kernel.start();
        else if (kernel !== undefined) {
          this.#kernelOff = `nft refused its rules: ${result.refused ?? 'unknown'}`;
        }
        log.info(
          { table: `inet ${table.name}`, tos: this.#config.tos, kernel: withKernel },
          'nftables table created',
        );
        this.#logKernel();
        return;
      }
      problem = result.message;
    }
    const reason = problem ?? 'unknown';
    this.#kernelOff ??= reason;
    if (mode === 'on' || this.#config.kernel === 'on') {
      const option = mode === 'on' ? '--nft on' : '--kernel on';
      throw new Error(`${option}: cannot create the nftables table: ${reason}`);
    }
    log.warn(
      { tos: this.#config.tos, reason },
      'TOS is not applied: the nftables table cannot be created (--nft auto)',
    );
    this.#logKernel();
  }

  /** One line at start when the kernel path is off although it was asked for. */
  #logKernel(): void {
    if (this.#config.kernel === 'off') return;
    if (this.kernel?.ready === true) {
      this.#log.info({ families: this.kernel.families }, 'kernel path on');
    } else {
      this.#log.warn(
        { reason: this.#kernelOff ?? 'unknown' },
        'kernel path off: streams are relayed in userspace (--kernel auto)',
      );
    }
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

/** The families whose forwarding switch is on. */
function forwardingFamilies(): Family[] {
  return ([4, 6] as const).filter((family) => {
    try {
      return readFileSync(FORWARDING[family], 'utf8').trim() !== '0';
    } catch {
      return false;
    }
  });
}

/** Why the host cannot forward for the kernel path; undefined when it can (for IPv4 at least). */
function kernelProblem(): string | undefined {
  if (forwardingFamilies().length > 0) return undefined;
  return 'forwarding is off: set net.ipv4.ip_forward=1 (and net.ipv6.conf.all.forwarding=1 for IPv6), see docs/kernel.md';
}
