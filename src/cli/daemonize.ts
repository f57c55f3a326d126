/**
 * Going to the background: the foreground parent re-spawns the program detached and waits for
 * it to serve; the background process tells it over the IPC channel (sippy/rtpproxy
 * src/rtpp_daemon.c, `rtpp_daemon_rel_parent`).
 */
import { spawn } from 'node:child_process';
import type { Config } from '../base/config.ts';
import { writeStderr } from './process-io.ts';

/** Set in the environment of the re-spawned background process (Node cannot fork). */
const DAEMON_CHILD_ENV = 'RTPPROXY_DAEMON_CHILD';
/** How long the foreground parent waits for the background process to serve. */
const READY_DEADLINE_MS = 10_000;

/** Messages from the background process to the parent waiting for it, over the IPC channel. */
export type ChildMessage =
  { readonly type: 'ready' } | { readonly type: 'error'; readonly message: string };

/**
 * True when this process is the background process a parent started; unsets the marker, so that
 * programs it starts do not take it for theirs.
 */
export function takeDaemonChildMarker(): boolean {
  const isDaemonChild = process.env[DAEMON_CHILD_ENV] === '1' && typeof process.send === 'function';
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a constant key; delete is how Node unsets an env var
  delete process.env[DAEMON_CHILD_ENV];
  return isDaemonChild;
}

/**
 * Goes to the background. Node cannot fork, so the same program is started again, detached (its
 * own session), with an IPC channel; it runs the foreground code path, and says 'ready' once its
 * control sockets serve (the reference's parent also waits for that: `rtpp_daemon_rel_parent`).
 * It is started in the current directory so that relative -s/-r paths and the loader (tsx) resolve
 * as they did here; it changes to / itself after binding its control sockets, like the reference.
 * `script` is the program's file, `argv` its arguments.
 */
export function daemonize(
  script: string,
  argv: readonly string[],
  config: Config,
): Promise<number> {
  const output = config.noRedirect ? 'inherit' : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    detached: true,
    stdio: ['ignore', output, output, 'ipc'],
    env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
  });
  return new Promise<number>((resolve) => {
    let childError: string | undefined;
    let settled = false;
    const finish = (code: number, message?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      if (message === undefined) {
        resolve(code);
      } else {
        writeStderr(`rtpproxy: ${message}\n`).then(
          () => resolve(code),
          () => resolve(code),
        );
      }
    };
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      finish(
        1,
        `the background process did not become ready within ${String(READY_DEADLINE_MS / 1000)} s; stopped it`,
      );
    }, READY_DEADLINE_MS);
    child.on('message', (msg: unknown) => {
      if (!isChildMessage(msg)) return;
      if (msg.type === 'ready') finish(0);
      else childError = msg.message;
    });
    child.on('error', (err) => {
      finish(1, `cannot start the background process: ${err.message}`);
    });
    // 'close' comes after 'exit' and after the IPC channel is drained, so an error message sent
    // just before exiting has arrived by then.
    child.on('close', (code, signal) => {
      const how = signal === null ? `exit status ${String(code)}` : `signal ${signal}`;
      finish(1, childError ?? `the background process ended during start-up (${how})`);
    });
  });
}

function isChildMessage(msg: unknown): msg is ChildMessage {
  if (typeof msg !== 'object' || msg === null || !('type' in msg)) return false;
  if (msg.type === 'ready') return true;
  return msg.type === 'error' && 'message' in msg && typeof msg.message === 'string';
}

/** Sends a message to the waiting parent; resolves once sent (or at once without a parent). */
export function sendToParent(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) {
      resolve();
      return;
    }
    process.send(msg, undefined, {}, () => {
      resolve();
    });
  });
}
