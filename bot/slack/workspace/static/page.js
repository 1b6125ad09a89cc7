// The local Slack workspace's page: plain JS, no build step. It long-polls /ui/state and
// re-renders; every element a browser test needs has a data-testid (and data-* ids).
"use strict";

const EMOJI = {
  "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎", mag: "🔍", eyes: "👀",
  white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️", rotating_light: "🚨",
  red_circle: "🔴", large_green_circle: "🟢", large_yellow_circle: "🟡", fire: "🔥",
  tada: "🎉", hourglass: "⌛", hourglass_flowing_sand: "⏳", memo: "📝", link: "🔗",
  bar_chart: "📊", chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉",
  wrench: "🔧", bug: "🐛", robot_face: "🤖", thinking_face: "🤔", bulb: "💡", clipboard: "📋",
  arrow_right: "➡️", information_source: "ℹ️", question: "❓", lock: "🔒", package: "📦",
  card_file_box: "🗃️", file_folder: "📁", page_facing_up: "📄", gear: "⚙️", sparkles: "✨",
  mag_right: "🔎", no_entry: "⛔", heavy_plus_sign: "➕", speech_balloon: "💬",
};
const PICKER = ["mag", "white_check_mark", "+1", "-1", "eyes", "tada"];
const TASK_ICON = { pending: "○", in_progress: "◐", complete: "●", error: "✕" };

const ui = {
  state: null,
  user: localStorage.getItem("sleuth-workspace-user") || "",
  channel: "",
  thread: null,
  highlight: null,
  version: -1,
  picker: null,
};

// ---- text ---------------------------------------------------------------------------

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function unescapeSlack(s) {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}
function safeUrl(url) {
  return /^(https?:|mailto:|\/)/i.test(url) ? url : "#";
}
function emoji(name) {
  return EMOJI[name] ? `<span class="emoji" title=":${esc(name)}:">${EMOJI[name]}</span>` : `:${esc(name)}:`;
}
function userName(id) {
  const u = (ui.state?.users || []).find((x) => x.id === id);
  if (id === "USLACKBOT") return "Slackbot";
  return u ? (u.is_bot ? "Sleuth" : u.real_name) : id;
}
function channelName(id) {
  const c = (ui.state?.channels || []).find((x) => x.id === id);
  return c ? c.name : id;
}

// Slack's <…> references: users, channels, links, special mentions.
function reference(inner) {
  const [target, label] = inner.split("|");
  if (target.startsWith("@")) return `<span class="mention" data-user="${esc(target.slice(1))}">@${esc(userName(target.slice(1)))}</span>`;
  if (target.startsWith("#")) return `<span class="mention">#${esc(label || channelName(target.slice(1)))}</span>`;
  if (target.startsWith("!")) return `<span class="mention">@${esc(target.slice(1).split("^")[0])}</span>`;
  return `<a href="${esc(safeUrl(target))}" target="_blank" rel="noopener">${esc(label || target)}</a>`;
}

function inlineMrkdwn(s) {
  // s is already HTML-escaped; code spans were taken out before.
  return s
    .replace(/(^|[\s(])\*([^*\n]+)\*(?=[\s).,!?:;]|$)/g, "$1<b>$2</b>")
    .replace(/(^|[\s(])_([^_\n]+)_(?=[\s).,!?:;]|$)/g, "$1<i>$2</i>")
    .replace(/(^|[\s(])~([^~\n]+)~(?=[\s).,!?:;]|$)/g, "$1<s>$2</s>")
    .replace(/:([a-z0-9_+-]+):/g, (m, n) => emoji(n));
}

function mrkdwn(text) {
  const out = [];
  const parts = String(text ?? "").split(/```/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) { out.push(`<pre>${esc(unescapeSlack(part.replace(/^\n/, "")))}</pre>`); return; }
    const lines = part.split("\n").map((line) => {
      const quote = /^&gt;\s?/.test(line) || /^>\s?/.test(line);
      const body = line.replace(/^(&gt;|>)\s?/, "");
      const html = body.split(/(<[^<>]+>|`[^`]+`)/).map((seg) => {
        if (/^<[^<>]+>$/.test(seg)) return reference(seg.slice(1, -1));
        if (/^`[^`]+`$/.test(seg)) return `<code>${esc(unescapeSlack(seg.slice(1, -1)))}</code>`;
        return inlineMrkdwn(esc(unescapeSlack(seg)));
      }).join("");
      return quote ? `<blockquote>${html}</blockquote>` : html;
    });
    out.push(lines.join("<br>").replace(/<\/blockquote><br><blockquote>/g, "<br>"));
  });
  return out.join("");
}

// Standard markdown (markdown blocks, streamed text): headings, lists, code, links, emphasis.
function markdown(text) {
  const out = [];
  const blocks = String(text ?? "").split(/```/);
  blocks.forEach((part, i) => {
    if (i % 2 === 1) { out.push(`<pre>${esc(part.replace(/^[a-z]*\n/, ""))}</pre>`); return; }
    let list = null;
    const flush = () => { if (list) { out.push(`</${list}>`); list = null; } };
    for (const line of part.split("\n")) {
      const h = line.match(/^(#{1,6})\s+(.*)$/);
      const ul = line.match(/^\s*[-*]\s+(.*)$/);
      const ol = line.match(/^\s*\d+[.)]\s+(.*)$/);
      if (h) { flush(); out.push(`<div class="md-h${h[1].length}"><b>${mdInline(h[2])}</b></div>`); }
      else if (ul || ol) {
        const kind = ul ? "ul" : "ol";
        if (list !== kind) { flush(); out.push(`<${kind}>`); list = kind; }
        out.push(`<li>${mdInline((ul || ol)[1])}</li>`);
      } else if (/^>\s?/.test(line)) { flush(); out.push(`<blockquote>${mdInline(line.replace(/^>\s?/, ""))}</blockquote>`); }
      else if (line.trim()) { flush(); out.push(`<div>${mdInline(line)}</div>`); }
      else { flush(); }
    }
    flush();
  });
  return out.join("");
}
function mdInline(s) {
  return s.split(/(`[^`]+`)/).map((seg) => {
    if (/^`[^`]+`$/.test(seg)) return `<code>${esc(seg.slice(1, -1))}</code>`;
    return esc(seg)
      .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (m, t, u) => `<a href="${safeUrl(u)}" target="_blank" rel="noopener">${t}</a>`)
      .replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>")
      .replace(/(^|\W)\*([^*]+)\*(?=\W|$)/g, "$1<i>$2</i>")
      .replace(/(^|\W)_([^_]+)_(?=\W|$)/g, "$1<i>$2</i>")
      .replace(/~~([^~]+)~~/g, "<s>$1</s>")
      .replace(/:([a-z0-9_+-]+):/g, (m, n) => emoji(n));
  }).join("");
}

function textObject(t) {
  if (!t) return "";
  if (typeof t === "string") return mrkdwn(t);
  return t.type === "mrkdwn" ? mrkdwn(t.text) : esc(t.text).replace(/:([a-z0-9_+-]+):/g, (m, n) => (t.emoji === false ? m : emoji(n)));
}

// ---- Block Kit ---------------------------------------------------------------------------

function attrs(obj) {
  return Object.entries(obj).filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => ` ${k}="${esc(v)}"`).join("");
}

function element(el, block, where) {
  const ids = { "data-action-id": el.action_id, "data-block-id": block.block_id, ...where };
  if (el.type === "button") {
    return `<button type="button" class="btn ${esc(el.style || "")}" data-testid="button"${attrs(ids)}${attrs({ "data-value": el.value, "data-url": el.url })}>${textObject(el.text)}</button>`;
  }
  if (el.type === "static_select" || el.type === "overflow" || el.type === "radio_buttons") {
    const opts = (el.options || []).map((o) => `<option value="${esc(o.value)}">${esc(o.text?.text)}</option>`).join("");
    const ph = el.placeholder ? `<option value="" disabled selected>${esc(el.placeholder.text)}</option>` : `<option value="" disabled selected>…</option>`;
    return `<select class="select" data-testid="select-${esc(el.action_id)}"${attrs(ids)}>${ph}${opts}</select>`;
  }
  if (el.type === "image") return `<img alt="${esc(el.alt_text)}" src="${esc(safeUrl(el.image_url || ""))}">`;
  if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${textObject(el)}</span>`;
  return `<span class="unsupported">[${esc(el.type)}]</span>`;
}

function richElements(elements) {
  return (elements || []).map((e) => {
    if (e.type === "text") {
      let h = esc(e.text).replace(/\n/g, "<br>");
      const s = e.style || {};
      if (s.code) h = `<code>${h}</code>`;
      if (s.bold) h = `<b>${h}</b>`;
      if (s.italic) h = `<i>${h}</i>`;
      if (s.strike) h = `<s>${h}</s>`;
      return h;
    }
    if (e.type === "user") return reference("@" + e.user_id);
    if (e.type === "channel") return reference("#" + e.channel_id);
    if (e.type === "link") return reference(e.url + (e.text ? "|" + e.text : ""));
    if (e.type === "emoji") return emoji(e.name);
    if (e.type === "broadcast") return `<span class="mention">@${esc(e.range)}</span>`;
    return "";
  }).join("");
}

function richText(block) {
  return (block.elements || []).map((el) => {
    if (el.type === "rich_text_section") return `<div>${richElements(el.elements)}</div>`;
    if (el.type === "rich_text_preformatted") return `<pre>${richElements(el.elements)}</pre>`;
    if (el.type === "rich_text_quote") return `<blockquote>${richElements(el.elements)}</blockquote>`;
    if (el.type === "rich_text_list") {
      const tag = el.style === "ordered" ? "ol" : "ul";
      return `<${tag}>${(el.elements || []).map((s) => `<li>${richElements(s.elements)}</li>`).join("")}</${tag}>`;
    }
    return "";
  }).join("");
}

function inputBlock(block, errors) {
  const el = block.element || {};
  const name = `${block.block_id}::${el.action_id}`;
  const common = attrs({ name, "data-testid": `input-${el.action_id}`, "data-block-id": block.block_id, "data-action-id": el.action_id,
    maxlength: el.max_length, placeholder: el.placeholder?.text, required: block.optional ? undefined : "" });
  let field;
  if (el.type === "plain_text_input") {
    field = el.multiline
      ? `<textarea rows="4"${common}>${esc(el.initial_value || "")}</textarea>`
      : `<input type="text"${common} value="${esc(el.initial_value || "")}">`;
  } else if (el.type === "static_select" || el.type === "radio_buttons") {
    const opts = (el.options || []).map((o) => `<option value="${esc(o.value)}"${el.initial_option?.value === o.value ? " selected" : ""}>${esc(o.text?.text)}</option>`).join("");
    field = `<select${common}><option value=""></option>${opts}</select>`;
  } else {
    field = `<span class="unsupported">[${esc(el.type)}]</span>`;
  }
  const error = errors && errors[block.block_id] ? `<div class="error" data-testid="input-error-${esc(block.block_id)}">${esc(errors[block.block_id])}</div>` : "";
  return `<div class="block input" data-testid="block-input"${attrs({ "data-block-id": block.block_id })}><label>${textObject(block.label)}${block.optional ? " <span class=\"hint\">(optional)</span>" : ""}</label>${field}${block.hint ? `<div class="hint">${textObject(block.hint)}</div>` : ""}${error}</div>`;
}

function blocksHtml(blocks, where, errors) {
  return (blocks || []).map((b) => {
    const id = attrs({ "data-testid": `block-${b.type}`, "data-block-id": b.block_id });
    switch (b.type) {
      case "section": {
        const fields = b.fields ? `<div class="fields">${b.fields.map((f) => `<div data-testid="field">${textObject(f)}</div>`).join("")}</div>` : "";
        const acc = b.accessory ? `<div class="accessory">${element(b.accessory, b, where)}</div>` : "";
        return `<div class="block section"${id}><div class="section-main">${textObject(b.text)}${fields}</div>${acc}</div>`;
      }
      case "context":
        return `<div class="block context"${id}>${(b.elements || []).map((e) => element(e, b, where)).join("")}</div>`;
      case "actions":
        return `<div class="block actions"${id}>${(b.elements || []).map((e) => element(e, b, where)).join("")}</div>`;
      case "divider":
        return `<hr class="block divider"${id}>`;
      case "header":
        return `<div class="block header"${id}>${textObject(b.text)}</div>`;
      case "image":
        return `<div class="block"${id}><img class="image" alt="${esc(b.alt_text)}" src="${esc(safeUrl(b.image_url || ""))}"></div>`;
      case "markdown":
        return `<div class="block markdown"${id}>${markdown(b.text)}</div>`;
      case "rich_text":
        return `<div class="block rich-text"${id}>${richText(b)}</div>`;
      case "input":
        return inputBlock(b, errors);
      default:
        return `<div class="block unsupported"${id}>[unsupported block: ${esc(b.type)}]</div>`;
    }
  }).join("");
}

// ---- messages ----------------------------------------------------------------------------

function messageHtml(m, inThread) {
  const bot = !!m.bot_id;
  const name = userName(m.user);
  const time = new Date(parseFloat(m.ts) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const where = { "data-channel": m.channel, "data-ts": m.ts };
  let body = "";
  if (m.stream) {
    body += `<div class="stream-text" data-testid="stream-text">${markdown(m.text)}</div>`;
    if (m.chunks && m.chunks.length) {
      body += `<ul class="stream-tasks" data-testid="stream-tasks">${m.chunks.map((c) => c.type === "plan_update"
        ? `<li><b>${esc(c.title)}</b></li>`
        : `<li data-testid="stream-task" data-status="${esc(c.status)}">${TASK_ICON[c.status] || "○"} ${esc(c.title)}${c.details ? ` — <span class="hint">${esc(c.details)}</span>` : ""}</li>`).join("")}</ul>`;
    }
    body += blocksHtml(m.blocks, where);
    if (m.stream === "open") body += `<div class="streaming" data-testid="streaming">typing…</div>`;
  } else if (m.blocks && m.blocks.length) {
    body += blocksHtml(m.blocks, where);
  } else {
    body += `<div class="text">${mrkdwn(m.text)}</div>`;
  }
  if (m.files && m.files.length) {
    body += `<div class="files">${m.files.map((f) => `<a data-testid="file" data-file-id="${esc(f.id)}" href="${esc(safeUrl(f.url_private_download || f.url_private))}" download="${esc(f.name)}">📄 ${esc(f.title || f.name)}</a>`).join(" ")}</div>`;
  }
  const reactions = (m.reactions || []).map((r) => `<button type="button" class="reaction${r.users.includes(ui.state.me) ? " mine" : ""}" data-testid="reaction-${esc(r.name)}" data-reaction="${esc(r.name)}" data-count="${r.count}" title="${esc(r.users.map(userName).join(", "))}">${emoji(r.name)} ${r.count}</button>`).join("");
  const picker = ui.picker === m.ts
    ? `<span class="emoji-picker" data-testid="emoji-picker">${PICKER.map((n) => `<button type="button" data-testid="emoji-${esc(n)}" data-reaction="${esc(n)}">${emoji(n)}</button>`).join("")}</span>` : "";
  const actionsRow = m.ephemeral ? "" : `<div class="reactions">${reactions}<button type="button" class="add-reaction" data-testid="add-reaction" title="Add reaction">☺+</button>${picker}${inThread || m.reply_count ? "" : `<button type="button" class="open-thread" data-testid="open-thread">Reply in thread</button>`}</div>`;
  const thread = !inThread && m.reply_count
    ? `<div class="thread-link"><a href="#" data-testid="thread-link" data-open-thread="${esc(m.ts)}">${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}</a></div>` : "";
  const classes = ["message", m.ephemeral ? "ephemeral" : "", ui.highlight === m.ts ? "highlight" : ""].join(" ");
  return `<div class="${classes}" id="msg-${esc(m.ts.replace(".", "-"))}" data-testid="${m.ephemeral ? "ephemeral-message" : "message"}" data-ts="${esc(m.ts)}" data-channel="${esc(m.channel)}" data-user="${esc(m.user)}"${m.thread_ts ? ` data-thread-ts="${esc(m.thread_ts)}"` : ""}${bot ? ' data-bot="true"' : ""}>
    <div class="avatar${bot ? " bot" : ""}">${esc(name.slice(0, 1))}</div>
    <div class="body"><div class="meta"><span class="name" data-testid="message-author">${esc(name)}</span>${bot ? '<span class="app-tag">APP</span>' : ""}<span class="time">${esc(time)}</span>${m.edited ? ' <span class="edited">(edited)</span>' : ""}${m.ephemeral ? ' <span class="only-you">Only visible to you</span>' : ""}</div>
    <div class="content" data-testid="message-content">${body}</div>${thread}${actionsRow}</div></div>`;
}

// ---- rendering ---------------------------------------------------------------------------

function render() {
  const s = ui.state;
  document.querySelector("#user-select").innerHTML = s.users.filter((u) => !u.is_bot)
    .map((u) => `<option value="${esc(u.id)}"${u.id === s.me ? " selected" : ""}>${esc(u.real_name)} — ${esc(u.title)}</option>`).join("");
  document.querySelector("#channels").innerHTML = s.channels.map((c) =>
    `<a href="#/${esc(c.id)}" class="${c.id === s.channel ? "active" : ""}" data-testid="channel-${esc(c.name)}" data-channel-id="${esc(c.id)}">${c.is_im ? "" : "# "}${esc(c.name)}</a>`).join("");
  const conn = s.app.socket_connections ? `Socket Mode (${s.app.socket_connections})` : (s.app.request_url ? `HTTP → ${s.app.request_url}` : "no app connected");
  document.querySelector("#app-status").innerHTML = `<span class="dot${s.app.socket_connections || s.app.request_url ? " on" : ""}"></span><span data-testid="app-connection">${esc(conn)}</span>`;
  document.querySelector("#deliveries").innerHTML = s.deliveries.slice().reverse().map((d) =>
    `<li class="${esc(d.status)}" data-testid="delivery" data-status="${esc(d.status)}" data-label="${esc(d.label)}">${esc(d.label)} — ${esc(d.status)}${d.via ? ` via ${esc(d.via)}` : ""}${d.attempts > 1 ? ` (${d.attempts} attempts)` : ""}${d.detail ? `: ${esc(d.detail)}` : ""}</li>`).join("");
  const current = s.channels.find((c) => c.id === s.channel);
  document.querySelector("#channel-header").innerHTML = `${current && !current.is_im ? "# " : ""}${esc(current ? current.name : "")}`;
  document.querySelector("#channel-header").dataset.channelId = s.channel;

  const top = s.messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts || m.subtype === "thread_broadcast");
  const box = document.querySelector("#messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.innerHTML = top.map((m) => messageHtml(m, false)).join("");
  if (atBottom) box.scrollTop = box.scrollHeight;

  const panel = document.querySelector("#thread-panel");
  if (ui.thread) {
    const msgs = s.messages.filter((m) => m.ts === ui.thread || m.thread_ts === ui.thread);
    panel.hidden = false;
    panel.dataset.threadTs = ui.thread;
    const tbox = document.querySelector("#thread-messages");
    const tBottom = tbox.scrollHeight - tbox.scrollTop - tbox.clientHeight < 40;
    tbox.innerHTML = msgs.map((m) => messageHtml(m, true)).join("");
    if (tBottom) tbox.scrollTop = tbox.scrollHeight;
  } else {
    panel.hidden = true;
  }
  renderModal();
}

let modalErrors = {};
function renderModal() {
  const view = ui.state.views[ui.state.views.length - 1];
  const backdrop = document.querySelector("#modal-backdrop");
  const form = document.querySelector("#modal");
  if (!view) { backdrop.hidden = true; form.dataset.viewId = ""; return; }
  if (form.dataset.viewId === view.id && form.dataset.hash === view.hash && !form.dataset.dirtyErrors) return; // keep typed input
  delete form.dataset.dirtyErrors;
  backdrop.hidden = false;
  form.dataset.viewId = view.id;
  form.dataset.hash = view.hash;
  form.dataset.callbackId = view.callback_id || "";
  form.innerHTML = `<div class="modal-title" data-testid="modal-title">${textObject(view.title)}</div>
    <div class="modal-body" data-testid="modal-body">${blocksHtml(view.blocks, { "data-view-id": view.id }, modalErrors)}<div class="modal-error" data-testid="modal-error"></div></div>
    <div class="modal-footer"><button type="button" class="btn" data-testid="modal-close" id="modal-close">${view.close ? textObject(view.close) : "Cancel"}</button>${view.submit ? `<button type="submit" class="btn primary" data-testid="modal-submit" id="modal-submit">${textObject(view.submit)}</button>` : ""}</div>`;
}

// ---- talking to the server ---------------------------------------------------------------

async function post(action, data) {
  const res = await fetch(`/ui/${action}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: ui.state.me, ...data }) });
  const body = await res.json();
  if (!body.ok && body.error && !body.errors) toast(body.error);
  return body;
}

function toast(text) {
  const t = document.querySelector("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

async function refresh(wait) {
  const q = new URLSearchParams({ user: ui.user, channel: ui.channel });
  if (wait) q.set("since", String(ui.version));
  const res = await fetch(`/ui/state?${q}`);
  const state = await res.json();
  ui.state = state;
  ui.version = state.version;
  ui.user = state.me;
  ui.channel = state.channel;
  render();
  document.body.dataset.version = String(state.version);
}

async function poll() {
  for (;;) {
    try { await refresh(true); } catch (e) { await new Promise((r) => setTimeout(r, 1000)); }
  }
}

function route() {
  const [, channel, ts] = location.hash.split("/");
  if (channel) ui.channel = channel;
  ui.thread = ts || null;
  ui.highlight = ts || null;
}

// ---- events --------------------------------------------------------------------------------

document.addEventListener("click", async (ev) => {
  const t = ev.target.closest("button, a");
  if (!t) return;
  const msg = t.closest("[data-ts]");
  if (t.matches("[data-testid^=channel-]")) {
    ev.preventDefault();
    ui.thread = null;
    location.hash = `#/${t.dataset.channelId}`;
    return;
  }
  if (t.dataset.openThread || t.matches(".open-thread")) {
    ev.preventDefault();
    const ts = t.dataset.openThread || msg.dataset.ts;
    location.hash = `#/${ui.channel}/${ts}`;
    return;
  }
  if (t.id === "thread-close") { location.hash = `#/${ui.channel}`; return; }
  if (t.matches(".add-reaction")) { ui.picker = ui.picker === msg.dataset.ts ? null : msg.dataset.ts; render(); return; }
  if (t.dataset.reaction && msg) {
    ui.picker = null;
    await post("reaction", { channel: msg.dataset.channel, ts: msg.dataset.ts, name: t.dataset.reaction });
    return;
  }
  if (t.id === "modal-close") {
    await post("close", { view_id: document.querySelector("#modal").dataset.viewId });
    return;
  }
  if (t.dataset.actionId && t.matches("button.btn")) {
    if (t.dataset.url) window.open(t.dataset.url, "_blank", "noopener");
    t.disabled = true;
    try {
      await post("click", { action_id: t.dataset.actionId, block_id: t.dataset.blockId, channel: t.dataset.channel, ts: t.dataset.ts, view_id: t.dataset.viewId });
    } finally { t.disabled = false; }
  }
});

document.addEventListener("change", async (ev) => {
  const t = ev.target;
  if (t.id === "user-select") {
    ui.user = t.value;
    localStorage.setItem("sleuth-workspace-user", t.value);
    await refresh(false);
    return;
  }
  if (t.matches("select.select") && t.dataset.actionId) {
    await post("click", { action_id: t.dataset.actionId, block_id: t.dataset.blockId, channel: t.dataset.channel, ts: t.dataset.ts, view_id: t.dataset.viewId, selected: t.value });
  }
});

async function send(input, threadTs) {
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  const body = await post("message", { channel: ui.channel, text, thread_ts: threadTs });
  if (!body.ok && body.error) input.value = text;
}

document.querySelector("#composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(document.querySelector("#message-input"), null); });
document.querySelector("#thread-composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(document.querySelector("#thread-input"), ui.thread); });
for (const id of ["#message-input", "#thread-input"]) {
  document.querySelector(id).addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); ev.target.form.requestSubmit(); }
  });
}

document.querySelector("#modal").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const values = {};
  for (const field of form.querySelectorAll("[data-action-id][name]")) {
    (values[field.dataset.blockId] ||= {})[field.dataset.actionId] = field.value;
  }
  const submit = form.querySelector("#modal-submit");
  if (submit) submit.disabled = true;
  const body = await post("submit", { view_id: form.dataset.viewId, values });
  if (submit) submit.disabled = false;
  modalErrors = body.errors || {};
  if (body.errors) { form.dataset.dirtyErrors = "1"; keepValues(form, values); }
  else if (!body.ok) form.querySelector("[data-testid=modal-error]").textContent = body.error || "";
});

function keepValues(form, values) {
  // re-render with the errors but keep what the person typed
  renderModal();
  for (const field of form.querySelectorAll("[data-action-id][name]")) {
    const v = values[field.dataset.blockId]?.[field.dataset.actionId];
    if (v !== undefined) field.value = v;
  }
  modalErrors = {};
}

window.addEventListener("hashchange", () => { route(); refresh(false); });
route();
refresh(false).then(poll);
