// Values observed from the real agent that tests, tools and benchmarks all stand in for or check against; one place,
// so a change of reference agent is one edit.

/**
 * The first (and only) caps word spice-vdagent 0.22.1 (Debian 12) announces (spec §11): mouse state, monitors config,
 * reply, clipboard by demand and selection, sparse monitors config, guest line-end LF, max clipboard, audio volume
 * sync, graphics device info, no clipboard release on regrab, clipboard grab serial.
 */
export const SPICE_VDAGENT_CAPS = 0x00038de7
