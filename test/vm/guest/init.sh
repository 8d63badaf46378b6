#!/bin/sh
# PID 1 of the test guest (busybox sh; no udev, no systemd): mounts, loads the virtio and input modules, names the
# virtio-serial ports as udev would, starts Xvfb and the real agent pair and the control loop, then reaps orphans
# forever (the agent script checks liveness with kill -0, which a zombie would pass).
export PATH=/usr/sbin:/usr/bin:/usr/libexec/bb
export HOME=/root LANG=C.UTF-8 TERM=dumb

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /var/log /var/lib/xkb /run/spice-vdagentd /tmp/xfer

say() { echo "vdrelay-init: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
say "userspace up"

# Dependencies first; the order was resolved from modules.dep when the image was built.
while read -r m; do insmod "/lib/modules/$m" || say "insmod $m failed"; done < /etc/vdrelay/modules

# The session agent exits silently when /dev/virtio-ports/com.redhat.spice.0 is missing (spec §14).
want=$(cat /etc/vdrelay/ports)
i=0
while :; do
  mkdir -p /dev/virtio-ports
  found=0
  for d in /sys/class/virtio-ports/*; do
    [ -e "$d/name" ] || continue
    n=$(cat "$d/name")
    [ -n "$n" ] && [ -e "/dev/${d##*/}" ] || continue
    ln -sf "/dev/${d##*/}" "/dev/virtio-ports/$n"
    found=$((found + 1))
  done
  [ "$found" -ge "$want" ] && break
  i=$((i + 1))
  [ "$i" -ge 200 ] && { say "only $found of $want virtio ports appeared"; break; }
  usleep 25000
done
say "ports: $(ls /dev/virtio-ports | tr '\n' ' ')"

/usr/libexec/vdrelay/agent start > /var/log/agent-start.log 2>&1 &
/usr/libexec/vdrelay/ctl &
say "serving control port"
# `wait` blocks in waitpid(-1), so it also reaps processes reparented to PID 1 while the control loop runs.
while :; do wait; usleep 100000; done
