// Builds dist/vdrelay-bridge_<version>_all.deb with dpkg-deb: the bundled `vdrelay` command (scripts/build-bridge.ts),
// a launcher in /usr/bin, the systemd unit and tmpfiles of infra/, the example config as a conffile, and maintainer
// scripts that create the `vdrelay` system user and this host's key (owned by that user, like sshd's host keys made
// at install). Node comes from Debian (`Depends: nodejs (>= 18.19)`): bookworm's
// nodejs 18.20 runs the bundle, it gets Debian's security updates, and the package stays ~0.3 MiB instead of carrying
// a 100 MiB single-executable Node for one architecture. The bundle is plain JavaScript, hence `Architecture: all`.
import { execFileSync } from "node:child_process"
import { chmod, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { BRIDGE_BUNDLE, MIN_NODE, buildBridge } from "./build-bridge.ts"

const ROOT = resolve(import.meta.dirname, "..")
export const PACKAGE = "vdrelay-bridge"
/** Where the package puts things; the unit, the launcher and docs/operations.md name these paths. */
export const PATHS = {
  bundle: "/usr/lib/vdrelay/vdrelay.mjs",
  launcher: "/usr/bin/vdrelay",
  unit: "/lib/systemd/system/vdrelay-bridge.service",
  tmpfiles: "/usr/lib/tmpfiles.d/vdrelay.conf",
  exampleConfig: "/etc/vdrelay/bridge.example.json",
  config: "/etc/vdrelay/bridge.json",
  tokens: "/etc/vdrelay/tokens",
  /** The host key's directory and file: state made on this host at install, the bridge's user's alone (0700/0600). */
  hostKeyDir: "/var/lib/vdrelay",
  hostKey: "/var/lib/vdrelay/host-key.jwk",
  docs: "/usr/share/doc/vdrelay-bridge",
} as const

/**
 * The launcher: Debian's node running the bundle, exactly what the unit's ExecStart runs; `vdrelay host-key` and the
 * bridge find the package's host key without being told.
 */
const LAUNCHER = `#!/bin/sh
# vdrelay: mint tokens (vdrelay token) and run the host bridge (vdrelay bridge). Installed by the ${PACKAGE} package.
VDRELAY_HOST_KEY_FILE="\${VDRELAY_HOST_KEY_FILE:-${PATHS.hostKey}}"
export VDRELAY_HOST_KEY_FILE
exec /usr/bin/node ${PATHS.bundle} "$@"
`

/**
 * infra/systemd/vdrelay-bridge.service with the package's paths: ExecStart runs the launcher, and the unit does not
 * start before the operator has written the config (an unconfigured host would only exit with a config error).
 */
export const packagedUnit = (unit: string): string => {
  const command = /\/opt\/vdrelay\/node_modules\/\.bin\/node \/opt\/vdrelay\/bin\/vdrelay\.mjs/g
  if (!/^ExecStart=\/opt\/vdrelay\/node_modules\/\.bin\/node \/opt\/vdrelay\/bin\/vdrelay\.mjs bridge /m.test(unit) || !/^\[Unit\]$/m.test(unit) || !/^User=vdrelay$/m.test(unit)) {
    throw new Error("infra/systemd/vdrelay-bridge.service: no [Unit], User=vdrelay or ExecStart= running bin/vdrelay.mjs bridge")
  }
  return unit
    .replace(/^# Install: .*$/m, `# Installed by the ${PACKAGE} package: config ${PATHS.config}, tokens ${PATHS.tokens}/<vm>.token.`)
    .replace(/^Documentation=.*$/m, `Documentation=file:${PATHS.docs}/operations.md`)
    .replace(/^\[Unit\]$/m, `[Unit]\nConditionPathExists=${PATHS.config}`)
    .replace(/^User=vdrelay$/m, `User=vdrelay\nEnvironment=VDRELAY_HOST_KEY_FILE=${PATHS.hostKey}`)
    .replace(command, PATHS.launcher)
}

const control = (version: string, installedKiB: number): string => `Package: ${PACKAGE}
Version: ${version}
Architecture: all
Maintainer: vdrelay authors <vdrelay@users.noreply.github.com>
Installed-Size: ${installedKiB}
Depends: nodejs (>= ${MIN_NODE}), adduser
Recommends: iproute2
Suggests: qemu-system-x86 | libvirt-daemon-system
Section: net
Priority: optional
Homepage: https://github.com/vdrelay/vdrelay
Description: vdrelay host bridge for SPICE guest agents
 Streams every configured VM's vdagent chardev socket to its relay Durable
 Object on Cloudflare Workers over an outbound WebSocket, resuming after drops
 without losing or duplicating a byte. Also mints relay tokens (vdrelay token).
`

// The system user the unit runs as, in group kvm for QEMU's sockets; the tokens folder it alone (with root) reads; and
// this host's key, made once (never overwritten: an upgrade keeps it, and with it every token naming it) in a folder
// only that user can enter, owned by it (the bridge refuses a key others can read). Its thumbprint is printed for the
// operator's tokens; `vdrelay host-key` prints it again.
const POSTINST = `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd vdrelay >/dev/null; then
    adduser --system --group --no-create-home --home /nonexistent --quiet vdrelay
  fi
  if getent group kvm >/dev/null; then adduser --quiet vdrelay kvm; fi
  install -d -m 0750 -o root -g vdrelay ${PATHS.tokens}
  install -d -m 0700 -o vdrelay -g vdrelay ${PATHS.hostKeyDir}
  # The folder is the user's: never follow a link planted in it while acting as root.
  if [ -L ${PATHS.hostKey} ]; then echo "vdrelay-bridge: ${PATHS.hostKey} is a symbolic link; not touching it" >&2; exit 1; fi
  if [ ! -e ${PATHS.hostKey} ]; then
    thumbprint=$(VDRELAY_HOST_KEY_FILE=${PATHS.hostKey} ${PATHS.launcher} host-key)
    echo "vdrelay-bridge: this host's key is ${PATHS.hostKey}, thumbprint $thumbprint (vdrelay token --jkt $thumbprint)"
  fi
  chown vdrelay:vdrelay ${PATHS.hostKey}
  chmod 0600 ${PATHS.hostKey}
  if [ -d /run/systemd/system ]; then
    systemd-tmpfiles --create vdrelay.conf >/dev/null 2>&1 || true
    systemctl daemon-reload >/dev/null 2>&1 || true
    # An upgrade restarts a running bridge on the new code; a fresh install waits for the operator to enable it.
    if systemctl is-active --quiet vdrelay-bridge.service; then systemctl try-restart vdrelay-bridge.service || true; fi
  fi
fi
exit 0
`

const PRERM = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop vdrelay-bridge.service >/dev/null 2>&1 || true
fi
exit 0
`

// The user stays (Debian keeps system users: files it owned may remain); purge removes the tokens it was given and the
// host key (as purging openssh-server removes its host keys): a reinstall makes a new key, and tokens must name it.
const POSTRM = `#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf ${PATHS.tokens} ${PATHS.hostKeyDir}
  rmdir --ignore-fail-on-non-empty /etc/vdrelay 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
`

const duKiB = (dir: string): number => Number(execFileSync("du", ["-sk", "--exclude=DEBIAN", dir], { encoding: "utf8" }).split("\t")[0])

export const buildDeb = async (): Promise<{ file: string; bytes: number }> => {
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string }
  await buildBridge()
  const stage = await mkdtemp(join(tmpdir(), "vdrelay-deb-"))
  try {
    // The tree's root becomes the installed "/": mkdtemp's 0700 would be recorded in the package.
    await chmod(stage, 0o755)
    const at = (p: string): string => join(stage, p)
    const put = async (p: string, content: string | Buffer, mode = 0o644): Promise<void> => {
      await mkdir(resolve(at(p), ".."), { recursive: true })
      await writeFile(at(p), content)
      await chmod(at(p), mode)
    }
    await put(PATHS.bundle, await readFile(BRIDGE_BUNDLE))
    await put(PATHS.launcher, LAUNCHER, 0o755)
    await put(PATHS.unit, packagedUnit(await readFile(join(ROOT, "infra/systemd/vdrelay-bridge.service"), "utf8")))
    await put(PATHS.tmpfiles, await readFile(join(ROOT, "infra/tmpfiles.d-vdrelay.conf")))
    await put(PATHS.exampleConfig, await readFile(join(ROOT, "infra/bridge.example.json")))
    await put(`${PATHS.docs}/copyright`, await readFile(join(ROOT, "LICENSE")))
    await cp(join(ROOT, "docs/operations.md"), at(`${PATHS.docs}/operations.md`))
    await put("/DEBIAN/control", control(pkg.version, duKiB(stage)))
    await put("/DEBIAN/conffiles", `${PATHS.exampleConfig}\n`)
    await put("/DEBIAN/postinst", POSTINST, 0o755)
    await put("/DEBIAN/prerm", PRERM, 0o755)
    await put("/DEBIAN/postrm", POSTRM, 0o755)
    const file = join(ROOT, "dist", `${PACKAGE}_${pkg.version}_all.deb`)
    await mkdir(join(ROOT, "dist"), { recursive: true })
    execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", stage, file], { stdio: ["ignore", "ignore", "inherit"] })
    return { file, bytes: (await stat(file)).size }
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

if (import.meta.filename === process.argv[1]) {
  const { file, bytes } = await buildDeb()
  process.stdout.write(`${file}: ${(bytes / 1024).toFixed(0)} KiB\n`)
}
