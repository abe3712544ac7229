#!/usr/bin/env bash
# Loads weft's eBPF objects on another kernel than this machine's: boots Debian's
# linux-image-$KVER under qemu (TCG: nested KVM here does not boot it) with this machine's
# root filesystem read-only over 9p under a tmpfs overlay, and runs check.mjs inside. Prints
# its CHECK lines; exits non-zero if a check failed. Manual, root, about 4 minutes; needs a
# built tree (npm run build) and Node on PATH (source scripts/env.sh); reaches only Debian's apt.
# Leaves nothing behind.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KVER=${KVER:-6.1.0-57-amd64}
WORK=$(mktemp -d /tmp/wfeb-vm-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
command -v qemu-system-x86_64 >/dev/null && command -v depmod >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 kmod >/dev/null
apt-get download "linux-image-$KVER" busybox-static >/dev/null
dpkg-deb -x linux-image-"$KVER"_*.deb k
dpkg-deb -x busybox-static_*.deb bb
depmod -b "$WORK/k" "$KVER"
clang -O2 -g -target bpf -I "/usr/include/$(uname -m)-linux-gnu" -c "$HERE/passthru.bpf.c" -o passthru.o

mkdir -p initrd/bin initrd/proc initrd/sys initrd/dev initrd/mods initrd/lower initrd/rw initrd/newroot
cp bb/bin/busybox initrd/bin/
for m in virtio_pci 9pnet_virtio 9p overlay veth nf_tables; do
  modprobe -d "$WORK/k" -S "$KVER" --show-depends "$m"
done | awk '{print $2}' | awk '!seen[$0]++' | while read -r f; do
  cp "$f" initrd/mods/
  basename "$f" >> initrd/mods.list
done
cat > initrd/init <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in \$(cat /mods.list); do insmod /mods/\$m 2>/dev/null || echo "insmod \$m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /lower
mount -t tmpfs -o size=3g tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
umount /proc /sys /dev
exec switch_root /newroot /bin/sh $WORK/guest.sh
INIT
chmod +x initrd/init
(cd initrd && find . | ../bb/bin/busybox cpio -o -H newc 2>/dev/null | gzip) > initrd.gz
cat > guest.sh <<GUEST
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mount -t cgroup2 none /sys/fs/cgroup; mount -t bpf bpf /sys/fs/bpf; mount -t tmpfs tmpfs /run; mkdir -p /run/netns
ip link set lo up
echo "CHECK kernel \$(uname -r)"
PATH=$PATH HOME=/root WEFT_E2E_READY_MS=60000 node "$HERE/check.mjs" "$WORK/passthru.o" 2>&1
echo o > /proc/sysrq-trigger
GUEST
timeout 900 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 4096 -nographic -no-reboot \
  -kernel k/boot/vmlinuz-"$KVER" -initrd initrd.gz -append "console=ttyS0 panic=-1 edd=off quiet" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap > console.log 2>&1 || true
grep -a '^CHECK' console.log | tr -d '\r'
grep -aq '^CHECK end' console.log && ! grep -aq '^CHECK FAILED' console.log
