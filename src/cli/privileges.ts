/**
 * Running as root and `-u`: the reference's superuser check, the user and group lookup before
 * the start, and the switch to them once the control sockets are bound.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Config } from '../base/config.ts';
import { formatHostPort } from '../util/net.ts';
import { formatSocketSpec } from '../control/socket-spec.ts';
import { errorMessage } from '../util/error-message.ts';
import { isErrnoException } from './process-io.ts';

/**
 * The reference's superuser check: as root without `-u USER` (a group alone does not count) it
 * refuses a udp:/udp6: control socket and warns otherwise, unless `-F`. The rule is about remote
 * control, not the transport, so a tcp:/tcp6: or ng: control socket is refused as well, and so is
 * the admin API (`--http`), which can delete calls and drain the daemon.
 */
export function checkRoot(
  config: Config,
  uid: number | undefined,
): { refuse?: string; warn?: string } {
  if (config.allowRoot || uid !== 0 || config.user !== undefined) return {};
  // Every socket with a host is a network socket: udp, udp6, tcp, tcp6, ng:udp, ng:udp6.
  const remote = config.controlSockets.find((s) => 'host' in s);
  const http =
    config.http === undefined
      ? undefined
      : `--http ${formatHostPort(config.http.host, config.http.port)}`;
  const what =
    remote === undefined
      ? http === undefined
        ? undefined
        : `the admin API (${http})`
      : `a network control socket (${formatSocketSpec(remote)})`;
  if (what !== undefined) {
    return {
      refuse:
        `refusing to run as root with ${what}: anybody who can reach it could control the ` +
        'daemon. Use -u USER[:GROUP] to run as an unprivileged user, or -F to run as root anyway.',
    };
  }
  return {
    warn: 'running as root is not recommended. Use -u USER[:GROUP] to run as an unprivileged user, or -F to silence this warning.',
  };
}

/**
 * -u: looks the user and group up now, as the reference does while parsing its options, so an
 * unknown name stops the start before anything is bound. Names go through NSS (`getent`), like
 * getpwnam()/getgrnam(); without getent, /etc/passwd and /etc/group are read.
 */
export function resolveCredentials(config: Config): Config | string {
  if (config.user === undefined && config.group === undefined) return config;
  let uid: number | undefined;
  let gid: number | undefined;
  if (config.user !== undefined) {
    const entry = lookupDatabase('passwd', config.user);
    const id = Number(entry?.[2]);
    if (entry === undefined || !Number.isInteger(id)) {
      return `cannot find the user ${JSON.stringify(config.user)}`;
    }
    uid = id;
    // Without a group, the user's primary group.
    if (config.group === undefined) gid = Number(entry[3]);
  }
  if (config.group !== undefined) {
    const entry = lookupDatabase('group', config.group);
    const id = Number(entry?.[2]);
    if (entry === undefined || !Number.isInteger(id)) {
      return `cannot find the group ${JSON.stringify(config.group)}`;
    }
    gid = id;
  }
  return Object.freeze({
    ...config,
    ...(uid === undefined ? {} : { uid }),
    ...(gid === undefined || !Number.isInteger(gid) ? {} : { gid }),
  });
}

/** One passwd or group entry split at ':', or undefined when there is none. */
function lookupDatabase(database: 'passwd' | 'group', name: string): string[] | undefined {
  if (name.includes(':') || name.includes('\n')) return undefined;
  try {
    const line = execFileSync('getent', [database, name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return line.split('\n')[0]?.split(':');
  } catch (err) {
    // getent exits 2 for "not found"; only a missing getent falls back to the files.
    if (!isErrnoException(err) || err.code !== 'ENOENT') return undefined;
  }
  try {
    const file = readFileSync(database === 'passwd' ? '/etc/passwd' : '/etc/group', 'utf8');
    return file
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[0] === name || (/^[0-9]+$/.test(name) && f[2] === name));
  } catch {
    return undefined;
  }
}

/**
 * -u: switch group then user, after binding the control sockets and writing the pid file; a
 * message on failure. The ids were looked up before the start (resolveCredentials). As root the
 * supplementary groups are dropped too, so none of root's groups is kept.
 */
export function dropPrivileges(config: Config): string | undefined {
  if (config.uid === undefined && config.gid === undefined) return undefined;
  try {
    if (config.gid !== undefined) {
      if (process.getuid?.() === 0) process.setgroups?.([config.gid]);
      process.setgid?.(config.gid);
    }
    if (config.uid !== undefined) process.setuid?.(config.uid);
  } catch (err) {
    return `cannot switch to user ${JSON.stringify(config.user ?? '')} group ${JSON.stringify(config.group ?? '')}: ${errorMessage(err)}`;
  }
  return undefined;
}
