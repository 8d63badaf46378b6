// Reading libvirt's domain XML (`virsh dumpxml`, formatdomain.html): the domain's name and state, the vdrelay
// metadata element that marks a domain as the bridge's, and its virtio channels (socket path, alias and the live
// `state` libvirt keeps from QEMU's VSERPORT_CHANGE). A small non-validating XML reader: libvirt writes well-formed,
// entity-escaped XML without DTDs, so elements, attributes, comments, processing instructions, CDATA and the five
// predefined plus numeric entities are all there is to handle.

export interface XmlElement {
  readonly name: string
  readonly attrs: Readonly<Record<string, string>>
  readonly children: ReadonlyArray<XmlElement>
  readonly text: string
}

export class XmlError extends Error {
  readonly reason = "XmlMalformed" as const
}

const ENTITIES: Readonly<Record<string, string>> = { lt: "<", gt: ">", amp: "&", apos: "'", quot: '"' }

const decode = (s: string): string =>
  s.includes("&")
    ? s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, e: string) => {
        if (e.startsWith("#x")) return String.fromCodePoint(Number.parseInt(e.slice(2), 16))
        if (e.startsWith("#")) return String.fromCodePoint(Number.parseInt(e.slice(1), 10))
        return ENTITIES[e] ?? whole
      })
    : s

const ATTR = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g

interface Open {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

/** Parses one XML document into its root element. Throws XmlError on input that is not well-formed enough to read. */
export const parseXml = (xml: string): XmlElement => {
  const stack: Open[] = []
  let root: XmlElement | undefined
  let at = 0
  while (at < xml.length) {
    const lt = xml.indexOf("<", at)
    const text = xml.slice(at, lt < 0 ? xml.length : lt)
    if (stack.length > 0 && text.trim() !== "") stack[stack.length - 1]!.text += decode(text)
    if (lt < 0) break
    if (xml.startsWith("<!--", lt)) at = skipTo(xml, "-->", lt)
    else if (xml.startsWith("<?", lt)) at = skipTo(xml, "?>", lt)
    else if (xml.startsWith("<![CDATA[", lt)) {
      const end = skipTo(xml, "]]>", lt)
      if (stack.length > 0) stack[stack.length - 1]!.text += xml.slice(lt + 9, end - 3)
      at = end
    } else if (xml.startsWith("<!", lt)) at = skipTo(xml, ">", lt)
    else if (xml[lt + 1] === "/") {
      const gt = skipTo(xml, ">", lt)
      const name = xml.slice(lt + 2, gt - 1).trim()
      const open = stack.pop()
      if (open === undefined || open.name !== name) throw new XmlError(`</${name}> at ${lt} closes ${open === undefined ? "nothing" : `<${open.name}>`}`)
      const done: XmlElement = { name: open.name, attrs: open.attrs, children: open.children, text: open.text }
      if (stack.length > 0) stack[stack.length - 1]!.children.push(done)
      else root ??= done
      at = gt
    } else {
      const gt = tagEnd(xml, lt)
      const selfClosing = xml[gt - 2] === "/"
      const body = xml.slice(lt + 1, selfClosing ? gt - 2 : gt - 1)
      const name = /^[^\s/>]+/.exec(body)?.[0]
      if (name === undefined) throw new XmlError(`a tag without a name at ${lt}`)
      const attrs: Record<string, string> = {}
      for (const m of body.slice(name.length).matchAll(ATTR)) attrs[m[1]!] = decode(m[2] ?? m[3] ?? "")
      const open: Open = { name, attrs, children: [], text: "" }
      if (selfClosing) {
        if (stack.length > 0) stack[stack.length - 1]!.children.push(open)
        else root ??= open
      } else stack.push(open)
      at = gt
    }
  }
  if (stack.length > 0) throw new XmlError(`<${stack[stack.length - 1]!.name}> is never closed`)
  if (root === undefined) throw new XmlError("no element")
  return root
}

const skipTo = (xml: string, end: string, from: number): number => {
  const i = xml.indexOf(end, from)
  if (i < 0) throw new XmlError(`unterminated markup at ${from}`)
  return i + end.length
}

/** The index just past the `>` that ends the tag at `from` (a `>` inside a quoted attribute value does not). */
const tagEnd = (xml: string, from: number): number => {
  let quote: string | undefined
  for (let i = from + 1; i < xml.length; i++) {
    const c = xml[i]
    if (quote !== undefined) {
      if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === ">") return i + 1
  }
  throw new XmlError(`unterminated tag at ${from}`)
}

export const child = (e: XmlElement | undefined, name: string): XmlElement | undefined => e?.children.find((c) => c.name === name)
export const childrenNamed = (e: XmlElement | undefined, name: string): ReadonlyArray<XmlElement> => e?.children.filter((c) => c.name === name) ?? []
