#!/bin/sh
# The guest end of the test control port (virtio-serial "org.vdrelay.ctl"). Binary-safe, length-prefixed:
#   request  "<id> <scriptLen> <stdinLen>\n" <script bytes> <stdin bytes>
#   reply    "<id> <exitCode> <stdoutLen> <stderrLen>\n" <stdout bytes> <stderr bytes>
# Each request runs as `sh script <stdin` in the background, so a blocking one (xclip -o waiting for the host) does
# not hold up the next; replies are written whole under a mkdir lock (busybox has no flock).
PORT=/dev/virtio-ports/org.vdrelay.ctl
W=/tmp/ctl
mkdir -p "$W"
# Each request and reply on the serial console when booted with vdrelay.debug (VDRELAY_VM_DEBUG=1).
grep -q vdrelay.debug /proc/cmdline && DEBUG=1
dbg() { [ -z "$DEBUG" ] || echo "ctl: $*" > /dev/console; }

size() { stat -c %s "$1"; }

body() { # length file: exactly `length` bytes from fd 3 into file (read byte-wise would be slow under TCG)
  if [ "$1" -gt 0 ]; then dd bs="$1" count=1 iflag=fullblock of="$2" <&3 2>/dev/null; else : > "$2"; fi
}

serve() {
  id=$1 d=$2
  # Without fd 3: a daemon the script starts must not hold the port open (it has one opener at a time).
  (cd / && exec sh "$d/script" < "$d/stdin" > "$d/out" 2> "$d/err" 3>&-)
  code=$?
  until mkdir "$W/lock" 2>/dev/null; do usleep 2000; done
  printf '%s %s %s %s\n' "$id" "$code" "$(size "$d/out")" "$(size "$d/err")" >&3
  cat "$d/out" "$d/err" >&3
  rmdir "$W/lock"
  dbg "replied $id (exit $code)"
  rm -rf "$d"
}

seq=0
while :; do
  # With no host on the socket a read gives EOF at once (spec §12): reopen until one is there.
  if exec 3<> "$PORT"; then
    while read -r id slen ilen <&3; do
      [ -n "$ilen" ] || { echo "ctl: bad request line: $id $slen" > /dev/console; continue; }
      dbg "request $id ($slen + $ilen bytes)"
      seq=$((seq + 1))
      d="$W/$seq"
      mkdir -p "$d"
      body "$slen" "$d/script"
      body "$ilen" "$d/stdin"
      # Double fork: the job is PID 1's child, not ours, so no SIGCHLD can land in the middle of our `read`.
      (serve "$id" "$d" &)
    done
    echo "ctl: control port read ended ($?), reopening" > /dev/console
    exec 3>&-
  fi
  usleep 50000
done
