// A service manager's end of the sd_notify protocol for tests: a real AF_UNIX SOCK_DGRAM socket (python3's socket
// module: Node has none) bound at a path or an '@' abstract address, each datagram parsed into its KEY=VALUE fields
// with the receive time on CLOCK_MONOTONIC (µs). systemd-notify's BARRIER=1 datagrams (with a pipe fd, dropped here,
// which releases the sender) are not recorded.
import { type ChildProcess, spawn } from "node:child_process"

const LISTENER = `
import json, socket, sys, time
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps({"bound": True}), flush=True)
while True:
    data, anc, flags, _ = s.recvmsg(65536)
    print(json.dumps({"at": time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000, "data": data.decode()}), flush=True)
`

export interface Datagram {
  /** CLOCK_MONOTONIC when it was received, µs. */
  readonly at: number
  readonly fields: Readonly<Record<string, string>>
}

export interface NotifyListener {
  /** What to put in $NOTIFY_SOCKET. */
  readonly address: string
  readonly child: ChildProcess
  readonly datagrams: ReadonlyArray<Datagram>
  bound(): boolean
  stop(): void
}

export const listenNotify = (address: string): NotifyListener => {
  const child = spawn("python3", ["-c", LISTENER, address], { stdio: ["ignore", "pipe", "inherit"] })
  const datagrams: Array<Datagram> = []
  let bound = false
  let buf = ""
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString()
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = JSON.parse(buf.slice(0, i)) as { bound?: boolean; at: number; data: string }
      buf = buf.slice(i + 1)
      if (line.bound === true) bound = true
      else if (line.data !== "BARRIER=1") {
        const fields = Object.fromEntries(line.data.split("\n").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]))
        datagrams.push({ at: line.at, fields })
      }
    }
  })
  return { address, child, datagrams, bound: () => bound, stop: () => void child.kill("SIGKILL") }
}
