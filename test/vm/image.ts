// The guest image: an initramfs assembled at test time from THIS machine's Debian packages (spec §14): Xvfb, xkbcomp,
// spice-vdagentd, spice-vdagent, xclip and xrandr with their shared-library closure (ldd), xkb and X11 locale data,
// glibc's C.utf8 locale, an ld.so.cache, the virtio/input modules of the installed linux-image-amd64 kernel, and
// busybox for the shell and init (test/vm/guest/*.sh). Cached outside git under a hash of every input, so a package
// upgrade, a new kernel or an edited guest script rebuilds it; built in a temporary directory and renamed into place,
// so two concurrent builders cannot see a half-written image.
import { createHash, randomBytes } from "node:crypto"
import { execFileSync } from "node:child_process"
import {
  chmodSync,
  closeSync,
  openSync,
  utimesSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { homedir } from "node:os"
import { basename, dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

/** Bump when the layout changes in a way the hashed inputs do not show. */
const FORMAT = 3
const GUEST_DIR = join(dirname(fileURLToPath(import.meta.url)), "guest")

/** Binaries the guest runs, and the Debian package each comes from (for the error message when one is missing). */
export const GUEST_BINARIES: Readonly<Record<string, string>> = {
  "/usr/bin/Xvfb": "xvfb",
  "/usr/bin/xkbcomp": "x11-xkb-utils",
  "/usr/sbin/spice-vdagentd": "spice-vdagent",
  "/usr/bin/spice-vdagent": "spice-vdagent",
  "/usr/bin/xclip": "xclip",
  "/usr/bin/xrandr": "x11-xserver-utils",
}
const BUSYBOX = "/usr/bin/busybox"
/** Data trees copied whole: keymaps (Xvfb compiles one at start), X11 locale, C.utf8 (GTK warns without it). */
const DATA_TREES = ["/usr/share/X11/xkb", "/usr/share/X11/locale", "/usr/lib/locale/C.utf8"]
const MODULES = ["virtio_pci", "virtio_console", "uinput", "evdev"]
/** Packages whose versions are part of the cache key (the file stats below catch the rest). */
const KEY_PACKAGES = ["busybox-static", "spice-vdagent", "xvfb", "xclip", "x11-xserver-utils", "x11-xkb-utils", "xkb-data", "libc6", "libgtk-3-0"]
/** virtio-serial ports the init waits for: the agent's and the control port. */
const GUEST_PORTS = 2

export class VmSetupError extends Error {
  constructor(message: string) {
    super(message)
    this.name = "VmSetupError"
  }
}

export interface GuestImage {
  readonly kernel: string
  readonly kernelVersion: string
  readonly initrd: string
  /** The cache key (sha256 of the inputs). */
  readonly key: string
  /** True when this call built it (false: taken from the cache). */
  readonly built: boolean
  readonly buildMs: number
  readonly bytes: number
}

export interface ImageOptions {
  /** Default: $VDRELAY_VM_CACHE or ~/.cache/vdrelay-vm. */
  readonly cacheDir?: string
  /** gzip (smaller, the kernel inflates it) or a plain cpio (bigger, nothing to inflate). Default gzip. */
  readonly compression?: "gzip" | "none"
}

export const defaultCacheDir = (): string => process.env.VDRELAY_VM_CACHE ?? join(homedir(), ".cache", "vdrelay-vm")

const versionKey = (v: string): number[] => v.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0)

/** The newest /boot/vmlinuz-* that has its modules installed. */
export const findKernel = (): { path: string; version: string } => {
  const found = existsSync("/boot") ? readdirSync("/boot").filter((f) => f.startsWith("vmlinuz-")) : []
  const versions = found.map((f) => f.slice("vmlinuz-".length)).filter((v) => existsSync(join("/lib/modules", v, "modules.dep")))
  versions.sort((a, b) => {
    const [x, y] = [versionKey(a), versionKey(b)]
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
    return 0
  })
  const version = versions.at(-1)
  if (version === undefined) throw new VmSetupError("no /boot/vmlinuz-* with modules in /lib/modules: install the Debian package 'linux-image-amd64' (bash infra/install-deps.sh)")
  const path = join("/boot", `vmlinuz-${version}`)
  try {
    closeSync(openSync(path, "r"))
  } catch (e) {
    throw new VmSetupError(`cannot read ${path} (${(e as Error).message}); Debian installs it mode 0600: run as root or copy it`)
  }
  return { path, version }
}

/** What the guest needs that is missing on this machine, as install hints (empty when nothing is). */
export const missingGuestInputs = (): string[] => {
  const missing: string[] = []
  for (const [bin, pkg] of Object.entries(GUEST_BINARIES)) if (!existsSync(bin)) missing.push(`${bin} (Debian package '${pkg}')`)
  if (!existsSync(BUSYBOX)) missing.push(`${BUSYBOX} (Debian package 'busybox-static')`)
  for (const tree of DATA_TREES) if (!existsSync(tree)) missing.push(`${tree} (Debian package '${tree.includes("xkb") ? "xkb-data" : tree.includes("locale/C") ? "libc-bin" : "libx11-data"}')`)
  try {
    findKernel()
  } catch (e) {
    missing.push((e as Error).message)
  }
  return missing
}

/** Shared objects a binary loads (ldd), including the dynamic loader. */
const sharedObjects = (file: string): string[] => {
  const out = execFileSync("ldd", [file], { encoding: "utf8" })
  const libs: string[] = []
  for (const line of out.split("\n")) {
    const arrow = /=>\s*(\S+)/.exec(line)
    if (line.includes("not found")) throw new VmSetupError(`ldd ${file}: ${line.trim()}`)
    if (arrow !== null && arrow[1]!.startsWith("/")) libs.push(arrow[1]!)
    else {
      const bare = /^\s*(\/\S+)\s+\(/.exec(line)
      if (bare !== null) libs.push(bare[1]!)
    }
  }
  return libs
}

const walk = (dir: string, out: string[]): void => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = lstatSync(p)
    if (st.isDirectory()) walk(p, out)
    else out.push(p)
  }
}

/** Module paths (relative to /lib/modules/<version>) in load order: each one's dependencies before it. */
const moduleOrder = (version: string): string[] => {
  const dep = readFileSync(join("/lib/modules", version, "modules.dep"), "utf8")
  const deps = new Map<string, string[]>()
  for (const line of dep.split("\n")) {
    const colon = line.indexOf(":")
    if (colon < 0) continue
    deps.set(line.slice(0, colon), line.slice(colon + 1).trim().split(/\s+/).filter((s) => s !== ""))
  }
  const byName = new Map<string, string>()
  for (const path of deps.keys()) byName.set(basename(path).replace(/\.ko(\.\w+)?$/, "").replace(/-/g, "_"), path)
  const order: string[] = []
  const visit = (path: string): void => {
    if (order.includes(path)) return
    // modules.dep lists the whole closure, nearest last; loading from the end gets leaves first.
    for (const d of [...(deps.get(path) ?? [])].reverse()) visit(d)
    order.push(path)
  }
  for (const m of MODULES) {
    const path = byName.get(m)
    // Built into this kernel (=y): nothing to load.
    if (path === undefined) continue
    visit(path)
  }
  for (const p of order) if (!/\.ko$/.test(p)) throw new VmSetupError(`module ${p} is compressed; busybox insmod needs plain .ko`)
  return order
}

interface Inputs {
  readonly kernel: { path: string; version: string }
  /** Host files to copy (at the same path in the guest). */
  readonly files: string[]
  readonly modules: string[]
  readonly scripts: Record<string, string>
}

const collectInputs = (): Inputs => {
  const missing = missingGuestInputs()
  if (missing.length > 0) throw new VmSetupError(`the VM test guest cannot be built; missing: ${missing.join("; ")} — run \`bash infra/install-deps.sh\``)
  const kernel = findKernel()
  const files = new Set<string>([...Object.keys(GUEST_BINARIES), BUSYBOX])
  // No gdk-pixbuf loader modules: PNG (the image type the tests use) is built into libgdk_pixbuf, and the SVG loader
  // alone would add ~45 MB (librsvg, ICU data).
  for (const f of Object.keys(GUEST_BINARIES)) for (const lib of sharedObjects(f)) files.add(lib)
  for (const tree of DATA_TREES) {
    const all: string[] = []
    walk(tree, all)
    for (const f of all) files.add(f)
  }
  const scripts: Record<string, string> = {}
  for (const name of ["init.sh", "agent.sh", "ctl.sh"]) scripts[name] = readFileSync(join(GUEST_DIR, name), "utf8")
  return { kernel, files: [...files].sort(), modules: moduleOrder(kernel.version), scripts }
}

const dpkgVersions = (): string => {
  try {
    return execFileSync("dpkg-query", ["-W", "-f", "${Package} ${Version}\\n", ...KEY_PACKAGES], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
  } catch (e) {
    // dpkg-query exits 1 when one of them is not installed but still prints the rest.
    return String((e as { stdout?: unknown }).stdout ?? "")
  }
}

const cacheKey = (inputs: Inputs, compression: string): string => {
  const h = createHash("sha256")
  const stamp = (p: string): string => {
    const st = lstatSync(p)
    return `${p} ${st.size} ${Math.round(st.mtimeMs)}`
  }
  h.update(JSON.stringify({ FORMAT, compression, kernel: inputs.kernel, modules: inputs.modules, scripts: inputs.scripts }))
  h.update(dpkgVersions())
  h.update(stamp(inputs.kernel.path))
  for (const f of inputs.files) h.update(`${stamp(f)}\n`)
  return h.digest("hex").slice(0, 24)
}

/** Copies `src` into `root` at the same path, keeping symlinks as symlinks (and copying what they point to). */
const copyInto = (root: string, src: string, seen: Set<string>): void => {
  // Resolve the directory part (merged /usr: /lib → /usr/lib) but keep the last component as it is.
  const path = join(realpathSync(dirname(src)), basename(src))
  if (seen.has(path)) return
  seen.add(path)
  const dest = join(root, path)
  mkdirSync(dirname(dest), { recursive: true })
  const st = lstatSync(path)
  if (st.isSymbolicLink()) {
    const target = readlinkSync(path)
    symlinkSync(target, dest)
    copyInto(root, resolve(dirname(path), target), seen)
  } else if (st.isFile()) {
    copyFileSync(path, dest)
    chmodSync(dest, st.mode & 0o7777)
  }
}

const write = (root: string, path: string, text: string, mode = 0o644): void => {
  const dest = join(root, path)
  mkdirSync(dirname(dest), { recursive: true })
  writeFileSync(dest, text)
  chmodSync(dest, mode)
}

const assembleTree = (root: string, inputs: Inputs): void => {
  // Debian's merged /usr, so that paths baked into binaries (/lib64/ld-linux…, /bin/sh) resolve.
  for (const d of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "proc", "sys", "dev", "tmp", "run", "root", "var/log", "etc"]) mkdirSync(join(root, d), { recursive: true })
  for (const [link, target] of [["bin", "usr/bin"], ["sbin", "usr/sbin"], ["lib", "usr/lib"], ["lib64", "usr/lib64"]] as const) symlinkSync(target, join(root, link))
  const seen = new Set<string>()
  for (const f of inputs.files) copyInto(root, f, seen)
  // busybox applets in their own directory, last on PATH, so they never shadow a real binary.
  const applets = execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n").filter((a) => a !== "" && a !== "busybox")
  mkdirSync(join(root, "usr/libexec/bb"), { recursive: true })
  for (const a of applets) symlinkSync("/usr/bin/busybox", join(root, "usr/libexec/bb", a))
  symlinkSync("busybox", join(root, "usr/bin/sh"))
  for (const m of inputs.modules) copyInto(root, join("/lib/modules", inputs.kernel.version, m), seen)
  write(root, "etc/vdrelay/modules", `${inputs.modules.map((m) => `${inputs.kernel.version}/${m}`).join("\n")}\n`)
  write(root, "etc/vdrelay/ports", `${GUEST_PORTS}\n`)
  write(root, "init", inputs.scripts["init.sh"]!, 0o755)
  write(root, "usr/libexec/vdrelay/agent", inputs.scripts["agent.sh"]!, 0o755)
  write(root, "usr/libexec/vdrelay/ctl", inputs.scripts["ctl.sh"]!, 0o755)
  write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
  write(root, "etc/group", "root:x:0:\nnogroup:x:65534:\n")
  write(root, "etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n")
  // GIO/dbus want a machine id; any fixed one will do in a throwaway guest.
  write(root, "etc/machine-id", "5d1e1a7e0cdbeefb0a5e5ce0ffee0001\n")
  write(root, "etc/ld.so.conf", "/usr/lib/x86_64-linux-gnu\n/usr/lib\n")
  execFileSync("ldconfig", ["-r", root], { stdio: ["ignore", "ignore", "pipe"] })
}

/** newc cpio of `root` with every file owned by root (the kernel unpacks it as the initial rootfs). */
const packCpio = (root: string): Buffer => {
  const list = execFileSync("find", [".", "-mindepth", "1"], { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })
  return execFileSync("cpio", ["-o", "-H", "newc", "-R", "0:0", "--quiet"], { cwd: root, input: list, maxBuffer: 512 * 1024 * 1024 })
}

const DAY_MS = 24 * 60 * 60 * 1000

/**
 * Removes images unused for 3 days (another checkout may still use an older one, so not just "every other key") and
 * build directories a killed builder left behind over an hour ago.
 */
const prune = (cacheDir: string): void => {
  const now = Date.now()
  for (const name of readdirSync(cacheDir)) {
    const p = join(cacheDir, name)
    const age = now - statSync(p).mtimeMs
    if (name.startsWith(".build-") ? age > DAY_MS / 24 : age > 3 * DAY_MS) rmSync(p, { recursive: true, force: true })
  }
}

/** Returns the cached image for the current inputs, building it first when there is none. */
export const guestImage = (opts: ImageOptions = {}): GuestImage => {
  const t0 = performance.now()
  const compression = opts.compression ?? "gzip"
  const inputs = collectInputs()
  const key = cacheKey(inputs, compression)
  const cacheDir = opts.cacheDir ?? defaultCacheDir()
  const finalDir = join(cacheDir, key)
  const initrdName = compression === "gzip" ? "initrd.cpio.gz" : "initrd.cpio"
  const result = (built: boolean): GuestImage => ({
    kernel: inputs.kernel.path,
    kernelVersion: inputs.kernel.version,
    initrd: join(finalDir, initrdName),
    key,
    built,
    buildMs: Math.round(performance.now() - t0),
    bytes: statSync(join(finalDir, initrdName)).size,
  })
  if (existsSync(join(finalDir, initrdName))) {
    // Marks it in use, so that pruning (below) keeps it.
    utimesSync(finalDir, new Date(), new Date())
    return result(false)
  }

  mkdirSync(cacheDir, { recursive: true })
  prune(cacheDir)
  const work = join(cacheDir, `.build-${process.pid}-${randomBytes(4).toString("hex")}`)
  try {
    const root = join(work, "root")
    mkdirSync(root, { recursive: true })
    assembleTree(root, inputs)
    const cpio = packCpio(root)
    const out = join(work, "out")
    mkdirSync(out)
    writeFileSync(join(out, initrdName), compression === "gzip" ? gzipSync(cpio, { level: 6 }) : cpio)
    writeFileSync(join(out, "inputs.txt"), `kernel ${inputs.kernel.path}\nmodules ${inputs.modules.join(" ")}\n${dpkgVersions()}files ${inputs.files.length}\n`)
    try {
      renameSync(out, finalDir)
    } catch (e) {
      // Another builder got there first with the same inputs: its image is as good as ours.
      if (!existsSync(join(finalDir, initrdName))) throw e
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  return result(true)
}
