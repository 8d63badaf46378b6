#!/bin/sh
# Starts and stops Xvfb and the real spice-vdagentd + spice-vdagent pair inside the test guest, the way spec §14 found
# them to work: daemon -X (no logind), the real /dev/uinput, session agent -f DIR -o 0 (else file transfer is off).
# Logs: /var/log/{Xvfb,vdagentd,vdagent}.log (appended across restarts). "start" waits until the daemon has opened
# the agent port, so a caller knows the guest side is there.
# "supervise" (run by init) plays systemd + udev of a real Debian guest: spice-vdagentd.service has Restart=on-failure
# and udev starts it when the port appears, so whenever the daemon or session agent is gone and the port exists (e.g.
# after device_del/device_add, where the daemon exits "Fatal error opening vdagent virtio channel") it starts them again,
# unless "stop" put them on hold (until the next "start"), so that a test can open the port by hand.
P=/dev/virtio-ports/com.redhat.spice.0
export DISPLAY=:0 NO_AT_BRIDGE=1 GDK_BACKEND=x11
# Xvfb's screen (WxHxD) from the kernel command line (startVm's `screen`); RandR can resize it up to this size only.
SCREEN=1024x768x24
for a in $(cat /proc/cmdline); do case $a in vdrelay.screen=*) SCREEN=${a#*=} ;; esac; done

alive() { [ -f "/run/$1.pid" ] && read -r pid < "/run/$1.pid" && kill -0 "$pid" 2>/dev/null; }
# One start/stop at a time, whoever asks (a test over the control port, or the supervisor).
lock() { until mkdir /run/agent.lock 2>/dev/null; do usleep 20000; done; }
unlock() { rmdir /run/agent.lock; }
HOLD=/run/agent.held

stop_one() {
  alive "$1" || { rm -f "/run/$1.pid"; return 0; }
  pid=$(cat "/run/$1.pid")
  kill "$pid" 2>/dev/null
  n=0
  while kill -0 "$pid" 2>/dev/null; do
    n=$((n + 1))
    [ "$n" -eq 100 ] && kill -9 "$pid" 2>/dev/null
    usleep 20000
  done
  rm -f "/run/$1.pid"
}

wait_for() { # what, test expression..., up to 20 s
  what=$1; shift
  n=0
  until "$@"; do
    n=$((n + 1))
    [ "$n" -ge 1000 ] && { echo "agent: timed out waiting for $what" >&2; return 1; }
    usleep 20000
  done
}

opens() { n=$(grep -c 'opening vdagent virtio channel' /var/log/vdagentd.log 2>/dev/null); echo "${n:-0}"; }
more_opens() { [ "$(opens)" -gt "$1" ]; }

start() {
  if ! alive xvfb; then
    Xvfb :0 -screen 0 "$SCREEN" -nolisten tcp -noreset >> /var/log/Xvfb.log 2>&1 &
    echo $! > /run/xvfb.pid
    wait_for Xvfb test -S /tmp/.X11-unix/X0 || return 1
  fi
  before=$(opens)
  if ! alive vdagentd; then
    rm -f /run/spice-vdagentd/spice-vdagent-sock
    spice-vdagentd -x -d -d -X -u /dev/uinput >> /var/log/vdagentd.log 2>&1 &
    echo $! > /run/vdagentd.pid
    wait_for "daemon socket" test -S /run/spice-vdagentd/spice-vdagent-sock || return 1
  fi
  if ! alive vdagent; then
    spice-vdagent -x -d -f /tmp/xfer -o 0 >> /var/log/vdagent.log 2>&1 &
    echo $! > /run/vdagent.pid
  fi
  # The daemon opens the port once the session agent has reported its screen (spec §6).
  wait_for "port open" more_opens "$before"
}

stop() {
  stop_one vdagent
  stop_one vdagentd
}

supervise() {
  while :; do
    if [ ! -e $HOLD ] && [ -e $P ] && ! { alive vdagentd && alive vdagent; }; then
      lock
      if [ ! -e $HOLD ] && ! { alive vdagentd && alive vdagent; }; then
        echo "agent: supervisor starting what is not running" >> /var/log/agent-supervise.log
        start >> /var/log/agent-supervise.log 2>&1
      fi
      unlock
    fi
    usleep 500000
  done
}

case "$1" in
  start) lock; rm -f $HOLD; start; rc=$?; unlock; exit $rc ;;
  stop) lock; : > $HOLD; stop; unlock ;;
  restart) lock; : > $HOLD; stop; rm -f $HOLD; start; rc=$?; unlock; exit $rc ;;
  stop-all) lock; : > $HOLD; stop; stop_one xvfb; unlock ;;
  supervise) supervise ;;
  status) for p in xvfb vdagentd vdagent; do alive $p && echo "$p up" || echo "$p down"; done ;;
  *) echo "usage: agent start|stop|restart|stop-all|supervise|status" >&2; exit 2 ;;
esac
