#!/bin/sh
# Starts and stops Xvfb and the real spice-vdagentd + spice-vdagent pair inside the test guest, the way spec §14 found
# them to work: daemon -X (no logind), the real /dev/uinput, session agent -f DIR -o 0 (else file transfer is off).
# Logs: /var/log/{Xvfb,vdagentd,vdagent}.log (appended across restarts). "start" waits until the daemon has opened
# the agent port, so a caller knows the guest side is there.
P=/dev/virtio-ports/com.redhat.spice.0
export DISPLAY=:0 NO_AT_BRIDGE=1 GDK_BACKEND=x11

alive() { [ -f "/run/$1.pid" ] && kill -0 "$(cat "/run/$1.pid")" 2>/dev/null; }

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
    Xvfb :0 -screen 0 "${SCREEN:-1024x768x24}" -nolisten tcp -noreset >> /var/log/Xvfb.log 2>&1 &
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

case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  stop-all) stop; stop_one xvfb ;;
  status) for p in xvfb vdagentd vdagent; do alive $p && echo "$p up" || echo "$p down"; done ;;
  *) echo "usage: agent start|stop|restart|stop-all|status" >&2; exit 2 ;;
esac
