// Reading libvirt domain XML captured from Debian 12's libvirt 9.0 (`virsh dumpxml`, private libvirtd, qemu driver,
// TCG; libvirt-fixtures/README.md): which domains are the bridge's, their agent channel and its live state.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseConfig } from "../../../src/bridge/config.ts"
import { VDRELAY_XMLNS, agentChannel, parseDomain } from "../../../src/bridge/libvirt-domain.ts"
import { XmlError, parseXml } from "../../../src/bridge/libvirt-xml.ts"

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, "libvirt-fixtures", name), "utf8")

describe("parseDomain on real virsh dumpxml output", () => {
  it("a running domain with the vdrelay metadata, its agent connected: VM id, socket, alias, open", () => {
    const d = parseDomain(fixture("domain-live-agent-connected.xml"))
    expect(d).toMatchObject({ name: "lv-test", uuid: "f18923e3-d477-4c2d-9abd-2889881bedfb", running: true, vm: "web-01", problem: undefined })
    expect(agentChannel(d)).toEqual({ name: "com.redhat.spice.0", path: "/tmp/lvx/vm/vdagent.sock", alias: "ua-vdagent", state: "open" })
    // Every virtio channel has its state (libvirt keeps it for all of them, not only the guest agent's).
    expect(d.channels.find((c) => c.name === "org.vdrelay.ctl")).toEqual({ name: "org.vdrelay.ctl", path: "/tmp/lvx/vm/ctl.sock", alias: "channel1", state: "closed" })
  })

  it("an element named vm under the vdrelay prefix but another namespace is not the marker", () => {
    // The booting fixture's only <vdrelay:vm> has xmlns:vdrelay="https://vdrelay.dev/xmlns/libvirt/1".
    const d = parseDomain(fixture("domain-live-booting.xml"))
    expect(d.vm).toBeUndefined()
    expect(d.running).toBe(true)
    expect(agentChannel(d)?.state).toBe("closed")
  })

  it("a shut-off domain: not running, no alias, no state", () => {
    const d = parseDomain(fixture("domain-shutoff.xml"))
    expect(d.running).toBe(false)
    expect(d.vm).toBe("web-01")
    expect(agentChannel(d)).toEqual({ name: "com.redhat.spice.0", path: "/tmp/lvx/vm/vdagent.sock", alias: "ua-vdagent", state: "unknown" })
  })

  it("a bad VM id in the metadata is a problem, not a VM", () => {
    const xml = fixture("domain-live-agent-connected.xml").replace(`xmlns:vdrelay="${VDRELAY_XMLNS}" id="web-01"`, `xmlns:vdrelay="${VDRELAY_XMLNS}" id="web 01/x"`)
    const d = parseDomain(xml)
    expect(d.vm).toBeUndefined()
    expect(d.problem).toMatch(/web 01\/x/)
  })

  it("any prefix bound to the vdrelay namespace marks the domain, also one declared on <domain>", () => {
    const xml = `<domain type='kvm' id='7' xmlns:v="${VDRELAY_XMLNS}"><name>a&amp;b</name><metadata><v:vm id="vm-7"/></metadata><devices/></domain>`
    expect(parseDomain(xml)).toMatchObject({ name: "a&b", vm: "vm-7", running: true, channels: [] })
  })
})

describe("the operator's example (infra/libvirt)", () => {
  it("domain-example.xml is a domain the bridge relays: VM web-01 on its agent channel's socket", () => {
    const d = parseDomain(readFileSync(join(import.meta.dirname, "../../../infra/libvirt/domain-example.xml"), "utf8"))
    expect(d).toMatchObject({ name: "web-01", vm: "web-01", running: false, problem: undefined })
    expect(agentChannel(d)).toEqual({ name: "com.redhat.spice.0", path: "/run/vdrelay/web-01.vdagent.sock", alias: "ua-vdagent", state: "unknown" })
  })

  it("vdagent-channel.xml's metadata element uses the namespace the bridge matches", () => {
    const snippet = readFileSync(join(import.meta.dirname, "../../../infra/libvirt/vdagent-channel.xml"), "utf8")
    expect(parseDomain(`<domain><name>x</name>${snippet}<devices/></domain>`).vm).toBe("web-01")
  })
})

describe("parseXml", () => {
  it("decodes entities in text and attributes, keeps '>' inside quoted values, skips comments and PIs", () => {
    const e = parseXml(`<?xml version="1.0"?><!-- c --><a x="1 &gt; 0" y='&#65;&#x42;'><b>t&lt;u</b><![CDATA[<raw>]]></a>`)
    expect(e.attrs).toEqual({ x: "1 > 0", y: "AB" })
    expect(e.children[0]).toMatchObject({ name: "b", text: "t<u" })
    expect(e.text).toBe("<raw>")
  })

  it("rejects mismatched and unclosed tags with XmlError", () => {
    expect(() => parseXml("<a><b></a>")).toThrow(XmlError)
    expect(() => parseXml("<a>")).toThrow(XmlError)
    expect(() => parseXml("")).toThrow(XmlError)
  })

  it("never throws anything but XmlError on arbitrary input", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          parseXml(s)
        } catch (e) {
          if (!(e instanceof XmlError)) throw e
        }
      }),
    )
  })

  it("every strict prefix of a real domain XML is rejected, never misread", () => {
    const xml = fixture("domain-live-agent-connected.xml")
    const end = xml.lastIndexOf("</domain>")
    for (let cut = 0; cut < end; cut += 7) expect(() => parseDomain(xml.slice(0, cut))).toThrow(XmlError)
  })
})

describe("the config's libvirt section", () => {
  const parse = (o: Record<string, unknown>) => parseConfig(JSON.stringify({ edge: "wss://relay.example/v1/vms/{vm}/agent", tokenFile: "/etc/vdrelay/tokens/{vm}.token", ...o }), "h")

  it("replaces the vms list; defaults filled in; edge and tokenFile are the templates", () => {
    expect(parse({ libvirt: {} })).toMatchObject({
      vms: [],
      libvirt: { uri: "qemu:///system", virsh: "virsh", channel: "com.redhat.spice.0", reconcileMs: 10_000, monitorEvents: true, edge: "wss://relay.example/v1/vms/{vm}/agent", tokenFile: "/etc/vdrelay/tokens/{vm}.token" },
    })
    expect(parse({ libvirt: { uri: "qemu+unix:///system?socket=/x" } }).libvirt?.uri).toBe("qemu+unix:///system?socket=/x")
  })

  it("names the bad key", () => {
    expect(() => parse({ libvirt: { url: "x" } })).toThrow(expect.objectContaining({ key: "libvirt.url" }))
    expect(() => parse({ libvirt: { reconcileMs: 5 } })).toThrow(expect.objectContaining({ key: "libvirt.reconcileMs" }))
    expect(() => parse({ libvirt: {}, tokenFile: "/etc/vdrelay/one.token" })).toThrow(expect.objectContaining({ key: "tokenFile" }))
    expect(() => parse({})).toThrow(expect.objectContaining({ key: "vms" }))
  })
})
