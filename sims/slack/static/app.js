// The browser face of the local Slack workspace. Vanilla JS, no build step.
// All text reaches the page through textContent / DOM nodes, never innerHTML.
"use strict";

const ui = {
  state: null,
  me: localStorage.getItem("fwbot.me") || "",
  channel: localStorage.getItem("fwbot.channel") || "",
  thread: null,            // ts of the open thread
  drafts: {},              // view_id -> {block_id: {action_id: value}}
};
const HOME = "__home__";

// ---------------------------------------------------------------- tiny DOM helper

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "className") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// ---------------------------------------------------------------- server calls

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch("/_ui/" + path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function report(outcome) {
  if (!outcome || !outcome.delivered) return;
  if (outcome.status === 200) return;
  if (outcome.error === "required_fields_missing") return;  // shown inline
  toast(outcome.status ? `The app answered HTTP ${outcome.status}` : `Could not reach the app (${outcome.error})`);
}

function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 5000);
}

async function act(path, body) {
  try { report(await api(path, {user: ui.me, ...body})); } catch (err) { toast(err.message); }
  await refresh();
}

async function refresh() {
  let fresh;
  try {
    fresh = await api("state?user=" + encodeURIComponent(ui.me));
  } catch (err) { toast(err.message); return; }
  // Refreshes overlap (a click's own, and the event stream's); answers may arrive out of order.
  // Keep the newest state of the user we act as, never an older one that arrived late.
  if (ui.me && fresh.me !== ui.me) return;
  const sameRun = ui.state && ui.state.boot === fresh.boot;
  if (sameRun && ui.state.me === fresh.me && fresh.version < ui.state.version) return;
  if (ui.state && !sameRun) ui.drafts = {};  // the workspace restarted: its views are new
  ui.state = fresh;
  const known = ui.state.users.filter((u) => !u.is_bot && !u.deleted);
  if (!ui.state.users.some((u) => u.id === ui.me && !u.is_bot) && known.length) {
    ui.me = known[0].id;  // remembered user from an earlier run is gone
    return refresh();
  }
  render();
}

// ---------------------------------------------------------------- names and mrkdwn

function userName(id) {
  const user = ui.state.users.find((u) => u.id === id);
  return user ? user.name : id;
}
function channelName(id) {
  const channel = ui.state.channels.find((c) => c.id === id);
  if (!channel) return id;
  return channel.is_im ? ui.state.bot.name : channel.name;
}
// Slack's shortcodes for the emoji apps commonly send; unknown ones stay as typed, as in Slack.
const EMOJI = {
  "+1": "👍", "-1": "👎", thumbsup: "👍", thumbsdown: "👎", white_check_mark: "✅", heavy_check_mark: "✔️",
  ballot_box_with_check: "☑️", x: "❌", heavy_multiplication_x: "✖️", warning: "⚠️", no_entry: "⛔",
  no_entry_sign: "🚫", information_source: "ℹ️", question: "❓", grey_question: "❔", exclamation: "❗",
  grey_exclamation: "❕", bangbang: "‼️", hourglass: "⌛", hourglass_flowing_sand: "⏳", stopwatch: "⏱️",
  alarm_clock: "⏰", timer_clock: "⏲️", clock1: "🕐", calendar: "📆", date: "📅", spiral_calendar_pad: "🗓️",
  large_green_circle: "🟢", large_yellow_circle: "🟡", large_orange_circle: "🟠", red_circle: "🔴",
  large_blue_circle: "🔵", large_purple_circle: "🟣", white_circle: "⚪", black_circle: "⚫",
  green_heart: "💚", heart: "❤️", arrows_counterclockwise: "🔄", repeat: "🔁", recycle: "♻️",
  wastebasket: "🗑️", mag: "🔍", mag_right: "🔎", receipt: "🧾", gear: "⚙️", wrench: "🔧", hammer: "🔨",
  hammer_and_wrench: "🛠️", test_tube: "🧪", straight_ruler: "📏", triangular_ruler: "📐", raised_hands: "🙌",
  raised_hand: "✋", wave: "👋", clap: "👏", pray: "🙏", handshake: "🤝", eyes: "👀", ghost: "👻",
  snowflake: "❄️", rocket: "🚀", moneybag: "💰", money_with_wings: "💸", dollar: "💵", credit_card: "💳",
  chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", bar_chart: "📊", jigsaw: "🧩",
  boom: "💥", bell: "🔔", no_bell: "🔕", zzz: "💤", sleeping: "😴", fire: "🔥", zap: "⚡", bulb: "💡",
  sparkles: "✨", star: "⭐", tada: "🎉", memo: "📝", pushpin: "📌", round_pushpin: "📍", lock: "🔒",
  unlock: "🔓", key: "🔑", rotating_light: "🚨", construction: "🚧", package: "📦", inbox_tray: "📥",
  outbox_tray: "📤", link: "🔗", paperclip: "📎", clipboard: "📋", scroll: "📜", book: "📖", robot_face: "🤖",
  computer: "💻", desktop_computer: "🖥️", brain: "🧠", thermometer: "🌡️", arrow_up: "⬆️", arrow_down: "⬇️",
  arrow_right: "➡️", arrow_left: "⬅️", arrow_up_small: "🔼", arrow_down_small: "🔽", heavy_plus_sign: "➕",
  heavy_minus_sign: "➖", point_right: "👉", point_up: "☝️", speech_balloon: "💬", thought_balloon: "💭",
  sos: "🆘", new: "🆕", ok: "🆗", free: "🆓", skull: "💀", smile: "😄", slightly_smiling_face: "🙂",
  thinking_face: "🤔", hourglass_done: "⌛", checkered_flag: "🏁", crossed_flags: "🎌", pause_button: "⏸️",
  arrow_forward: "▶️", black_square_for_stop: "⏹️", fast_forward: "⏩", rewind: "⏪", ice_cube: "🧊",
};

function emojify(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

function unescapeSlack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function angle(token) {
  const [target, label] = token.split("|", 2);
  if (target.startsWith("@")) return h("span", {className: "mention"}, "@" + userName(target.slice(1)));
  if (target.startsWith("#")) return h("span", {className: "mention"}, "#" + (label || channelName(target.slice(1))));
  if (target.startsWith("!subteam^")) {
    const group = ui.state.usergroups.find((g) => g.id === target.slice(9));
    return h("span", {className: "mention"}, "@" + (group ? group.handle : label || target.slice(9)));
  }
  if (target.startsWith("!date^")) {
    const [, seconds, format, link] = target.split("^");
    const text = slackDate(Number(seconds), format || "{date_short_pretty} {time}");
    return link ? h("a", {href: link, target: "_blank", rel: "noopener noreferrer"}, text)
      : h("time", {title: label || "", datetime: new Date(Number(seconds) * 1000).toISOString()}, text);
  }
  if (target.startsWith("!")) return h("span", {className: "mention"}, "@" + target.slice(1));
  if (/^(https?:|mailto:)/.test(target)) {
    return h("a", {href: target, target: "_blank", rel: "noopener noreferrer"}, unescapeSlack(label || target));
  }
  return "<" + unescapeSlack(token) + ">";
}

// <!date^ts^format|fallback>, as Slack shows it: in the reader's own timezone.
function slackDate(seconds, format) {
  const me = ui.state.users.find((u) => u.id === ui.me);
  const timeZone = (me && me.tz) || undefined;
  const when = new Date(seconds * 1000);
  const fmtAt = (date, options) => {
    try { return new Intl.DateTimeFormat("en-US", {timeZone, ...options}).format(date); } catch (err) {
      return new Intl.DateTimeFormat("en-US", options).format(date);  // an unknown zone: the browser's
    }
  };
  const fmt = (options) => fmtAt(when, options);
  const day = (date) => fmtAt(date, {year: "numeric", month: "2-digit", day: "2-digit"})
    .replace(/(\d+)\/(\d+)\/(\d+)/, "$3-$1-$2");
  const offsetDays = Math.round((Date.parse(day(when)) - Date.parse(day(new Date()))) / 86400000);
  const pretty = {0: "today", 1: "tomorrow", [-1]: "yesterday"}[offsetDays];
  const short = fmt({month: "short", day: "numeric", year: "numeric"});
  const long = fmt({month: "long", day: "numeric", year: "numeric"});
  const ago = () => {
    const s = Math.round((Date.now() - when.getTime()) / 1000);
    const abs = Math.abs(s);
    const [n, unit] = abs < 60 ? [abs, "second"] : abs < 3600 ? [Math.round(abs / 60), "minute"]
      : abs < 86400 ? [Math.round(abs / 3600), "hour"] : [Math.round(abs / 86400), "day"];
    const phrase = `${n} ${unit}${n === 1 ? "" : "s"}`;
    return s >= 0 ? `${phrase} ago` : `in ${phrase}`;
  };
  const tokens = {
    date_num: () => day(when),
    date_slash: () => fmt({year: "numeric", month: "2-digit", day: "2-digit"}),
    date: () => long,
    date_short: () => short,
    date_long: () => fmt({weekday: "long", month: "long", day: "numeric", year: "numeric"}),
    date_long_full: () => long,
    date_pretty: () => pretty || long,
    date_short_pretty: () => pretty || short,
    date_long_pretty: () => pretty || fmt({weekday: "long", month: "long", day: "numeric", year: "numeric"}),
    time: () => fmt({hour: "numeric", minute: "2-digit"}),
    time_secs: () => fmt({hour: "numeric", minute: "2-digit", second: "2-digit"}),
    ago,
  };
  return format.replace(/\{(\w+)\}/g, (whole, name) => (tokens[name] ? tokens[name]() : whole));
}

const MRKDWN = /```([\s\S]+?)```|`([^`\n]+)`|<([^<>\s][^<>]*)>|\*([^*\n]+)\*|(?<![A-Za-z0-9])_([^_\n]+)_(?![A-Za-z0-9])|~([^~\n]+)~|(\n)/g;

function mrkdwn(text) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const m of String(text || "").matchAll(MRKDWN)) {
    if (m.index > last) out.append(emojify(unescapeSlack(text.slice(last, m.index))));
    if (m[1] !== undefined) out.append(h("pre", {}, unescapeSlack(m[1])));
    else if (m[2] !== undefined) out.append(h("code", {}, unescapeSlack(m[2])));
    else if (m[3] !== undefined) out.append(angle(m[3]));
    else if (m[4] !== undefined) out.append(h("b", {}, mrkdwn(m[4])));
    else if (m[5] !== undefined) out.append(h("i", {}, mrkdwn(m[5])));
    else if (m[6] !== undefined) out.append(h("s", {}, mrkdwn(m[6])));
    else out.append(h("br"));
    last = m.index + m[0].length;
  }
  if (last < String(text || "").length) out.append(emojify(unescapeSlack(text.slice(last))));
  return out;
}

function textObj(obj) {
  if (!obj) return "";
  if (typeof obj === "string") return mrkdwn(obj);
  if (obj.type === "mrkdwn") return mrkdwn(obj.text);
  return document.createTextNode(obj.emoji === false ? obj.text || "" : emojify(obj.text || ""));
}

function tsTime(ts) {
  return new Date(Number(ts) * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

// ---------------------------------------------------------------- Block Kit

// ctx: {kind: "message", channel, ts} or {kind: "view", viewId}
function renderBlocks(blocks, ctx, errors) {
  return h("div", {className: "blocks"}, (blocks || []).map((block) => renderBlock(block, ctx, errors || {})));
}

function renderBlock(block, ctx, errors) {
  switch (block.type) {
    case "header":
      return h("h3", {className: "bk-header"}, textObj(block.text));
    case "section":
      return h("div", {className: "bk-section"},
        h("div", {className: "bk-section-body"},
          block.text ? h("div", {className: "bk-text"}, textObj(block.text)) : null,
          block.fields ? h("div", {className: "bk-fields"}, block.fields.map((f) => h("div", {}, textObj(f)))) : null),
        block.accessory ? h("div", {className: "bk-accessory"}, renderElement(block.accessory, block, ctx)) : null);
    case "context":
      return h("div", {className: "bk-context"}, (block.elements || []).map((e) =>
        e.type === "image" ? h("img", {src: e.image_url, alt: e.alt_text || "", className: "bk-context-img"})
          : h("span", {}, textObj(e))));
    case "divider":
      return h("hr", {className: "bk-divider"});
    case "actions":
      return h("div", {className: "bk-actions"}, (block.elements || []).map((e) => renderElement(e, block, ctx)));
    case "image":
      return h("figure", {className: "bk-image"},
        block.title ? h("figcaption", {}, textObj(block.title)) : null,
        h("img", {src: block.image_url || "", alt: block.alt_text || ""}));
    case "input":
      return renderInput(block, ctx, errors[block.block_id]);
    case "markdown":
      return h("div", {className: "bk-text"}, mrkdwn(block.text));
    case "rich_text":
      return h("div", {className: "bk-text"}, richText(block.elements || []));
    default:
      return h("div", {className: "bk-unknown"}, `[${block.type} block]`);
  }
}

function richText(elements) {
  return elements.map((el) => {
    if (el.type === "text") {
      const style = el.style || {};
      let node = document.createTextNode(el.text);
      if (style.code) node = h("code", {}, node);
      if (style.bold) node = h("b", {}, node);
      if (style.italic) node = h("i", {}, node);
      return node;
    }
    if (el.type === "link") return h("a", {href: el.url, target: "_blank", rel: "noopener noreferrer"}, el.text || el.url);
    if (el.type === "user") return h("span", {className: "mention"}, "@" + userName(el.user_id));
    if (el.type === "channel") return h("span", {className: "mention"}, "#" + channelName(el.channel_id));
    if (el.type === "emoji") return el.unicode ? String.fromCodePoint(...el.unicode.split("-").map((c) => parseInt(c, 16)))
      : emojify(`:${el.name}:`);
    if (el.elements) {
      const tag = {rich_text_preformatted: "pre", rich_text_quote: "blockquote", rich_text_list: "ul"}[el.type] || "div";
      return h(tag, {}, el.type === "rich_text_list" ? el.elements.map((x) => h("li", {}, richText(x.elements || [])))
        : richText(el.elements));
    }
    return "";
  });
}

function optionLabel(option) {
  return option && option.text ? option.text.text : "";
}
function allOptions(element) {
  return (element.options || []).concat(...(element.option_groups || []).map((g) => g.options || []));
}

// An interactive element outside an input block: acts immediately.
function renderElement(element, block, ctx) {
  const send = (extra) => withConfirm(element.confirm, () => interact(ctx, element, block, extra));
  switch (element.type) {
    case "button":
      return h("button", {type: "button", className: "bk-button " + (element.style || ""),
        onclick: () => { if (element.url) window.open(element.url, "_blank", "noopener"); send({value: element.value}); }},
        textObj(element.text));
    case "overflow":
      return selectBox([{value: "", label: "⋯"}].concat(allOptions(element).map((o) => ({value: o.value, label: optionLabel(o)}))),
        "", (value) => value && send({selected_option: value}), "bk-overflow");
    case "static_select":
    case "users_select":
    case "conversations_select":
    case "channels_select": {
      const choices = choicesFor(element);
      const current = currentChoice(element);
      return selectBox([{value: "", label: placeholderOf(element)}].concat(choices), current,
        (value) => value && send({selected_option: value}), "bk-select");
    }
    case "datepicker":
      return h("input", {type: "date", value: element.initial_date || "",
        onchange: (e) => send({selected_option: e.target.value})});
    case "image":
      return h("img", {src: element.image_url, alt: element.alt_text || "", className: "bk-accessory-img"});
    default:
      return h("span", {className: "bk-unknown"}, `[${element.type}]`);
  }
}

function placeholderOf(element) {
  return element.placeholder ? element.placeholder.text : "Select…";
}
function currentChoice(element) {
  if (element.initial_option) return element.initial_option.value;
  return element.initial_user || element.initial_conversation || element.initial_channel || "";
}
function choicesFor(element) {
  if (element.type.includes("users")) {
    return ui.state.users.filter((u) => !u.is_bot && !u.deleted).map((u) => ({value: u.id, label: `${u.name} (${u.real_name})`}));
  }
  if (element.type.includes("conversations") || element.type.includes("channels")) {
    return ui.state.channels.filter((c) => !c.is_im).map((c) => ({value: c.id, label: "#" + c.name}));
  }
  return allOptions(element).map((o) => ({value: o.value, label: optionLabel(o)}));
}

function selectBox(choices, current, onchange, className, multiple) {
  return h("select", {className, multiple: !!multiple, onchange: (e) => {
    const value = multiple ? [...e.target.selectedOptions].map((o) => o.value) : e.target.value;
    onchange(value);
  }}, choices.map((c) => h("option", {value: c.value, selected: multiple ? (current || []).includes(c.value) : c.value === current}, c.label)));
}

function interact(ctx, element, block, extra) {
  const body = {action_id: element.action_id, block_id: block.block_id, ...extra};
  if (ctx.kind === "message") return act("click", {...body, channel: ctx.channel, ts: ctx.ts});
  return act("click", {...body, view_id: ctx.viewId, values: ui.drafts[ctx.viewId] || {}});
}

function withConfirm(confirm, proceed) {
  if (!confirm) { proceed(); return; }
  const root = document.getElementById("modal-root");
  const dialog = h("div", {className: "overlay confirm"},
    h("div", {className: "modal small", role: "dialog", "aria-modal": "true"},
      h("div", {className: "modal-title"}, textObj(confirm.title || {type: "plain_text", text: "Are you sure?"})),
      h("div", {className: "modal-body"}, textObj(confirm.text)),
      h("div", {className: "modal-footer"},
        h("button", {type: "button", onclick: () => dialog.remove()}, textObj(confirm.deny || {type: "plain_text", text: "Cancel"})),
        h("button", {type: "button", className: "bk-button " + (confirm.style === "danger" ? "danger" : "primary"),
          onclick: () => { dialog.remove(); proceed(); }}, textObj(confirm.confirm || {type: "plain_text", text: "Yes"})))));
  root.append(dialog);
}

// ---------------------------------------------------------------- inputs (modals and Home)

function draftValue(viewId, block, element) {
  const draft = (ui.drafts[viewId] || {})[block.block_id];
  if (draft && element.action_id in draft) return draft[element.action_id];
  const held = ((viewOf(viewId) || {}).state || {}).values || {};
  const entry = (held[block.block_id] || {})[element.action_id];
  if (entry) {
    if ("value" in entry) return entry.value;
    if (entry.selected_option) return entry.selected_option.value;
    if (entry.selected_options) return entry.selected_options.map((o) => o.value);
    for (const key of ["selected_user", "selected_conversation", "selected_channel", "selected_date", "selected_time",
      "selected_users", "selected_conversations", "selected_channels"]) if (key in entry) return entry[key];
  }
  return null;
}

// What the user typed into inputs the app has since taken out of the view goes with them, as in
// Slack: an input that comes back later starts from its initial value, and a submission carries
// only the inputs the view has.
function pruneDrafts(viewId, blocks) {
  const draft = ui.drafts[viewId];
  if (!draft) return;
  const present = new Set((blocks || []).filter((b) => b.type === "input").map((b) => b.block_id));
  for (const blockId of Object.keys(draft)) if (!present.has(blockId)) delete draft[blockId];
}

function setDraft(viewId, block, element, value) {
  const draft = (ui.drafts[viewId] = ui.drafts[viewId] || {});
  (draft[block.block_id] = draft[block.block_id] || {})[element.action_id] = value;
}

function viewOf(viewId) {
  const views = ui.state.views.map((v) => v.view);
  if (ui.state.home) views.push(ui.state.home.view);
  return views.find((v) => v.id === viewId);
}

// Slack sends a typed input's block action only when the input block has dispatch_action; the
// element's dispatch_action_config says when (default: Enter). Typing sends on change here
// (Enter or leaving the field) so a re-rendered modal never interrupts a word.
function dispatchesOn(block, element, trigger) {
  if (!block.dispatch_action) return false;
  const on = (element.dispatch_action_config || {}).trigger_actions_on || ["on_enter_pressed"];
  return on.includes(trigger);
}

function renderInput(block, ctx, error) {
  const element = block.element || {};
  const viewId = ctx.viewId;
  const value = draftValue(viewId, block, element);
  let sent;  // the value last dispatched, so Enter then blur does not send it twice
  const update = (v) => {
    setDraft(viewId, block, element, v);
    if (!block.dispatch_action) return;
    const typed = ["plain_text_input", "number_input", "email_text_input", "url_text_input"].includes(element.type);
    if (typed && JSON.stringify(v) === sent) return;
    sent = JSON.stringify(v);
    interact(ctx, element, block, {selected_option: v});
  };
  let control;
  const text = (type) => h(type === "textarea" ? "textarea" : "input", {
    type: type === "textarea" ? null : type, value: type === "textarea" ? null : value ?? "",
    rows: type === "textarea" ? 4 : null,
    placeholder: element.placeholder ? element.placeholder.text : null,
    maxlength: element.max_length || null, min: element.min_value ?? null, max: element.max_value ?? null,
    step: element.type === "number_input" ? (element.is_decimal_allowed ? "any" : "1") : null,
    "data-input": `${block.block_id}/${element.action_id}`,
    oninput: (e) => setDraft(viewId, block, element, e.target.value),
    onkeydown: (e) => {
      // An input that dispatches on Enter sends a block action instead of submitting the modal.
      if (e.key === "Enter" && type !== "textarea" && dispatchesOn(block, element, "on_enter_pressed")) {
        e.preventDefault();
        update(e.target.value);
      }
    },
    onchange: (e) => update(e.target.value)}, type === "textarea" ? value ?? "" : null);
  if (element.type === "plain_text_input" && element.multiline) control = text("textarea");
  else if (element.type === "plain_text_input") control = text("text");
  else if (element.type === "number_input") control = text("number");
  else if (element.type === "email_text_input") control = text("email");
  else if (element.type === "url_text_input") control = text("url");
  else if (element.type === "datepicker") control = text("date");
  else if (element.type === "timepicker") control = text("time");
  else if (element.type === "checkboxes" || element.type === "radio_buttons") {
    const multi = element.type === "checkboxes";
    const chosen = multi ? (value || []) : [value];
    control = h("div", {className: "bk-choices"}, allOptions(element).map((o) => h("label", {},
      h("input", {type: multi ? "checkbox" : "radio", name: `${viewId}/${block.block_id}`, value: o.value,
        checked: chosen.includes(o.value), onchange: (e) => {
          const boxes = e.target.closest(".bk-choices").querySelectorAll("input");
          const picked = [...boxes].filter((b) => b.checked).map((b) => b.value);
          update(multi ? picked : picked[0] || null);
        }}),
      " ", optionLabel(o),
      o.description ? h("span", {className: "hint"}, " ", textObj(o.description)) : null)));
  } else if (element.type.startsWith("multi_")) {
    control = selectBox(choicesFor(element), value || [], update, "bk-select", true);
  } else if (element.type.endsWith("select")) {
    control = selectBox([{value: "", label: placeholderOf(element)}].concat(choicesFor(element)), value || "",
      (v) => update(v || null), "bk-select");
  } else control = h("span", {className: "bk-unknown"}, `[${element.type}]`);
  const controlId = `input-${viewId}-${block.block_id}`;
  const labelled = control.tagName !== "DIV" && control.tagName !== "SPAN";
  if (labelled) control.id = controlId;
  if (error && labelled) control.setAttribute("aria-invalid", "true");
  return h("div", {className: "bk-input" + (error ? " has-error" : ""), "data-block-id": block.block_id},
    h("label", {className: "bk-label", for: labelled ? controlId : null}, textObj(block.label),
      block.optional ? h("span", {className: "hint"}, " (optional)") : null),
    control,
    block.hint ? h("div", {className: "hint"}, textObj(block.hint)) : null,
    error ? h("div", {className: "bk-error"}, error) : null);
}

// ---------------------------------------------------------------- layout

function render() {
  const s = ui.state;
  document.getElementById("team-name").textContent = s.team.name;
  const switcher = document.getElementById("user-switcher");
  switcher.replaceChildren(...s.users.filter((u) => !u.is_bot).map((u) =>
    h("option", {value: u.id, selected: u.id === ui.me}, `${u.name} — ${u.real_name}${u.is_admin ? " (admin)" : ""}${u.deleted ? " (deactivated)" : ""}`)));

  const channels = s.channels.filter((c) => !c.is_im);
  const dms = s.channels.filter((c) => c.is_im);
  if (!ui.channel || (ui.channel !== HOME && !s.channels.some((c) => c.id === ui.channel))) {
    ui.channel = (channels[0] || dms[0] || {}).id || HOME;
  }
  const item = (id, label, extra) => h("li", {},
    h("a", {href: "#", className: id === ui.channel ? "active" : "", onclick: (e) => { e.preventDefault(); openChannel(id); }},
      label, extra ? h("span", {className: "badge"}, extra) : null));
  document.getElementById("apps").replaceChildren(item(HOME, s.bot.name + " · Home"));
  document.getElementById("channel-list").replaceChildren(...channels.map((c) => item(c.id, "# " + c.name)));
  document.getElementById("dm-list").replaceChildren(...dms.map((c) => item(c.id, s.bot.name + " (app)")));

  renderMain();
  renderThread();
  renderModal();
}

function openChannel(id) {
  ui.channel = id;
  ui.thread = null;
  localStorage.setItem("fwbot.channel", id);
  if (id === HOME) act("home", {}); else render();
}

function current() {
  return ui.state.channels.find((c) => c.id === ui.channel);
}

function renderMain() {
  const header = document.getElementById("channel-header");
  const list = document.getElementById("messages");
  const composer = document.getElementById("composer");
  if (ui.channel === HOME) {
    header.replaceChildren(h("b", {}, ui.state.bot.name), h("span", {className: "hint"}, " · Home"));
    const home = ui.state.home;
    list.replaceChildren(home ? h("div", {className: "home"}, renderBlocks(home.view.blocks, {kind: "view", viewId: home.id}, home.errors))
      : h("div", {className: "empty"}, "The app has not published a Home tab for you yet."));
    composer.hidden = true;
    return;
  }
  composer.hidden = false;
  const channel = current();
  header.replaceChildren(...[h("b", {}, channel.is_im ? ui.state.bot.name : "# " + channel.name),
    !channel.is_member ? h("span", {className: "hint"}, " · you are not a member") : null,
    channel.is_archived ? h("span", {className: "warning"}, " · archived (/unarchive brings it back)") : null,
    ui.state.events_url ? null : h("span", {className: "warning"}, " · no app connected (events_url not set)")]
    .filter(Boolean));
  const top = channel.messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts || m.reply_broadcast);
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...(top.length ? top.map((m) => renderMessage(m, channel, true))
    : [h("div", {className: "empty"}, "No messages yet. Try /fw help")]));
  if (atBottom || !renderMain.seen) list.scrollTop = list.scrollHeight;
  renderMain.seen = true;
}

const AVATAR_COLOURS = ["#e01e5a", "#2eb67d", "#ecb22e", "#36c5f0", "#4a154b", "#1264a3", "#e8912d", "#7c3085"];

function avatar(m) {
  if (m.user === ui.state.bot.id) return h("div", {className: "avatar bot", "aria-hidden": "true"}, "fw");
  if (m.is_bot) return h("div", {className: "avatar slackbot", "aria-hidden": "true"}, "S");
  let hash = 0;
  for (const c of m.user || "") hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return h("div", {className: "avatar", style: `background:${AVATAR_COLOURS[hash % AVATAR_COLOURS.length]}`,
    "aria-hidden": "true"}, (m.user_name || "?").slice(0, 1).toUpperCase());
}

function renderMessage(m, channel, withReplies) {
  const ctx = {kind: "message", channel: channel.id, ts: m.ts};
  return h("article", {className: "message" + (m.ephemeral ? " ephemeral" : ""), "data-ts": m.ts},
    m.command_echo ? h("div", {className: "hint echo"}, m.command_echo) : null,
    avatar(m),
    h("div", {className: "message-body"}, messageBody(m, ctx, withReplies)));
}

function messageBody(m, ctx, withReplies) {
  return [
    h("div", {className: "meta"},
      h("b", {}, m.user_name), m.user === ui.state.bot.id ? h("span", {className: "app-tag"}, "APP") : null,
      h("time", {title: m.ts}, tsTime(m.ts)),
      m.edited ? h("span", {className: "hint"}, "(edited)") : null),
    m.blocks && m.blocks.length ? renderBlocks(m.blocks, ctx) : h("div", {className: "bk-text"}, mrkdwn(m.text)),
    (m.files || []).map((f) => f.mimetype && f.mimetype.startsWith("image/")
      ? h("a", {href: f.url_private, target: "_blank"}, h("img", {className: "file-image", src: f.url_private, alt: f.title || f.name}))
      : h("a", {className: "file", href: f.url_private, target: "_blank"}, "📎 " + (f.title || f.name))),
    m.ephemeral ? h("div", {className: "ephemeral-note"}, "👁 Only visible to you") : null,
    withReplies && m.reply_count ? h("a", {href: "#", className: "replies", onclick: (e) => {
      e.preventDefault(); ui.thread = m.ts; render(); }}, `${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}`) : null];
}

function renderThread() {
  const pane = document.getElementById("thread");
  const channel = ui.channel !== HOME && current();
  const parent = channel && ui.thread && channel.messages.find((m) => m.ts === ui.thread);
  pane.hidden = !parent;
  if (!parent) return;
  const replies = channel.messages.filter((m) => m.thread_ts === parent.ts && m.ts !== parent.ts);
  document.getElementById("thread-messages").replaceChildren(renderMessage(parent, channel, false),
    h("div", {className: "hint divider-label"}, `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`),
    ...replies.map((m) => renderMessage(m, channel, false)));
}

function renderModal() {
  const root = document.getElementById("modal-root");
  const views = ui.state.views;
  const top = views[views.length - 1];
  // Re-render only when the view itself changed, so typing is not interrupted by live updates.
  const key = top ? `${top.id}|${top.view.hash}|${JSON.stringify(top.errors)}|${views.length}` : "";
  if (key === renderModal.key && root.querySelector(".overlay.view")) return;
  renderModal.key = key;
  // Keep focus on the same input across a re-render (the app updated the view while we typed).
  const focused = document.activeElement && document.activeElement.closest(".overlay.view")
    ? document.activeElement.getAttribute("data-input") : null;
  root.querySelectorAll(".overlay.view").forEach((el) => el.remove());
  if (!top) return;
  const view = top.view;
  pruneDrafts(top.id, view.blocks);
  const ctx = {kind: "view", viewId: top.id};
  const close = () => act("close", {view_id: top.id});
  const submit = (e) => {
    e.preventDefault();
    act("submit", {view_id: top.id, values: ui.drafts[top.id] || {}});
  };
  const overlay = h("div", {className: "overlay view"},
    h("form", {className: "modal", role: "dialog", "aria-modal": "true", "aria-label": view.title ? view.title.text : "Modal",
      novalidate: true, onsubmit: submit, "data-view-id": top.id, "data-view-hash": view.hash},
      h("div", {className: "modal-title"},
        views.length > 1 ? h("button", {type: "button", className: "link", onclick: close}, "‹ ") : null,
        textObj(view.title), h("button", {type: "button", className: "x", "aria-label": "Close", onclick: close}, "×")),
      h("div", {className: "modal-body"},
        top.errors[""] ? h("div", {className: "bk-error"}, top.errors[""]) : null,
        renderBlocks(view.blocks, ctx, top.errors)),
      h("div", {className: "modal-footer"},
        h("button", {type: "button", onclick: close}, view.close ? view.close.text : "Cancel"),
        view.submit ? h("button", {type: "submit", className: "bk-button primary"}, view.submit.text) : null)));
  root.prepend(overlay);
  const again = focused && overlay.querySelector(`[data-input="${CSS.escape(focused)}"]`);
  if (again) again.focus();
}

// ---------------------------------------------------------------- wiring

function composer(formId, inputId, threadTs) {
  const form = document.getElementById(formId);
  const input = document.getElementById(inputId);
  const send = async () => {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await act("command", {channel: ui.channel, text, thread_ts: threadTs ? threadTs() : null});
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
  });
}

function start() {
  composer("composer", "composer-input", null);
  composer("thread-composer", "thread-input", () => ui.thread);
  document.getElementById("thread-close").addEventListener("click", () => { ui.thread = null; render(); });
  document.getElementById("user-switcher").addEventListener("change", async (e) => {
    ui.me = e.target.value;
    localStorage.setItem("fwbot.me", ui.me);
    ui.drafts = {};
    await refresh();
    if (ui.channel === HOME) act("home", {});
  });
  const events = new EventSource("/_ui/events");
  events.addEventListener("change", () => refresh());
  refresh();
}

start();
