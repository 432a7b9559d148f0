#!/bin/sh
# Record real kernel call chains for the socket scenarios of init.c.
#
#   tests/traces/record.sh 6.1     -> tests/data/recorded_traces_6.1.json
#                                     tests/data/traceable_6.1.txt.gz
#   tests/traces/record.sh 6.12    -> the same for 6.12
#
# Steps: download Debian's unsigned kernel image (apt-get download, nothing is
# installed), build an initramfs holding only the static /init of init.c,
# boot it under QEMU (KVM when KSRC_KVM=1 works here, else TCG), and parse the
# function_graph stream it writes to the second serial port.
# Needs: apt-get, dpkg-deb, gcc (static libc), cpio, gzip, qemu-system-x86_64.
# Work files go to $WORK (default /tmp/ksrc-record/<kernel>).
set -eu

KVER=${1:?usage: record.sh 6.1|6.12}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$HERE/../data
WORK=${WORK:-/tmp/ksrc-record/$KVER}

# The image must be the same upload as the source tree ksrcgraph reads
# (/usr/src/linux-source-$KVER.tar.xz), so take its version from linux-source.
SRCVER=$(dpkg-query -W -f '${Version}' "linux-source-$KVER")
case $KVER in
  6.1)  PKG=linux-image-6.1.0-57-amd64-unsigned ;;
  6.12) PKG=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9.+~a-z]*-amd64-unsigned$' \
              | awk '{print $1}' | while read -r p; do
                  [ "$(apt-cache policy "$p" | awk '/Candidate/ {print $2}')" = "$SRCVER" ] && echo "$p"
                done | head -n1) ;;
  *) echo "unknown kernel $KVER" >&2; exit 2 ;;
esac
[ -n "$PKG" ] || { echo "no image package at version $SRCVER" >&2; exit 1; }

mkdir -p "$WORK"
cd "$WORK"

# 1. the image: download (not install) and unpack next to us
if [ ! -d img ]; then
  apt-get download "$PKG=$SRCVER"
  dpkg-deb -x "${PKG}_"*"_amd64.deb" img
fi
cp img/boot/vmlinuz-* vmlinuz

# 2. the initramfs: /init plus the mount points it uses
rm -rf root && mkdir -p root/proc root/sys root/dev
gcc -static -O2 -Wall -o root/init "$HERE/init.c"
(cd root && find . | cpio -o -H newc --owner=0:0 --quiet) | gzip -1 > initrd.gz

# 3. boot: ttyS0 = kernel console, ttyS1 = the data stream from /init.
#    -smp 1 keeps the ring buffer to one CPU; ~30 s under TCG.
ACCEL="-accel tcg -cpu max"
[ "${KSRC_KVM:-0}" = 1 ] && ACCEL="-enable-kvm -cpu host"
QEMU="qemu-system-x86_64 $ACCEL -smp 1 -m 1G -kernel vmlinuz -initrd initrd.gz \
-append 'console=ttyS0 quiet panic=-1' -no-reboot -display none -monitor none \
-serial file:console.log -serial file:data.log"
rm -f console.log data.log
start=$(date +%s)
eval "timeout 900 $QEMU"
echo "qemu ran $(( $(date +%s) - start )) s" >&2
grep -q '^@@ DONE' data.log || { echo "recording incomplete, see $WORK/console.log" >&2; exit 1; }

# 4. chains and the traceable-function list
python3 "$HERE/parse_graph.py" data.log --kernel "$KVER" --package "$PKG=$SRCVER" \
  --qemu "$QEMU" -o "$DATA/recorded_traces_$KVER.json" \
  --traceable "$DATA/traceable_$KVER.txt.gz"
