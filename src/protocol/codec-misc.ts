// Codecs for VDAgentReply, VDAgentAnnounceCapabilities, CLIENT_DISCONNECTED, VDAgentMaxClipboard and
// VDAgentAudioVolumeSync (spec §2), with spice-common `agent_check_message` size rules.
import { type Parsed, invalid, parsed } from "./decoded.ts"
import type { AnnounceCapabilities, AudioVolumeSync, ClientDisconnected, MaxClipboard, Reply } from "./messages.ts"
import { Writer, badSize, i32At, u16At, u32At } from "./wire.ts"

export const decodeReply = (p: Uint8Array): Parsed<Reply> =>
  p.length !== 8 ? badSize("REPLY", p.length, "= 8") : parsed({ _tag: "Reply", type: u32At(p, 0), error: u32At(p, 4) })

export const encodeReply = (m: Reply): Parsed<Uint8Array> => new Writer(8).u32(m.type, "type").u32(m.error, "error").result()

/** n = (size − 4) / 4 caps words; a ragged tail is ignored, as every receiver does. */
export const decodeAnnounceCapabilities = (p: Uint8Array): Parsed<AnnounceCapabilities> => {
  if (p.length < 4) return badSize("ANNOUNCE_CAPABILITIES", p.length, "≥ 4")
  const caps: number[] = []
  for (let at = 4; at + 4 <= p.length; at += 4) caps.push(u32At(p, at))
  return parsed({ _tag: "AnnounceCapabilities", request: u32At(p, 0) !== 0, caps })
}

export const encodeAnnounceCapabilities = (m: AnnounceCapabilities): Parsed<Uint8Array> => {
  const w = new Writer(4 + 4 * m.caps.length).u32(m.request ? 1 : 0, "request")
  for (const word of m.caps) w.u32(word, "caps word")
  return w.result()
}

const CLIENT_DISCONNECTED: ClientDisconnected = { _tag: "ClientDisconnected" }
export const decodeClientDisconnected = (p: Uint8Array): Parsed<ClientDisconnected> =>
  p.length !== 0 ? badSize("CLIENT_DISCONNECTED", p.length, "= 0") : parsed(CLIENT_DISCONNECTED)

export const encodeClientDisconnected = (_: ClientDisconnected): Parsed<Uint8Array> => parsed(new Uint8Array(0))

export const decodeMaxClipboard = (p: Uint8Array): Parsed<MaxClipboard> =>
  p.length !== 4 ? badSize("MAX_CLIPBOARD", p.length, "= 4") : parsed({ _tag: "MaxClipboard", max: i32At(p, 0) })

export const encodeMaxClipboard = (m: MaxClipboard): Parsed<Uint8Array> => new Writer(4).i32(m.max, "max").result()

/** u8 is_playback, u8 mute, u8 nchannels, u16 volume[nchannels]: the channels must fit in the size. */
export const decodeAudioVolumeSync = (p: Uint8Array): Parsed<AudioVolumeSync> => {
  if (p.length < 3) return badSize("AUDIO_VOLUME_SYNC", p.length, "≥ 3")
  const n = p[2]!
  if (3 + 2 * n > p.length) return invalid("Truncated", 2, `AUDIO_VOLUME_SYNC declares ${n} channels in ${p.length} bytes`)
  const volume: number[] = []
  for (let i = 0; i < n; i++) volume.push(u16At(p, 3 + 2 * i))
  return parsed({ _tag: "AudioVolumeSync", isPlayback: p[0] !== 0, mute: p[1] !== 0, volume })
}

export const encodeAudioVolumeSync = (m: AudioVolumeSync): Parsed<Uint8Array> => {
  const w = new Writer(3 + 2 * m.volume.length).u8(m.isPlayback ? 1 : 0, "is_playback").u8(m.mute ? 1 : 0, "mute")
  w.u8(m.volume.length, "nchannels")
  for (const v of m.volume) w.u16(v, "volume")
  return w.result()
}
