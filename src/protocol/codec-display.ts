// Codecs for VDAgentMouseState, VDAgentMonitorsConfig, VDAgentDisplayConfig and VDAgentGraphicsDeviceInfo (spec §2),
// with spice-common `agent_check_message` size rules.
import { MonitorsConfigFlag } from "./constants.ts"
import { type Parsed, invalid, parsed } from "./decoded.ts"
import type { DeviceDisplayInfo, DisplayConfig, GraphicsDeviceInfo, MonitorConfig, MonitorMm, MonitorsConfig, MouseState } from "./messages.ts"
import { Writer, badSize, decodeUtf8, encodeUtf8, i32At, u16At, u32At } from "./wire.ts"

export const MOUSE_STATE_SIZE = 13
const MON_CONFIG_SIZE = 20
const MON_MM_SIZE = 4
const DEVICE_INFO_HEAD = 16

export const decodeMouseState = (p: Uint8Array): Parsed<MouseState> => {
  if (p.length !== MOUSE_STATE_SIZE) return badSize("MOUSE_STATE", p.length, "= 13")
  return parsed({ _tag: "MouseState", x: u32At(p, 0), y: u32At(p, 4), buttons: u32At(p, 8), displayId: p[12]! })
}

export const encodeMouseState = (m: MouseState): Parsed<Uint8Array> =>
  new Writer(MOUSE_STATE_SIZE).u32(m.x, "x").u32(m.y, "y").u32(m.buttons, "buttons").u8(m.displayId, "displayId").result()

/**
 * Size 8 + num × (20 [+ 4 with PHYSICAL_SIZE]) at least; spice-common ignores trailing bytes (VDD 0.22.1 alone wants
 * exactly 8 + 20n, which makes it drop configs with the physical-size array). `maxMonitors` bounds client input.
 */
export const decodeMonitorsConfig = (p: Uint8Array, maxMonitors?: number): Parsed<MonitorsConfig> => {
  if (p.length < 8) return badSize("MONITORS_CONFIG", p.length, "≥ 8")
  const num = u32At(p, 0)
  const flags = u32At(p, 4)
  const withMm = (flags & MonitorsConfigFlag.PhysicalSize) !== 0
  const fits = Math.floor((p.length - 8) / (MON_CONFIG_SIZE + (withMm ? MON_MM_SIZE : 0)))
  if (num > fits) return invalid("Truncated", 0, `MONITORS_CONFIG declares ${num} monitors, ${p.length} bytes hold ${fits}`)
  if (maxMonitors !== undefined && num > maxMonitors)
    return invalid("TooManyMonitors", 0, `MONITORS_CONFIG declares ${num} monitors, at most ${maxMonitors} accepted`)
  const monitors: MonitorConfig[] = []
  for (let i = 0, at = 8; i < num; i++, at += MON_CONFIG_SIZE)
    monitors.push({ height: u32At(p, at), width: u32At(p, at + 4), depth: u32At(p, at + 8), x: i32At(p, at + 12), y: i32At(p, at + 16) })
  if (!withMm) return parsed({ _tag: "MonitorsConfig", flags, monitors })
  const physicalSize: MonitorMm[] = []
  for (let i = 0, at = 8 + num * MON_CONFIG_SIZE; i < num; i++, at += MON_MM_SIZE)
    physicalSize.push({ height: u16At(p, at), width: u16At(p, at + 2) })
  return parsed({ _tag: "MonitorsConfig", flags, monitors, physicalSize })
}

export const encodeMonitorsConfig = (m: MonitorsConfig): Parsed<Uint8Array> => {
  const withMm = (m.flags & MonitorsConfigFlag.PhysicalSize) !== 0
  const n = m.monitors.length
  const w = new Writer(8 + n * MON_CONFIG_SIZE + (withMm ? n * MON_MM_SIZE : 0))
  if (withMm !== (m.physicalSize !== undefined) || (m.physicalSize !== undefined && m.physicalSize.length !== n))
    return invalid("BadField", 0, "physicalSize must be present, one per monitor, exactly when flags has PHYSICAL_SIZE")
  w.u32(n, "num_of_monitors").u32(m.flags, "flags")
  for (const mon of m.monitors) w.u32(mon.height, "height").u32(mon.width, "width").u32(mon.depth, "depth").i32(mon.x, "x").i32(mon.y, "y")
  for (const mm of m.physicalSize ?? []) w.u16(mm.height, "mm height").u16(mm.width, "mm width")
  return w.result()
}

export const decodeDisplayConfig = (p: Uint8Array): Parsed<DisplayConfig> =>
  p.length !== 8 ? badSize("DISPLAY_CONFIG", p.length, "= 8") : parsed({ _tag: "DisplayConfig", flags: u32At(p, 0), depth: u32At(p, 4) })

export const encodeDisplayConfig = (m: DisplayConfig): Parsed<Uint8Array> => new Writer(8).u32(m.flags, "flags").u32(m.depth, "depth").result()

/** Every entry must fit and have device_address_len ≠ 0; like spice-common, the address ends at its last byte. */
export const decodeGraphicsDeviceInfo = (p: Uint8Array): Parsed<GraphicsDeviceInfo> => {
  if (p.length < 4) return badSize("GRAPHICS_DEVICE_INFO", p.length, "≥ 4")
  const count = u32At(p, 0)
  const devices: DeviceDisplayInfo[] = []
  let at = 4
  for (let i = 0; i < count; i++) {
    if (p.length - at < DEVICE_INFO_HEAD) return invalid("Truncated", at, `GRAPHICS_DEVICE_INFO entry ${i} of ${count} does not fit`)
    const len = u32At(p, at + 12)
    if (len === 0) return invalid("BadField", at + 12, `GRAPHICS_DEVICE_INFO entry ${i} has device_address_len 0`)
    if (p.length - at - DEVICE_INFO_HEAD < len) return invalid("Truncated", at, `GRAPHICS_DEVICE_INFO entry ${i} address does not fit`)
    const raw = p.subarray(at + DEVICE_INFO_HEAD, at + DEVICE_INFO_HEAD + len - 1)
    const nul = raw.indexOf(0)
    const deviceAddress = decodeUtf8(nul < 0 ? raw : raw.subarray(0, nul))
    if (deviceAddress === undefined) return invalid("BadField", at + DEVICE_INFO_HEAD, `GRAPHICS_DEVICE_INFO entry ${i} address is not UTF-8`)
    devices.push({ channelId: u32At(p, at), monitorId: u32At(p, at + 4), deviceDisplayId: u32At(p, at + 8), deviceAddress })
    at += DEVICE_INFO_HEAD + len
  }
  return parsed({ _tag: "GraphicsDeviceInfo", devices })
}

export const encodeGraphicsDeviceInfo = (m: GraphicsDeviceInfo): Parsed<Uint8Array> => {
  const addresses = m.devices.map((d) => encodeUtf8(d.deviceAddress))
  const w = new Writer(4 + addresses.reduce((n, a) => n + DEVICE_INFO_HEAD + a.length + 1, 0))
  w.u32(m.devices.length, "count")
  m.devices.forEach((d, i) => {
    const a = addresses[i]!
    if (a.includes(0)) w.fail("BadField", `device ${i} address contains NUL`)
    w.u32(d.channelId, "channelId").u32(d.monitorId, "monitorId").u32(d.deviceDisplayId, "deviceDisplayId").u32(a.length + 1, "len").bytes(a).u8(0, "NUL")
  })
  return w.result()
}
