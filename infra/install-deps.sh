#!/usr/bin/env bash
# Debian packages the tests and `npm start` use: the real guest agent under Xvfb, socat, xclip, Chromium, websockify.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
pkgs=(spice-vdagent xvfb socat xclip x11-utils libspice-protocol-dev chromium websockify)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
