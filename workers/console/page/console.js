// vdrelay demo console: everything a web console needs around the guest agent, in plain JavaScript on the
// vdrelay/client SDK (bundled as /console/vdrelay-client.js). Copy what you need; each block stands alone.
import { Cap, ClipboardType, capBits, connect } from "/console/vdrelay-client.js"

const $ = (id) => document.getElementById(id)
const CAP_NAMES = Object.fromEntries(Object.entries(Cap).map(([name, bit]) => [bit, name]))
const NOTICE_TEXT = {
  "dropped-by-policy": "Blocked by the VM's policy",
  "dropped-by-role": "Not allowed for a viewer",
  "dropped-by-disconnect": "Not delivered: the agent disconnected",
  "too-large": "Too large for the relay",
  "agent-not-connected": "The VM's agent is not connected",
  "invalid-message": "The relay refused a malformed message",
  "role-changed": "Your role changed",
  "slow-consumer": "This console fell behind",
  resend: "The relay asked for a message again",
}

// ------------------------------------------------------------------ log and alerts

const log = (text) => {
  const li = document.createElement("li")
  const time = document.createElement("time")
  const now = new Date()
  time.dateTime = now.toISOString()
  time.textContent = now.toLocaleTimeString()
  li.append(time, text)
  $("log").prepend(li)
  while ($("log").children.length > 200) $("log").lastElementChild.remove()
}

const alertBox = (kind, text) => {
  const div = document.createElement("div")
  div.className = `alert ${kind}`
  const span = document.createElement("span")
  span.textContent = text
  const close = document.createElement("button")
  close.type = "button"
  close.textContent = "Dismiss"
  close.addEventListener("click", () => div.remove())
  div.append(span, close)
  $("alerts").append(div)
  log(`${kind}: ${text}`)
}

const status = (id, text, kind = "") => {
  $(id).textContent = text
  $(id).className = `hint ${kind}`
}

// ------------------------------------------------------------------ token (from the URL fragment, never the query)

const params = new URLSearchParams(location.hash.slice(1))
const token = params.get("token")

/** Reads the claims the page needs (vm, role) from the token; the relay verifies the signature, not the page. */
const readClaims = (jwt) => {
  try {
    const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))))
  } catch {
    return undefined
  }
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault()
  const p = new URLSearchParams({ token: $("token-input").value.trim() })
  if ($("token-viewer").checked) p.set("role", "viewer")
  location.hash = p.toString()
  location.reload()
})

// ------------------------------------------------------------------ session

const claims = token ? readClaims(token) : undefined
if (!claims?.vm) {
  $("token-form").hidden = false
  if (token) alertBox("error", "That token cannot be read: paste the console token again.")
  $("link-state").textContent = "no token"
  $("link-state").dataset.state = "closed"
} else {
  start().catch((err) => {
    $("link-state").textContent = "closed"
    $("link-state").dataset.state = "closed"
    alertBox("error", `Could not connect: ${err.detail ?? err.message}. Check that the relay runs and that the token has not expired.`)
  })
}

async function start() {
  const role = params.get("role") ?? (claims.role === "viewer" ? "viewer" : "controller")
  const url = `${location.origin.replace(/^http/, "ws")}/v1/vms/${encodeURIComponent(claims.vm)}/console`
  const session = await connect({ url, token, role, clientName: "vdrelay demo console" })
  globalThis.vdrelaySession = session // for poking at it from the devtools console
  $("console").hidden = false
  log(`connected to ${claims.vm} as ${session.role}`)

  const refresh = () => {
    const controller = session.role === "controller"
    $("link-state").textContent = session.state
    $("link-state").dataset.state = session.state
    $("agent-state").textContent = session.agent.connected ? "connected" : "not connected"
    $("agent-state").dataset.state = session.agent.connected ? "on" : "off"
    $("role").textContent = session.role
    $("role").dataset.state = session.role
    $("take-control").hidden = controller || claims.role !== "controller"
    $("viewer-note").hidden = controller
    $("controls").disabled = !controller || !session.agent.connected || session.state !== "open"
    const caps = session.agent.caps
    const has = (bit) => caps !== null && (caps[bit >>> 5] & (1 << (bit & 31))) !== 0
    $("agent-summary").textContent = !session.agent.connected
      ? "The VM's agent is not connected: controls are disabled until it comes back."
      : caps === null
        ? "Connected; waiting for the agent's capabilities."
        : [
            "Connected.",
            has(Cap.ClipboardByDemand) ? "Clipboard sharing on." : "Clipboard sharing off (policy or agent).",
            has(Cap.MonitorsConfig) ? "Display resolution can be set." : "The agent does not take display settings.",
            has(Cap.FileXferDisabled) || session.policy?.fileTransfer === false ? "File transfer disabled by policy." : "File transfer on.",
          ].join(" ")
    $("caps").replaceChildren(...(caps ? capBits(caps) : []).map((b) => Object.assign(document.createElement("li"), { textContent: CAP_NAMES[b] ?? `bit ${b}` })))
  }
  refresh()

  session.on("state", (s) => (log(`link ${s}`), refresh()))
  let agentWas = session.agent.connected
  session.on("agent", (a) => {
    if (a.connected !== agentWas) log(a.connected ? "agent connected" : "agent disconnected")
    agentWas = a.connected
    refresh()
  })
  session.on("role", (r) => (log(`you are now ${r === "controller" ? "the controller" : "a viewer"}`), refresh()))
  session.on("policy", (p) => !p.fileTransfer && log("policy: file transfer is disabled"))
  session.on("notice", (n) => alertBox("notice", `${NOTICE_TEXT[n.code] ?? n.code}: ${n.detail}`))
  session.on("error", (e) => alertBox("error", e.detail))
  session.on("close", (c) => !c.reconnecting && alertBox("error", `The relay closed the session (${c.code}${c.reason ? `: ${c.reason}` : ""}).`))

  $("take-control").addEventListener("click", () =>
    session.takeControl().then(() => log("took control"), (err) => alertBox("error", `Cannot take control: ${err.detail}`)),
  )

  setUpClipboard(session)
  setUpResolution(session)
  setUpFiles(session)
}

// ------------------------------------------------------------------ clipboard: text both ways, images in

function setUpClipboard(session) {
  const box = $("clipboard")
  let synced = "" // what the VM's clipboard holds as far as we know, so we never echo it back
  let timer

  box.addEventListener("input", () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      const text = box.value
      if (text === synced) return
      synced = text
      session.setClipboardText(text).then(
        () => (status("clipboard-status", "Copied to the VM's clipboard.", "ok"), log(`clipboard → VM (${text.length} characters)`)),
        (err) => status("clipboard-status", `Not copied: ${err.detail}`, "bad"),
      )
    }, 250)
  })

  // The guest copied something: fetch the text (the controller asks; viewers see the answer if policy lets them).
  session.on("clipboard-grab", ({ selection, types }) => {
    if (selection !== 0) return
    log(`the VM's clipboard changed (${types.map((t) => Object.keys(ClipboardType).find((k) => ClipboardType[k] === t) ?? t).join(", ")})`)
    if (session.role !== "controller") return
    if (types.includes(ClipboardType.Utf8Text)) session.requestClipboardText().catch((err) => status("clipboard-status", err.detail, "bad"))
    else if (types.includes(ClipboardType.ImagePng)) session.requestClipboard(ClipboardType.ImagePng).catch(() => {})
  })
  session.on("clipboard", (c) => {
    if (c.selection !== 0) return
    if (c.text !== undefined) {
      synced = c.text
      box.value = c.text
      status("clipboard-status", "Copied from the VM's clipboard.", "ok")
      log(`clipboard ← VM (${c.text.length} characters)`)
    } else if (c.type === ClipboardType.ImagePng && c.data.length > 0) showImage(new Blob([c.data], { type: "image/png" }), "from the VM")
  })

  const showImage = (blob, from) => {
    const img = $("image-preview")
    if (img.src) URL.revokeObjectURL(img.src)
    img.src = URL.createObjectURL(blob)
    img.alt = `Clipboard image ${from}`
    img.hidden = false
  }

  // Images pasted anywhere outside the text box go to the VM as PNG.
  document.addEventListener("paste", (ev) => {
    if (ev.target === box) return
    const file = [...(ev.clipboardData?.files ?? [])].find((f) => f.type === "image/png")
    if (!file) return
    ev.preventDefault()
    showImage(file, "sent to the VM")
    session.setClipboardImage(file).then(
      () => log(`image → VM clipboard (${file.size} bytes)`),
      (err) => alertBox("error", `Image not copied: ${err.detail}`),
    )
  })
}

// ------------------------------------------------------------------ display resolution

function setUpResolution(session) {
  const apply = (width, height) => {
    status("resolution-status", `Asking the agent for ${width}×${height}…`)
    session.setResolution(width, height).then(
      () => (status("resolution-status", `The agent applied ${width}×${height}.`, "ok"), log(`resolution ${width}×${height}: agent replied success`)),
      (err) => status("resolution-status", `Not applied: ${err.detail}`, "bad"),
    )
  }
  $("resolution").addEventListener("submit", (ev) => {
    ev.preventDefault()
    apply(Number($("res-width").value), Number($("res-height").value))
  })
  $("fit").addEventListener("click", () => {
    const width = Math.round(window.innerWidth), height = Math.round(window.innerHeight)
    $("res-width").value = width
    $("res-height").value = height
    apply(width, height)
  })
}

// ------------------------------------------------------------------ file transfer

function setUpFiles(session) {
  const rows = new Map()

  const send = (files) => {
    for (const file of files) {
      const t = session.sendFile(file)
      const li = document.createElement("li")
      li.dataset.status = t.status
      const name = Object.assign(document.createElement("span"), { className: "name", textContent: `${t.name} (${t.size} bytes)` })
      const bar = Object.assign(document.createElement("progress"), { max: Math.max(1, t.size), value: 0 })
      bar.setAttribute("aria-label", `Progress of ${t.name}`)
      const cancel = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Cancel" })
      cancel.addEventListener("click", () => t.cancel())
      const state = Object.assign(document.createElement("span"), { className: "state", textContent: "waiting for the agent…" })
      li.append(name, cancel, bar, state)
      $("transfers").prepend(li)
      rows.set(t.id, { li, bar, state, cancel })
      if (t.active) log(`file ${t.name}: started`)
      if (!t.active) update({ id: t.id, name: t.name, size: t.size, sent: 0, status: t.status, error: t.error }) // refused at once
    }
  }

  const update = (e) => {
    const row = rows.get(e.id)
    if (!row) return
    row.bar.value = e.size === 0 ? (e.status === "done" ? 1 : 0) : e.sent
    const pct = e.size === 0 ? (e.status === "done" ? 100 : 0) : Math.floor((100 * e.sent) / e.size)
    if (e.status !== undefined) row.li.dataset.status = e.status
    const s = row.li.dataset.status
    row.state.textContent =
      s === "done" ? "100 % — in the VM's transfer folder"
      : s === "cancelled" ? `cancelled${e.error ? `: ${e.error.detail}` : ""}`
      : s === "failed" ? `failed: ${e.error?.detail ?? "unknown error"}`
      : s === "waiting" ? "waiting for the agent…"
      : `${pct} %`
    if (s === "done" || s === "failed" || s === "cancelled") row.cancel.disabled = true
  }
  session.on("file-progress", update)
  session.on("file-status", (e) => {
    update(e)
    if (e.status === "done") log(`file ${e.name}: done`)
    if (e.status === "failed") alertBox(e.error?.reason === "disabled" ? "notice" : "error", `${e.name}: ${e.error?.detail}`)
  })

  const zone = $("drop-zone")
  zone.addEventListener("dragover", (ev) => (ev.preventDefault(), zone.classList.add("over")))
  zone.addEventListener("dragleave", () => zone.classList.remove("over"))
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault()
    zone.classList.remove("over")
    if ($("controls").disabled) return alertBox("notice", "Files can only be sent by the controller while the agent is connected.")
    send([...(ev.dataTransfer?.files ?? [])])
  })
  $("file-input").addEventListener("change", (ev) => {
    send([...ev.target.files])
    ev.target.value = ""
  })
}
