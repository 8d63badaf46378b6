// What the bridge reads from a libvirt domain's XML (formatdomain.html): whether the domain is the bridge's (the
// vdrelay metadata element and the VM id it carries), and its agent channel: the UNIX socket QEMU listens on, the
// device alias QEMU's VSERPORT_CHANGE names, and the port state libvirt keeps in the live XML
// (`<target type='virtio' name='…' state='connected|disconnected'/>`, set from VSERPORT_CHANGE for every virtio
// channel, and from query-chardev when libvirt starts or reconnects to the domain).
import { NAME_PATTERN } from "../auth/token.ts"
import type { PortLevel } from "../link/types.ts"
import { type XmlElement, XmlError, child, childrenNamed, parseXml } from "./libvirt-xml.ts"

/** The namespace of the metadata element: `<vdrelay:vm xmlns:vdrelay="urn:vdrelay:libvirt:1" id="web-01"/>`. */
export const VDRELAY_XMLNS = "urn:vdrelay:libvirt:1"
export const AGENT_CHANNEL = "com.redhat.spice.0"

export interface Channel {
  /** The virtio port name (`com.redhat.spice.0`). */
  readonly name: string
  /** `<source mode='bind' path='…'/>`: QEMU listens there. Undefined for other kinds of channel. */
  readonly path: string | undefined
  /** The device alias (`ua-vdagent`, `channel0`): the `id` of QEMU's VSERPORT_CHANGE. Only in the live XML. */
  readonly alias: string | undefined
  /** `state` of the live XML's target; "unknown" when libvirt reports none (inactive XML, or QEMU without the event). */
  readonly state: PortLevel
}

export interface DomainInfo {
  readonly name: string
  readonly uuid: string | undefined
  /** `id` attribute of <domain>: present while the domain runs. */
  readonly running: boolean
  /** The VM id of the vdrelay metadata element; undefined when the domain is not the bridge's. */
  readonly vm: string | undefined
  /** Why the metadata element is unusable (a bad id), when there is one. */
  readonly problem: string | undefined
  readonly channels: ReadonlyArray<Channel>
}

/** The namespace URI each prefix stands for at `e`, given the declarations in scope above it. */
const scopeOf = (e: XmlElement, outer: ReadonlyMap<string, string>): Map<string, string> => {
  const inner = new Map(outer)
  for (const [k, v] of Object.entries(e.attrs)) {
    if (k === "xmlns") inner.set("", v)
    else if (k.startsWith("xmlns:")) inner.set(k.slice(6), v)
  }
  return inner
}

/** The metadata element in the vdrelay namespace named `vm`, whatever prefix the domain uses for it. */
const vdrelayElement = (domain: XmlElement): XmlElement | undefined => {
  const metadata = child(domain, "metadata")
  if (metadata === undefined) return undefined
  const scope = scopeOf(metadata, scopeOf(domain, new Map()))
  return metadata.children.find((e) => {
    const colon = e.name.indexOf(":")
    const prefix = colon < 0 ? "" : e.name.slice(0, colon)
    const local = colon < 0 ? e.name : e.name.slice(colon + 1)
    return local === "vm" && scopeOf(e, scope).get(prefix) === VDRELAY_XMLNS
  })
}

const stateOf = (s: string | undefined): PortLevel => (s === "connected" ? "open" : s === "disconnected" ? "closed" : "unknown")

const channelOf = (c: XmlElement): Channel | undefined => {
  const target = child(c, "target")
  if (target?.attrs.type !== "virtio" || target.attrs.name === undefined) return undefined
  const source = child(c, "source")
  return {
    name: target.attrs.name,
    path: c.attrs.type === "unix" ? source?.attrs.path : undefined,
    alias: child(c, "alias")?.attrs.name,
    state: stateOf(target.attrs.state),
  }
}

/** Reads a domain's XML (`virsh dumpxml`). Throws XmlError when it is not XML or not a <domain>. */
export const parseDomain = (xml: string): DomainInfo => {
  const domain = parseXml(xml)
  if (domain.name !== "domain") throw new XmlError(`not a <domain> but <${domain.name}>`)
  const meta = vdrelayElement(domain)
  const id = meta?.attrs.id
  const valid = id !== undefined && NAME_PATTERN.test(id)
  return {
    name: child(domain, "name")?.text.trim() ?? "",
    uuid: child(domain, "uuid")?.text.trim(),
    running: domain.attrs.id !== undefined && domain.attrs.id !== "-1",
    vm: valid ? id : undefined,
    problem: meta === undefined || valid ? undefined : `vdrelay metadata id ${JSON.stringify(id ?? null)} must match ${NAME_PATTERN.source}`,
    channels: childrenNamed(child(domain, "devices"), "channel").flatMap((c) => channelOf(c) ?? []),
  }
}

/** The domain's channel named `name` (the agent port by default). */
export const agentChannel = (d: DomainInfo, name: string = AGENT_CHANNEL): Channel | undefined => d.channels.find((c) => c.name === name)
