// Every cap the session actor keeps, with defaults that make up its per-session memory budget (DESIGN.md invariant 3).
import { MAX_MONITORS } from "../protocol/constants.ts"

export interface Limits {
  /** Agent bytes the bridge may send beyond the relay's last acknowledgement (`welcome.window`). */
  readonly agentWindow: number
  /** Bytes of agent message data queued for one client beyond its credit; a viewer over it is closed. */
  readonly clientQueueBytes: number
  /** Client→relay credit granted in `welcome` (bytes of message data the client may have unacknowledged). */
  readonly clientCredit: number
  /** Relay→client credit assumed before the client sends its first `credit` frame. */
  readonly initialClientCredit: number
  /**
   * Client messages up to this payload size are stored whole in the relay, validated, then written; larger ones
   * (only CLIPBOARD and FILE_XFER_DATA may be larger) are streamed to the bridge as they arrive, with `abort`.
   */
  readonly storeAndForwardBytes: number
  /** Largest `data` piece of one `msg`/`more` frame sent to a client. */
  readonly clientFragmentBytes: number
  /** Largest piece of guest-bound bytes in one bridge `write` frame (a multiple of whole chunks when possible). */
  readonly bridgeWriteBytes: number
  /** Monitors accepted in a client MONITORS_CONFIG. */
  readonly maxMonitors: number
  /**
   * Guest-bound bytes the bridge may hold unwritten (beyond the message being streamed) before the relay stops giving
   * the controller its credit back: how a slow guest back-pressures the console.
   */
  readonly guestWindow: number
  /** Largest agent message or chunk parsed at all (the policy's maxMessageBytes decides what is relayed). */
  readonly agentMaxMessage: number
  /** How long a lost bridge tunnel is treated as a blip (the agent kept as connected) before clients are told. */
  readonly bridgeGraceMs: number
  /**
   * How long a client seat lost to a network error stays resumable (`hello.resume`), and how long a departed
   * controller's CLIENT_DISCONNECTED is held back so that a blip does not make the agent release its clipboard.
   */
  readonly clientGraceMs: number
  /** Resumable seats remembered (departed within the grace, plus live ones in PersistedState); the oldest go first. */
  readonly resumeSeats: number
  /** Answered message ids remembered per seat, so a resumed console's resends are not written twice. */
  readonly seatAnswers: number
}

/**
 * Defaults. Per-session memory held by the actor: at most `agentWindow` (2 MiB) of agent bytes unacknowledged (the
 * frames queued for every client are views of those same bytes, so N clients share them), plus one stored client
 * message (66 KiB), plus frame bookkeeping (≤ 32 seats × 256 answered ids for resume): about 2.2 MiB. Only while the
 * bridge tunnel is away (its grace, 10 s) does it also hold guest-bound bytes: up to `clientCredit` + one stored message
 * (held.ts heldCap, 4.07 MiB), so about 7 MiB at worst during a blip. Guest-bound bulk data is otherwise streamed to
 * the bridge, whose buffer beyond the message it assembles is bounded by `guestWindow` + `clientCredit` (5 MiB; the
 * bridge's own `guestBufferBytes` default leaves it 8 MiB).
 */
export const defaultLimits: Limits = {
  // 2 MiB, acked every quarter (512 KiB): at 1 MiB the bridge stalled on each ack's persisted write, and a 10 MiB
  // agent→client clipboard took ~1.3× as long (docs/benchmarks.md).
  agentWindow: 2 * 1024 * 1024,
  clientQueueBytes: 768 * 1024,
  // 4 MiB: over a link with round trip T a console sends at most credit ÷ T (1 MiB gave 20 MiB/s at 50 ms, 0.22 of the
  // agent's own speed over that link); at 4 MiB the relay's own throughput is the bound there (docs/benchmarks.md).
  clientCredit: 4 * 1024 * 1024,
  initialClientCredit: 256 * 1024,
  // Above FILE_XFER_DATA's 12 + 65536 and FILE_XFER_START's 4 + 16384: only CLIPBOARD is ever streamed.
  storeAndForwardBytes: 66 * 1024,
  // One client frame per bridge frame (256 KiB), and each 128 chunks of a client message one bridge write: the relay's
  // per-frame cost, not its per-byte cost, bounds a session's throughput and its Durable Object message rate.
  clientFragmentBytes: 256 * 1024,
  bridgeWriteBytes: 128 * 2056,
  maxMonitors: MAX_MONITORS,
  guestWindow: 1024 * 1024,
  agentMaxMessage: 1024 * 1024 * 1024,
  bridgeGraceMs: 10_000,
  clientGraceMs: 10_000,
  resumeSeats: 32,
  seatAnswers: 256,
}
