// How many bytes handed to a UNIX stream socket its peer has not read yet: Node's own write queue plus the peer's
// receive queue as the kernel's sock_diag reports it (`ss -x`: Recv-Q of the socket whose peer is ours). Node has no
// ioctl (SIOCOUTQ), and on a UNIX socket the sender's own Send-Q counts buffer sizes, not bytes. Used once per live
// migration, at STOP: what QEMU had not taken from the chardev socket then never reaches the guest (spec §13).
import { execFile } from "node:child_process"
import { readlink } from "node:fs/promises"
import type { Socket } from "node:net"

/** The inode of the socket behind `fd` in this process (`socket:[N]`). */
const inodeOf = async (fd: number): Promise<string | undefined> => /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/self/fd/${fd}`))?.[1]

/**
 * The Recv-Q of the UNIX socket whose peer is `inode`, from `ss -xH` lines:
 * `u_str ESTAB <Recv-Q> <Send-Q> <local address> <local inode> <peer address> <peer inode>` (addresses may be `*`).
 */
export const peerRecvQ = (ssOutput: string, inode: string): number | undefined => {
  for (const line of ssOutput.split("\n")) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 8 || cols[0] !== "u_str") continue
    if (cols[cols.length - 1] !== inode || cols[cols.length - 3] === inode) continue
    const q = Number(cols[2])
    return Number.isSafeInteger(q) && q >= 0 ? q : undefined
  }
  return undefined
}

/** Bytes written to `socket` that its peer has not read; undefined when it cannot be told (no `ss`, peer gone). */
export const unreadByPeer = async (socket: Socket): Promise<number | undefined> => {
  try {
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
    if (typeof fd !== "number" || fd < 0) return undefined
    const inode = await inodeOf(fd)
    if (inode === undefined) return undefined
    const out = await new Promise<string>((ok, fail) => execFile("ss", ["-xH"], { timeout: 2_000, maxBuffer: 16 * 1024 * 1024 }, (e, stdout) => (e ? fail(e) : ok(stdout))))
    const q = peerRecvQ(out, inode)
    return q === undefined ? undefined : q + socket.writableLength
  } catch {
    return undefined
  }
}
