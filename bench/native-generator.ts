/**
 * Runs the packet path of a benchmark in the native generator (bench/rtpgen.c, compiled by
 * bench/relay.ts): it binds the peer sockets and reports their ports, this side sets the sessions
 * up over the control socket and hands back the relay ports, and the native side sends, receives
 * and measures. See rtpgen.c for the line protocol.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FromGenerator, GeneratorConfig, GeneratorResult } from './messages.ts';
import { setupSessions } from './session-setup.ts';

/** The native generator's command name (its binary's name). */
export const NATIVE_GENERATOR_NAME = 'rtpgen';
const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'rtpgen.c');
/** Where binaries are built: node_modules' cache, outside the sources and the git tree. */
const CACHE = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'node_modules',
  '.cache',
  'rtpproxy-bench',
);

/**
 * Builds bench/rtpgen.c with the system's C compiler (`cc`, or $CC) unless a binary of this very
 * source exists (one directory per source hash: checkouts that share node_modules, with other
 * versions of rtpgen.c, never run each other's binary). Returns its path, or why it could not be
 * built.
 */
export function buildNativeGenerator(): { path: string } | { error: string } {
  let binary: string;
  try {
    const hash = createHash('sha256').update(fs.readFileSync(SOURCE)).digest('hex').slice(0, 12);
    binary = path.join(CACHE, hash, NATIVE_GENERATOR_NAME);
    if (fs.existsSync(binary)) return { path: binary };
    fs.mkdirSync(path.dirname(binary), { recursive: true });
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
  const cc = process.env['CC'] ?? 'cc';
  const tmp = `${binary}.${String(process.pid)}`;
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', tmp, SOURCE], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error !== undefined) return { error: `${cc}: ${r.error.message}` };
  if (r.status !== 0) return { error: `${cc} failed: ${r.stderr.trim().slice(0, 500)}` };
  fs.renameSync(tmp, binary);
  return { path: binary };
}

/** What rtpgen prints after `result `: GeneratorResult's figures, and the time series flat. */
type NativeResult = Pick<
  GeneratorResult,
  | 'windowMs'
  | 'sent'
  | 'received'
  | 'duplicates'
  | 'misrouted'
  | 'reordered'
  | 'streamsWithLoss'
  | 'worstStreamLossPct'
  | 'latency'
  | 'baselineIdle'
  | 'baselineLoad'
  | 'schedule'
  | 'cpu'
  | 'peerRecvBuffer'
  | 'heldMs'
  | 'holdTimedOut'
  | 'sendErrors'
> & {
  readonly originEpochMs: number;
  readonly warmupEndEpochMs: number;
  readonly bucketMs: number;
  readonly traceSent: number[];
  readonly traceReceived: number[];
  readonly traceMaxLatencyMs: number[];
  readonly traceMaxLateMs: number[];
};

/** Packet size rtpgen sends (RTP header + 20 ms of G.711). */
const NATIVE_PACKET_BYTES = 172;

function parsePorts(line: string, sessions: number): { caller: number; callee: number }[] {
  const ports = line.split(' ').slice(1).map(Number);
  if (ports.length !== 2 * sessions || ports.some((p) => !Number.isInteger(p) || p < 1)) {
    throw new Error(`rtpgen: bad port list (${String(ports.length)} ports)`);
  }
  return Array.from({ length: sessions }, (_, i) => ({
    caller: ports[2 * i] ?? 0,
    callee: ports[2 * i + 1] ?? 0,
  }));
}

/** A running native generator: its result, and how to end its hold (GeneratorConfig.holdMaxS). */
export interface NativeRun {
  readonly result: Promise<GeneratorResult>;
  readonly measure: () => void;
}

export function runNative(
  config: GeneratorConfig,
  binary: string,
  send: (msg: FromGenerator) => void,
): NativeRun {
  const args = [
    ...[
      config.sessions,
      config.rate,
      Math.max(1, Math.round(config.baselineIdleS * config.rate)),
      Math.round(config.warmupS * config.rate),
      Math.round(config.durationS * config.rate),
      config.recvBufferBytes,
    ].map(String),
    config.addresses.caller,
    config.addresses.callee,
    config.addresses.relay,
    config.poll,
    String(Math.ceil(config.holdMaxS)),
    config.endpoints,
  ];
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  // This process may exit on its deadline: never leave the generator behind.
  process.once('exit', () => child.kill('SIGKILL'));
  const lines = readline.createInterface({ input: child.stdout });
  let setup: Awaited<ReturnType<typeof setupSessions>> | null = null;

  const result = new Promise<GeneratorResult>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(err);
    };
    child.once('error', fail);
    child.once('close', (code, signal) => {
      fail(new Error(`rtpgen exited (${signal ?? `status ${String(code)}`}) before its result`));
    });
    lines.on('line', (line) => {
      const space = line.indexOf(' ');
      const word = space < 0 ? line : line.slice(0, space);
      switch (word) {
        case 'ports':
          setupSessions(config, parsePorts(line, config.sessions)).then((done) => {
            setup = done;
            send({ type: 'setup-done', ms: done.ms });
            const ports = done.relay.flatMap((r) => [r.fromCaller, r.fromCallee]);
            child.stdin.write(`relay ${ports.join(' ')}\n`);
          }, fail);
          return;
        case 'holding':
        case 'measure-start':
        case 'measure-end':
          send({ type: word });
          return;
        case 'error':
          fail(new Error(`rtpgen: ${line.slice(space + 1)}`));
          return;
        case 'result': {
          if (setup === null) {
            fail(new Error('rtpgen: result before setup'));
            return;
          }
          const n = JSON.parse(line.slice(space + 1)) as NativeResult;
          settled = true;
          resolve({
            generator: 'native',
            sessions: config.sessions,
            relayStreams: 2 * config.sessions,
            packetBytes: NATIVE_PACKET_BYTES,
            setup: {
              ms: setup.ms,
              commands: setup.commands,
              retransmissions: setup.retransmissions,
            },
            windowMs: n.windowMs,
            sent: n.sent,
            received: n.received,
            duplicates: n.duplicates,
            misrouted: n.misrouted,
            reordered: n.reordered,
            streamsWithLoss: n.streamsWithLoss,
            worstStreamLossPct: n.worstStreamLossPct,
            latency: n.latency,
            baselineIdle: n.baselineIdle,
            baselineLoad: n.baselineLoad,
            schedule: n.schedule,
            cpu: n.cpu,
            elu: null,
            peerRecvBuffer: n.peerRecvBuffer,
            heldMs: n.heldMs,
            sendErrors: n.sendErrors,
            holdTimedOut: n.holdTimedOut,
            trace: {
              originEpochMs: n.originEpochMs,
              warmupEndEpochMs: n.warmupEndEpochMs,
              bucketMs: n.bucketMs,
              sent: n.traceSent,
              received: n.traceReceived,
              maxLatencyMs: n.traceMaxLatencyMs,
              maxLateMs: n.traceMaxLateMs,
            },
          });
          return;
        }
        default:
          fail(new Error(`rtpgen: unexpected line ${JSON.stringify(line.slice(0, 80))}`));
      }
    });
  });
  const measure = (): void => {
    if (child.exitCode === null) child.stdin.write('measure\n');
  };
  return { result, measure };
}
