#!/usr/bin/env bash
# Regenerates the example reports in this directory from Debian's linux-source-6.1 (and 6.12):
# the headline path as text, JSON, DOT and SVG (Graphviz), the socket table, and a version diff.
#   reports/make.sh            (needs linux-source-6.1 and linux-source-6.12; graphviz for the SVG)
set -euo pipefail
cd "$(dirname "$0")"
k=${KSRCGRAPH:-ksrcgraph}
$k path sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp -k 1 -q > sendto-dev_queue_xmit-6.1-udp.txt
$k path sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp -k 1 -q --format json > sendto-dev_queue_xmit-6.1-udp.json
$k path sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp -k 1 -q --format dot > sendto-dev_queue_xmit-6.1-udp.dot
$k path sendto dev_queue_xmit --kernel 6.1 -q > sendto-dev_queue_xmit-6.1-by-socket.txt
$k sockets --kernel 6.1 -q > sockets-6.1.txt
$k diff write udp_sendmsg --from 6.1 --to 6.12 --socket inet:dgram:udp --via sock_write_iter \
  --scope net,include,fs -q --format markdown > diff-write-6.1-6.12.md || [ $? -eq 3 ]
if command -v dot > /dev/null; then
  $k report sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp -k 1 -q --format svg \
    -o sendto-dev_queue_xmit-6.1-udp.svg
  $k report sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp -k 1 -q --format html \
    -o sendto-dev_queue_xmit-6.1-udp.html
fi
