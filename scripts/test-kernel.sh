#!/usr/bin/env bash
# The kernel pass: runs the daemon-driven suites again with the kernel fast path on (--kernel on,
# docs/kernel.md), inside a network namespace this script creates and deletes, so that no table
# and no setting of the host's own namespace is touched. Forwarding is switched on in that
# namespace only. Skips with a reason when it cannot create one (not root, no ip or nft).
#
# Usage: scripts/test-kernel.sh [TAP FILES...]
# By default: the suites whose calls latch and relay media, where the kernel path takes streams
# over (the relay, counter, expiry, recording, playback, re-packetizing, fork, stranger, topology
# and worker suites, and the Kamailio interop suite over udp). The suites of the control plane run
# once, in the main pass: the command line, the service wrapper, the control transports, the
# Sippy conformance corpus (commands and replies, no media), notifications, port allocation,
# recording faults and signals, the session log, own endpoints, the same interop calls over unix,
# and the scale-out interop test (which daemon Kamailio picks, not how it relays).
set -uo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo "kernel pass skipped: $1"
  exit 0
}
[ "$(id -u)" -eq 0 ] || skip "not root: cannot create a network namespace"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || skip "nft is not installed"

ns="rtpproxy-kernel-pass-$$"
ip netns add "$ns" || skip "cannot create a network namespace"
trap 'ip netns del "$ns" 2>/dev/null' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1

if [ $# -eq 0 ]; then
  set --
  for name in counters expiry play recording relay repacketize rtp-bleed session-fork \
    session-ttl topology workers; do
    [ -f "test/integration/$name.test.ts" ] && set -- "$@" "test/integration/$name.test.ts"
  done
  set -- "$@" test/interop/kamailio-udp.test.ts
fi
echo "== kernel pass (--kernel on, network namespace $ns)"
ip netns exec "$ns" env RTPPROXY_TEST_KERNEL="$ns" npx tap "$@"
