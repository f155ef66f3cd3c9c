#!/bin/busybox sh
# /init of the test VM's initramfs: load the few modules the kernel keeps as
# modules (virtio, 9p, overlay), mount the host's filesystem over 9p,
# read-only, under a tmpfs overlay (the guest can write anywhere; nothing
# reaches the host), mount fresh kernel filesystems with cgroup v2 only, and
# hand over to guest.py from the host's share of this run (/run/bpm-vm).
bb=/bin/busybox
fail() { $bb echo "bpm-vm init: $*" >&2; $bb echo o > /proc/sysrq-trigger; $bb sleep 5; }
$bb mkdir -p /proc /sys /dev /lower /upper /newroot /out
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t devtmpfs dev /dev
$bb echo 1 > /proc/sys/kernel/sysrq
$bb ip link set lo up || fail "bring up loopback"
for m in $($bb cat /modules.order); do $bb insmod "/modules/$m.ko" || fail "insmod $m"; done
opts=trans=virtio,version=9p2000.L,msize=512000
$bb mount -t 9p -o "$opts,ro,cache=loose" hostroot /lower || fail "mount the host's root"
$bb mount -t 9p -o "$opts" out /out || fail "mount the run's directory"
$bb mount -t tmpfs -o mode=0755 upper /upper
$bb mkdir -p /upper/data /upper/work
$bb mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || fail "mount the overlay"
r=/newroot
$bb mount -t proc proc $r/proc
$bb mount -t sysfs sys $r/sys
$bb mount -t cgroup2 cgroup2 $r/sys/fs/cgroup || fail "mount cgroup2"
$bb mount -t devtmpfs dev $r/dev
$bb mkdir -p $r/dev/pts $r/dev/shm
$bb mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts
$bb ln -sf pts/ptmx $r/dev/ptmx 2>/dev/null
$bb mount -t tmpfs -o mode=1777 shm $r/dev/shm
# Where tests keep their files: real tmpfs, as on a BOSH VM's tmpfs dirs.
for d in /tmp /var/tmp /run /srv /root; do $bb mount -t tmpfs -o mode=0755 tmp "$r$d"; done
$bb chmod 1777 $r/tmp $r/var/tmp
# A checkout under one of those (a clone in /var/tmp or /root) is brought
# back: the host's copy under an overlay of its own, writable, nothing
# reaching the host.
cwd=$($bb cat /out/cwd)
for d in /tmp /var/tmp /run /srv /root; do
  case "$cwd/" in
  "$d"/*)
    $bb mkdir -p "$r$cwd" /upper/cwd/data /upper/cwd/work
    $bb mount -t overlay -o "lowerdir=/lower$cwd,upperdir=/upper/cwd/data,workdir=/upper/cwd/work" overlay "$r$cwd" ||
      fail "mount the working directory $cwd"
    ;;
  esac
done
$bb mkdir -p $r/run/bpm-vm
$bb mount --move /out $r/run/bpm-vm
exec $bb switch_root $r /usr/bin/python3 /run/bpm-vm/guest.py
