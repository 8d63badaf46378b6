// Structural equality for decoded values (plain objects, arrays, Uint8Array views), with the first difference's path.

export const difference = (a: unknown, b: unknown, path = "$"): string | undefined => {
  // Numbers compare by value (-0 and 0 are the same count, position or epoch), NaN by identity.
  if (Object.is(a, b) || (typeof a === "number" && a === b)) return undefined
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return `${path}: bytes differ in length`
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `${path}[${i}]: ${a[i]} vs ${b[i]}`
    return undefined
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return `${path}: ${String(a)} vs ${String(b)}`
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs object`
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined).sort()
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined).sort()
  if (ka.join() !== kb.join()) return `${path}: keys ${ka.join()} vs ${kb.join()}`
  for (const k of ka) {
    const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)
    if (d !== undefined) return d
  }
  return undefined
}

const bucket = (n: number): string => (n === 0 ? "0" : n < 0 ? "neg" : n === 1 ? "1" : n < 5 ? "few" : n <= 0xffff ? "mid" : n <= 0xffff_ffff ? "u32" : "big")

/**
 * A coarse signature of a decoded value's shape (keys present, array lengths and numbers bucketed): as a fuzz feature it
 * keeps inputs that decode to a new kind of value, not just to a new outcome tag.
 */
export const shapeOf = (v: unknown, numbers = true, depth = 0): string => {
  if (v instanceof Uint8Array) return `b${bucket(v.length)}`
  if (Array.isArray(v)) return `[${bucket(v.length)}${v.length > 0 && depth < 2 ? shapeOf(v[0], numbers, depth + 1) : ""}]`
  if (typeof v === "number") return numbers ? bucket(v) : "n"
  if (typeof v === "string") return `s${bucket(v.length)}`
  if (typeof v === "boolean" || v === null || v === undefined) return String(v)
  if (typeof v === "object" && depth < 3) {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${k}:${shapeOf((v as Record<string, unknown>)[k], numbers, depth + 1)}`)
      .join(",")}}`
  }
  return "?"
}
