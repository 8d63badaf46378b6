// Every constant of spice/vd_agent.h that a relay needs (spec §1.4, §2, §3), with the spec's names.

export const VD_AGENT_PROTOCOL = 1
/** Largest chunk payload the Linux agent accepts host→guest, and the largest client AGENT_DATA piece. */
export const VD_AGENT_MAX_DATA_SIZE = 2048
export const CHUNK_HEADER_SIZE = 8
export const MESSAGE_HEADER_SIZE = 20

/** VDIChunkHeader.port. Towards the agent it names the sender; from the agent, the receiver. */
export const Port = {
  Client: 1,
  Server: 2,
} as const
export type Port = (typeof Port)[keyof typeof Port]
/** Sentinel (spice-protocol db3961d): ports are < VDP_END_PORT. */
export const VDP_END_PORT = 3

export const MessageType = {
  MouseState: 1,
  MonitorsConfig: 2,
  Reply: 3,
  Clipboard: 4,
  DisplayConfig: 5,
  AnnounceCapabilities: 6,
  ClipboardGrab: 7,
  ClipboardRequest: 8,
  ClipboardRelease: 9,
  FileXferStart: 10,
  FileXferStatus: 11,
  FileXferData: 12,
  ClientDisconnected: 13,
  MaxClipboard: 14,
  AudioVolumeSync: 15,
  GraphicsDeviceInfo: 16,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]
export const VD_AGENT_END_MESSAGE = 17

export const messageTypeName = (type: number): string =>
  (Object.entries(MessageType).find(([, v]) => v === type)?.[0]) ?? `Unknown(${type})`

export const Cap = {
  MouseState: 0,
  MonitorsConfig: 1,
  Reply: 2,
  Clipboard: 3,
  DisplayConfig: 4,
  ClipboardByDemand: 5,
  ClipboardSelection: 6,
  SparseMonitorsConfig: 7,
  GuestLineendLf: 8,
  GuestLineendCrlf: 9,
  MaxClipboard: 10,
  AudioVolumeSync: 11,
  MonitorsConfigPosition: 12,
  FileXferDisabled: 13,
  FileXferDetailedErrors: 14,
  GraphicsDeviceInfo: 15,
  ClipboardNoReleaseOnRegrab: 16,
  ClipboardGrabSerial: 17,
} as const
export type Cap = (typeof Cap)[keyof typeof Cap]
export const VD_AGENT_END_CAP = 18

export const ClipboardType = {
  None: 0,
  Utf8Text: 1,
  ImagePng: 2,
  ImageBmp: 3,
  ImageTiff: 4,
  ImageJpg: 5,
  FileList: 6,
} as const
export type ClipboardType = (typeof ClipboardType)[keyof typeof ClipboardType]

export const Selection = { Clipboard: 0, Primary: 1, Secondary: 2 } as const
export type Selection = (typeof Selection)[keyof typeof Selection]

export const FileXferResult = {
  CanSendData: 0,
  Cancelled: 1,
  Error: 2,
  Success: 3,
  NotEnoughSpace: 4,
  SessionLocked: 5,
  VdagentNotConnected: 6,
  Disabled: 7,
} as const
export type FileXferResult = (typeof FileXferResult)[keyof typeof FileXferResult]

/** VDAgentFileXferStatusError.error_type */
export const FileXferErrorType = { GlibIo: 0 } as const

export const ReplyError = { Success: 1, Error: 2 } as const

export const MouseButton = {
  Left: 1 << 1,
  Middle: 1 << 2,
  Right: 1 << 3,
  WheelUp: 1 << 4,
  WheelDown: 1 << 5,
  Side: 1 << 6,
  Extra: 1 << 7,
} as const

export const MonitorsConfigFlag = { UsePos: 1, PhysicalSize: 2 } as const
export const DisplayConfigFlag = {
  DisableWallpaper: 1,
  DisableFontSmooth: 2,
  DisableAnimation: 4,
  SetColorDepth: 8,
} as const

/** spice-gtk's MAX_DISPLAY; vdrelay refuses client MONITORS_CONFIG with more monitors (CVE-2017-7506 class). */
export const MAX_MONITORS = 16
/** Message size caps kept by file transfer chunks from spice-gtk: 32 × 2048 file bytes per DATA. */
export const FILE_XFER_DATA_BLOCK = 65536
