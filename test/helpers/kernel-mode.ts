/**
 * The nftables options of a test daemon. By default `--nft off`: no test creates an nftables table
 * in the host's network namespace. With RTPPROXY_TEST_KERNEL=NAME, which scripts/test-kernel.sh
 * sets for the suites it runs inside the network namespace NAME it created, `--kernel on`: every
 * daemon then forwards latched streams in the kernel (docs/kernel.md). The process must be in
 * that namespace (its /proc/self/ns/net is /run/netns/NAME), whoever sets the variable.
 */
import { statSync } from 'node:fs';

/** Whether this run is the kernel pass of scripts/test-kernel.sh (throws outside its namespace). */
export function inKernelPass(): boolean {
  const name = process.env['RTPPROXY_TEST_KERNEL'];
  if (name === undefined || name === '') return false;
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || !sameNetns('/proc/self/ns/net', `/run/netns/${name}`)) {
    throw new Error(
      `RTPPROXY_TEST_KERNEL=${name} outside that network namespace: run scripts/test-kernel.sh`,
    );
  }
  return true;
}

/** The options that choose the daemon's nftables table: see the file comment. */
export function nftArgs(): string[] {
  return inKernelPass() ? ['--kernel', 'on'] : ['--nft', 'off'];
}

function sameNetns(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    // Cannot tell (no procfs, no such namespace): not the one asked for.
    return false;
  }
}
