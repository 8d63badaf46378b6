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

# The session agent exits silently when /dev/virtio-ports/com.redhat.spice.0 is missing (spec §14), and there is no
# udev to make it: keep /dev/virtio-ports/<name> in step with /sys/class/virtio-ports here, also across device_del /
# device_add of a port (the new port gets a new vportNpM). Builtins only, so a pass costs no fork when nothing changed.
mkdir -p /dev/virtio-ports
linked=""
link_ports() {
  now=""
  for d in /sys/class/virtio-ports/*; do
    [ -r "$d/name" ] && [ -e "/dev/${d##*/}" ] || continue
    read -r n < "$d/name" || continue
    [ -n "$n" ] && now="$now $n=${d##*/}"
  done
  [ "$now" = "$linked" ] && return
  rm -f /dev/virtio-ports/*
  for p in $now; do ln -sf "/dev/${p#*=}" "/dev/virtio-ports/${p%%=*}"; done
  linked=$now
}
want=$(cat /etc/vdrelay/ports)
i=0
while link_ports; set -- $linked; [ "$#" -lt "$want" ]; do
  i=$((i + 1))
  [ "$i" -ge 200 ] && { say "only $# of $want virtio ports appeared"; break; }
  usleep 25000
done
(while :; do link_ports; usleep 200000; done) &
say "ports: $(ls /dev/virtio-ports | tr '\n' ' ')"

# The supervisor starts the agent at once (the port is there) and again whenever it is gone, as systemd would.
/usr/libexec/vdrelay/agent supervise > /var/log/agent-supervise.log 2>&1 &
/usr/libexec/vdrelay/ctl &
say "serving control port"
# `wait` blocks in waitpid(-1), so it also reaps processes reparented to PID 1 while the control loop runs.
while :; do wait; usleep 100000; done
