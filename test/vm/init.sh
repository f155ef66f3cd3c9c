#!/bin/busybox sh
# /init of the test VM's initramfs: load the few modules the kernel keeps as
# modules (virtio, 9p, overlay), mount the host's filesystem over 9p,
# read-only, under a tmpfs overlay (the guest can write anywhere; nothing
# reaches the host), mount fresh kernel filesystems, and hand over to
# guest.py from the host's share of this run (/run/bpm-vm) as pid 1 with
# cgroup2 mounted, or, in systemd mode (the run's file `init` says "systemd"
# or "jammy"), to systemd, which mounts the cgroup trees as the kernel's
# command line says (v2 only, or the hybrid layout), boots to the suite's
# own target and runs guest.py as a service (the units vm.mjs put in the
# run's systemd/: test/vm/systemd/ or test/vm/jammy/).
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
mode=$($bb cat /out/init 2>/dev/null)
[ "$mode" = jammy ] && mode=systemd # the same boot; the command line and the units differ
# systemd mounts cgroup2 itself, with its own options (nsdelegate, memory_recursiveprot),
# or, on the hybrid layout, a tmpfs with the v1 hierarchies and cgroup2 at unified/.
[ "$mode" = systemd ] || $bb mount -t cgroup2 cgroup2 $r/sys/fs/cgroup || fail "mount cgroup2"
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
[ "$mode" = systemd ] || exec $bb switch_root $r /usr/bin/python3 /run/bpm-vm/guest.py

# systemd mode. These machines are containers: with /.dockerenv systemd
# believes it runs in docker and ignores the kernel's command line.
$bb rm -f $r/.dockerenv
# Nothing to mount from fstab; the suite's target and service. Masked: what
# would wait for a network or a terminal or run on a timer, and, to save
# boot time under emulation, the generators (units from fstab, init.d
# scripts, the command line) and what loads modules or keeps records across
# boots.
: > $r/etc/fstab
u=$r/etc/systemd/system
$bb mkdir -p $u $r/etc/systemd/system-generators
$bb cp $r/run/bpm-vm/systemd/* $u/ || fail "install the suite's units"
for m in getty.target getty@tty1.service serial-getty@ttyS0.service console-getty.service timers.target \
  systemd-timesyncd.service systemd-networkd-wait-online.service network-online.target remote-fs.target \
  modprobe@.service proc-sys-fs-binfmt_misc.automount systemd-journal-flush.service systemd-update-utmp.service \
  systemd-random-seed.service systemd-pstore.service; do
  $bb ln -sf /dev/null "$u/$m"
done
for g in $($bb ls $r/lib/systemd/system-generators); do
  $bb ln -sf /dev/null "$r/etc/systemd/system-generators/$g"
done
exec $bb switch_root $r /lib/systemd/systemd
