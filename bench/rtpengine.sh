#!/bin/sh
# Runs rtpengine (userspace forwarding, one thread) with the arguments `npm run bench` gives an
# rtpproxy-compatible daemon: -f -F -s udp:HOST:PORT -l ADDR -m MIN -M MAX -d LEVEL.
#   npm run bench -- --tag-suffix ';1' --target bench/rtpengine.sh
# rtpengine's rtpproxy protocol (--listen-udp) needs a media number on every tag, hence the
# suffix. RTPENGINE_THREADS sets its --num-threads (default 1, to compare one core with one core).
set -eu
listen=
iface=
min=
max=
while [ $# -gt 0 ]; do
  case "$1" in
    -s) listen=${2#udp:}; shift 2 ;;
    -l) iface=$2; shift 2 ;;
    -m) min=$2; shift 2 ;;
    -M) max=$2; shift 2 ;;
    -d) shift 2 ;;
    *) shift ;;
  esac
done
exec rtpengine --foreground --log-stderr --log-level=3 --table=-1 \
  --num-threads="${RTPENGINE_THREADS:-1}" --interface="$iface" --listen-udp="$listen" \
  --port-min="$min" --port-max="$max"
