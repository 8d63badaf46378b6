#!/usr/bin/env bash
# Debian packages the tests and `npm start` use: the real guest agent under Xvfb, socat, xclip, Chromium, websockify;
# and for the real-VM tests (test/vm, docs/testing-vm.md) QEMU, the kernel the guest boots, busybox for its init, cpio,
# xrandr and xkbcomp (the guest image is assembled from these packages' files at test time); libvirt for the libvirt
# source of the bridge.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
pkgs=(spice-vdagent xvfb socat xclip x11-utils libspice-protocol-dev chromium websockify)
# The .deb test (test/e2e/deb-bridge.test.ts) installs vdrelay-bridge, which depends on these (dpkg-deb is essential).
pkgs+=(nodejs adduser)
# The bridge's systemd notifications go through systemd-notify (package systemd); test/unit/bridge/notify.test.ts
# listens on the NOTIFY_SOCKET with python3's AF_UNIX datagram socket.
pkgs+=(systemd python3)
pkgs+=(qemu-system-x86 linux-image-amd64 busybox-static cpio x11-xserver-utils x11-xkb-utils xkb-data)
# A migration's source bridge asks `ss -x` at STOP what QEMU had not taken from its chardev socket (test/vm/migration
# checks it; the .deb recommends iproute2).
pkgs+=(iproute2)
# The libvirt test (test/vm/libvirt.test.ts) runs Debian's own libvirtd (qemu driver) as a private daemon, and the
# bridge's libvirt source talks to it through virsh.
pkgs+=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
