/** Session setup for the load generators: U and L over the daemon's UDP control socket. */
import { performance } from 'node:perf_hooks';
import { ControlClient, parsePortReply } from './control-client.ts';
import type { GeneratorConfig } from './messages.ts';

/** The generator's two peer ports of one session. */
export interface PeerPorts {
  readonly caller: number;
  readonly callee: number;
}
/** The relay ports of one session: where the caller sends (L's reply), where the callee sends (U's). */
export interface RelayPorts {
  readonly fromCaller: number;
  readonly fromCallee: number;
}

/**
 * Sets up one session per entry over the daemon's control socket: U from the caller, then L from
 * the callee, `setupConcurrency` sessions in flight at once.
 */
export async function setupSessions(
  config: GeneratorConfig,
  peers: readonly PeerPorts[],
): Promise<{ relay: RelayPorts[]; commands: number; retransmissions: number; ms: number }> {
  const start = performance.now();
  const { caller, callee, relay: relayAddr } = config.addresses;
  const client = await ControlClient.open(config.controlPort, relayAddr, caller);
  const relay: RelayPorts[] = [];
  let commands = 0;
  try {
    const tag = `${String(process.pid)}x${Date.now().toString(36)}`;
    const setupOne = async (i: number, p: PeerPorts): Promise<void> => {
      const callId = `bench-${tag}-${String(i)}`;
      const from = `from${String(i)}${config.tagSuffix}`;
      const to = `to${String(i)}${config.tagSuffix}`;
      // U: the caller's offer; the reply is the relay port the callee must send to (leg 0).
      const uLine = `U ${callId} ${caller} ${String(p.caller)} ${from}`;
      const fromCallee = parsePortReply(uLine, await client.command(uLine)).port;
      commands++;
      // L: the callee's answer; the reply is the relay port the caller must send to (leg 1).
      const lLine = `L ${callId} ${callee} ${String(p.callee)} ${from} ${to}`;
      const fromCaller = parsePortReply(lLine, await client.command(lLine)).port;
      commands++;
      relay[i] = { fromCaller, fromCallee };
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < peers.length) {
        const i = next++;
        const p = peers[i];
        if (p !== undefined) await setupOne(i, p);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(config.setupConcurrency, peers.length) }, () => worker()),
    );
  } finally {
    client.close();
  }
  return {
    relay,
    commands,
    retransmissions: client.retransmissions,
    ms: performance.now() - start,
  };
}
