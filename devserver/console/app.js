"use strict";
// The API Tokens settings page. Plain JavaScript, no build step.
// Who calls: auth.js (sign-in, the ID token, sign-out); the hooks it needs are at the end.

const $ = (selector) => document.querySelector(selector);
const DAY_MS = 86400000;
const HOUR_MS = 3600000;
// The overlap a regeneration leaves the old token (the API's ISO-8601 durations).
const GRACE_MS = { PT0S: 0, PT1H: HOUR_MS, P1D: DAY_MS, P7D: 7 * DAY_MS, P30D: 30 * DAY_MS };
const state = {
  role: null,
  next: null,
  policy: null,
  hints: new Map(), // token id -> display hint, to name a replaced or replacing token
  regenerating: null, // the token the regenerate dialog is for
  afterSecret: null, // the token id whose row takes the focus when the new secret is dismissed
  loading: Promise.resolve(),
};

async function api(method, path, { body, query } = {}) {
  await ConsoleAuth.ensureFresh(draftOfGenerateForm); // an expired session signs in again first
  const url = new URL(ConsoleAuth.apiUrl() + path);
  Object.entries(query || {}).forEach(([key, value]) => {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  });
  const headers = ConsoleAuth.headers();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  await ConsoleAuth.answered(response.status, draftOfGenerateForm); // a refused session signs out
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: { message: text } }; }
  return { status: response.status, data };
}

function showPageError(message) {
  const box = $("#page-error");
  box.textContent = message || "";
  box.hidden = !message;
}

function errorMessage(data) {
  return (data && data.error && data.error.message) || "Something went wrong.";
}

const isoDate = (date) => date.toISOString().slice(0, 10);
const formatDate = (iso) => (iso ? iso.replace("T", " ").replace(/:\d\dZ$/, " UTC") : "—");

// -- generate ---------------------------------------------------------------------------

// Each form has an error slot per field ([data-error-for=field]) and one for the whole form.
function clearFieldErrors(form = $("#generate-form")) {
  form.querySelectorAll(".field-error").forEach((node) => { node.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

// Shows [{field, reason}] next to the fields (the server's 400 answer, or the console's own
// checks), focuses the first field in error; anything else goes to the form's own slot.
function showFieldErrors(data, form = $("#generate-form")) {
  const fields = (data && data.error && data.error.fields) || [];
  let first = null;
  for (const { field, reason } of fields) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot || field === "form") continue;
    slot.textContent = reason;
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
    first = first || input;
  }
  if (first) first.focus();
  else form.querySelector('[data-error-for="form"]').textContent = errorMessage(data);
}

function openGenerate() {
  $("#generate").hidden = false;
  $("#token-name").focus();
}

function closeGenerate() {
  $("#generate-form").reset();
  setExpiryBounds();
  clearFieldErrors();
  $("#generate").hidden = true;
  $("#generate-open").focus();
}

function setExpiryBounds() {
  const policy = state.policy;
  if (!policy) return;
  const today = new Date();
  const input = $("#token-expiry");
  input.min = isoDate(today);
  input.max = isoDate(new Date(today.getTime() + policy.max_lifetime_days * DAY_MS));
  input.value = isoDate(new Date(today.getTime() + policy.default_lifetime_days * DAY_MS));
  $("#expiry-hint").textContent =
    `Valid through the chosen day (UTC). At most ${policy.max_lifetime_days} days ahead, as your organisation allows.`;
}

async function submitGenerate(event) {
  event.preventDefault();
  clearFieldErrors();
  const scopes = [...document.querySelectorAll("#scope-list input:checked")].map((box) => box.value);
  const body = { name: $("#token-name").value, scopes };
  if ($("#token-expiry").value) body.expires_at = $("#token-expiry").value;
  const { status, data } = await api("POST", "/tokens", { body });
  if (status !== 201) {
    showFieldErrors(data);
    return;
  }
  $("#generate-form").reset();
  setExpiryBounds();
  $("#generate").hidden = true;
  showSecret(data.token, "", null);
  await loadTokens();
}

// The secret of a new token, shown this once: it leaves the page when dismissed.
function showSecret(secret, note, focusAfter) {
  $("#new-token-value").value = secret;
  $("#new-token-note").textContent = note;
  $("#new-token-note").hidden = !note;
  $("#copy-status").textContent = "";
  state.afterSecret = focusAfter;
  $("#new-token").hidden = false;
  $("#new-token-value").focus();
  $("#new-token-value").select();
}

async function copyToken() {
  const input = $("#new-token-value");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch (_) {
    input.select();
    document.execCommand("copy");
  }
  $("#copy-status").textContent = "Copied to the clipboard.";
}

function dismissNewToken() {
  $("#new-token-value").value = ""; // the secret leaves the page
  $("#new-token-note").textContent = "";
  $("#new-token").hidden = true;
  const row = state.afterSecret && rowOf(state.afterSecret);
  state.afterSecret = null;
  ((row && row.querySelector("button")) || $("#generate-open")).focus();
}

// -- regenerate -----------------------------------------------------------------------------

function rowOf(tokenId) {
  return [...document.querySelectorAll("#token-rows tr")].find((row) => row.dataset.tokenId === tokenId) || null;
}

const formatInstant = (ms) => formatDate(new Date(ms).toISOString().replace(/\.\d+Z$/, "Z"));

function chosenGrace() {
  const checked = $("#regenerate-form").querySelector('input[name="grace"]:checked');
  return checked ? checked.value : "P1D";
}

// In plain words, until when the old token keeps working with the chosen grace period (never
// past its own expiry).
function describeGrace() {
  const token = state.regenerating;
  if (!token) return;
  const grace = GRACE_MS[chosenGrace()];
  const ownExpiry = Date.parse(token.expires_at);
  const until = Date.now() + grace;
  let text;
  if (grace === 0) text = "The old token stops working as soon as the new one is created.";
  else if (until >= ownExpiry) {
    text = `The old token keeps working until its own expiry, ${formatDate(token.expires_at)}, then stops.`;
  } else {
    text = `The old token keeps working until about ${formatInstant(until)}, so you have time to put the new one ` +
      "in its place. Then it stops working.";
  }
  $("#grace-hint").textContent = text;
}

function openRegenerate(token) {
  state.regenerating = token;
  const form = $("#regenerate-form");
  form.reset();
  clearFieldErrors(form);
  $("#regenerate-name").textContent = token.name;
  const input = $("#regenerate-expiry");
  const policy = state.policy;
  if (policy) {
    const today = new Date();
    input.min = isoDate(today);
    input.max = isoDate(new Date(today.getTime() + policy.max_lifetime_days * DAY_MS));
    $("#regenerate-expiry-hint").textContent =
      `Leave empty for your organisation's default, ${policy.default_lifetime_days} days from now. ` +
      `At most ${policy.max_lifetime_days} days ahead.`;
  } else {
    $("#regenerate-expiry-hint").textContent = "Leave empty for your organisation's default lifetime.";
  }
  describeGrace();
  $("#regenerate").showModal();
  form.querySelector('input[name="grace"]:checked').focus();
}

function closeRegenerate() {
  $("#regenerate").close(); // the close event puts the focus back
}

function regenerateClosed() {
  const token = state.regenerating;
  state.regenerating = null;
  $("#regenerate-form").reset();
  clearFieldErrors($("#regenerate-form"));
  if (!$("#new-token").hidden) return; // the new secret has the focus
  const row = token && rowOf(token.token_id);
  const button = row && row.querySelector(".regenerate");
  (button || $("#generate-open")).focus();
}

async function submitRegenerate(event) {
  event.preventDefault();
  const form = $("#regenerate-form");
  const token = state.regenerating;
  if (!token) return;
  clearFieldErrors(form);
  const body = { grace: chosenGrace() };
  if ($("#regenerate-expiry").value) body.expires_at = $("#regenerate-expiry").value;
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  let answer;
  try {
    answer = await api("POST", `/tokens/${encodeURIComponent(token.token_id)}/rotate`, { body });
  } finally {
    submit.disabled = false;
  }
  const { status, data } = answer;
  if (status !== 201) {
    showFieldErrors(data, form);
    if (status === 409 || status === 404) await loadTokens(); // the list was out of date
    return;
  }
  const old = data.replaced;
  const note = old.status === "active"
    ? `It replaces "${old.name}", which keeps working until ${formatDate(old.expires_at)}.`
    : `It replaces "${old.name}", which no longer works.`;
  $("#regenerate").close(); // first: what lies outside a modal dialog cannot take the focus
  showSecret(data.token, note, data.token_id);
  $("#bulk-status").textContent = `Regenerated "${old.name}".`;
  await loadTokens();
}

// -- list and revoke ----------------------------------------------------------------------

function cell(text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  if (label) td.dataset.label = label; // the column's name, shown on narrow screens
  return td;
}

function actionButton(text, className, label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

const hintOf = (tokenId) => state.hints.get(tokenId) || "a newer token";

// What became of a token beyond its status: replaced (and until when it still works),
// replacing another, disabled by whom.
function lifecycleNotes(token) {
  const notes = [];
  if (token.rotated_to) {
    notes.push(token.status === "active" || token.status === "disabled"
      ? `Replaced by ${hintOf(token.rotated_to)}; stops working ${formatDate(token.expires_at)}`
      : `Replaced by ${hintOf(token.rotated_to)}`);
  }
  if (token.rotated_from) notes.push(`Replaces ${state.hints.get(token.rotated_from) || "an earlier token"}`);
  if (token.status === "disabled" && token.disabled_at) {
    notes.push(`Disabled ${formatDate(token.disabled_at)}${token.disabled_by ? ` by ${token.disabled_by}` : ""}`);
  }
  return notes;
}

function tokenRow(token, showOwner) {
  const row = document.createElement("tr");
  row.dataset.tokenId = token.token_id;
  const select = document.createElement("input");
  select.type = "checkbox";
  select.className = "row-select";
  select.value = token.token_id;
  select.disabled = token.status !== "active" && token.status !== "disabled";
  select.setAttribute("aria-label", `Select ${token.name}`);
  select.addEventListener("change", updateBulkButton);
  const selectCell = cell("", "Select");
  selectCell.className = "select-cell";
  selectCell.append(select);
  row.append(selectCell, cell(token.name, "Name"));
  if (showOwner) row.append(cell(token.owner_id, "Owner"));
  const hint = cell("", "Token");
  const code = document.createElement("code");
  code.textContent = token.display_hint;
  hint.append(code);
  const status = cell("", "Status");
  const statusBox = document.createElement("div");
  const badge = document.createElement("span");
  badge.className = `status status-${token.status}`;
  badge.textContent = token.status;
  statusBox.append(badge);
  for (const note of lifecycleNotes(token)) {
    const line = document.createElement("small");
    line.className = "lifecycle";
    line.textContent = note;
    statusBox.append(line);
  }
  status.append(statusBox);
  const actions = document.createElement("div");
  actions.className = "row-actions";
  if (token.status === "active" && !token.rotated_to) {
    actions.append(actionButton("Regenerate", "regenerate", `Regenerate ${token.name}`, () => openRegenerate(token)));
  }
  if (token.status === "active") {
    actions.append(actionButton("Disable", "toggle", `Disable ${token.name}`, () => setEnabled(token, false)));
  }
  if (token.status === "disabled") {
    actions.append(actionButton("Enable", "toggle", `Enable ${token.name}`, () => setEnabled(token, true)));
  }
  if (token.status === "active" || token.status === "disabled") {
    actions.append(actionButton("Revoke", "revoke", `Revoke ${token.name}`, () => revokeOne(token)));
  }
  const actionsCell = cell("", "Actions");
  actionsCell.className = "actions-cell";
  actionsCell.append(actions);
  row.append(hint, cell(token.scopes.join(", "), "Scopes"), status, cell(formatDate(token.expires_at), "Expires"),
    cell(token.last_used_at ? formatDate(token.last_used_at) : "Never", "Last used"), actionsCell);
  return row;
}

async function loadTokens(append = false) {
  const allUsers = state.role === "admin" && $("#all-users").checked;
  const query = { status: $("#status-filter").value, limit: 50, all_users: allUsers ? "true" : "" };
  if (append && state.next) query.next = state.next;
  const { status, data } = await api("GET", "/tokens", { query });
  if (status !== 200) { showPageError(errorMessage(data)); return; }
  showPageError("");
  const rows = $("#token-rows");
  if (!append) { rows.replaceChildren(); state.hints.clear(); }
  data.items.forEach((token) => state.hints.set(token.token_id, token.display_hint));
  document.querySelectorAll(".owner-col").forEach((node) => { node.hidden = !allUsers; });
  data.items.forEach((token) => rows.append(tokenRow(token, allUsers)));
  state.next = data.next;
  $("#load-more").hidden = !data.next;
  $("#empty").hidden = rows.children.length > 0;
  $("#list-title").textContent = allUsers ? "Organisation tokens" : "Your tokens";
  $("#select-all").checked = false;
  updateBulkButton();
}

function selectedIds() {
  return [...document.querySelectorAll(".row-select:checked")].map((box) => box.value);
}

function updateBulkButton() {
  const count = selectedIds().length;
  const button = $("#revoke-selected");
  button.disabled = count === 0;
  button.textContent = count ? `Revoke selected (${count})` : "Revoke selected";
}

async function revokeOne(token) {
  if (!window.confirm(`Revoke "${token.name}"? Anything using it stops working at once.`)) return;
  const { status, data } = await api("DELETE", `/tokens/${encodeURIComponent(token.token_id)}`);
  if (status !== 200) { showPageError(errorMessage(data)); return; }
  $("#bulk-status").textContent = `Revoked "${token.name}".`;
  await loadTokens();
}

async function setEnabled(token, enabled) {
  const { status, data } = await api("PATCH", `/tokens/${encodeURIComponent(token.token_id)}`, { body: { enabled } });
  if (status !== 200) { await loadTokens(); showPageError(errorMessage(data)); return; } // the list was out of date
  $("#bulk-status").textContent = enabled
    ? `Enabled "${token.name}". It works again.`
    : `Disabled "${token.name}". It is refused until you enable it again.`;
  await loadTokens();
  // The button pressed is gone with the old row: the focus goes to its counterpart.
  const row = rowOf(token.token_id);
  const toggle = row && row.querySelector(".toggle");
  ((toggle || (row && row.querySelector("button"))) || $("#status-filter")).focus();
}

async function revokeSelected() {
  const ids = selectedIds();
  if (!ids.length) return;
  if (!window.confirm(`Revoke ${ids.length} token(s)? Anything using them stops working at once.`)) return;
  const { status, data } = await api("POST", "/tokens/revoke", { body: { token_ids: ids } });
  if (status !== 200) { showPageError(errorMessage(data)); return; }
  $("#bulk-status").textContent =
    `Revoked ${data.revoked}, already revoked ${data.already_revoked}, not found ${data.not_found}.`;
  await loadTokens();
}

// -- start-up --------------------------------------------------------------------------------

async function loadScopes() {
  const { status, data } = await api("GET", "/scopes");
  const list = $("#scope-list");
  list.replaceChildren();
  if (status !== 200) { showPageError(errorMessage(data)); return; }
  state.role = data.role;
  data.scopes.forEach((scope) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "scopes";
    box.value = scope.name;
    const text = document.createElement("span");
    const name = document.createElement("code");
    name.textContent = scope.name;
    const description = document.createElement("small");
    description.textContent = ` ${scope.description}`;
    text.append(name, description);
    label.append(box, text);
    list.append(label);
  });
  $("#org-toggle").hidden = state.role !== "admin";
  if (state.role !== "admin") $("#all-users").checked = false;
}

async function loadPolicy() {
  const { status, data } = await api("GET", "/settings");
  if (status === 200) { state.policy = data; setExpiryBounds(); }
}

// -- organisation policy (admins) ----------------------------------------------------------

const POLICY_FIELDS = [
  { name: "max_lifetime_days", min: 1, max: 3650, unit: "days", what: "The maximum lifetime" },
  { name: "default_lifetime_days", min: 1, max: 3650, unit: "days", what: "The default lifetime" },
  { name: "max_active_tokens_per_user", min: 1, max: 1000, unit: "tokens", what: "The number of active tokens" },
  {
    name: "revoke_unused_after_days", min: 30, max: 365, unit: "days", what: "The number of unused days",
    off: "or leave the field empty to keep unused tokens",
  },
];

function showSettings() {
  const section = $("#settings");
  section.hidden = state.role !== "admin" || !state.policy;
  if (section.hidden) return;
  const form = $("#settings-form");
  clearFieldErrors(form);
  for (const { name } of POLICY_FIELDS) {
    const value = state.policy[name];
    form.elements[name].value = value === null || value === undefined ? "" : String(value);
  }
  $("#settings-status").textContent = "";
}

// The console's own checks, in plain words; the server has the last word (its 400 answer is
// shown the same way, next to the field).
function readSettings(form) {
  const body = {};
  const fields = [];
  for (const { name, min, max, unit, what, off } of POLICY_FIELDS) {
    const text = form.elements[name].value.trim();
    const range = `from ${min} to ${max} ${unit}`;
    let reason = null;
    if (!text) {
      if (off) { body[name] = null; continue; }
      reason = `Enter a number ${range}.`;
    } else if (!/^\d+$/.test(text)) {
      reason = `Enter a whole number ${range}, in digits only${off ? `, ${off}` : ""}.`;
    } else if (Number(text) < min || Number(text) > max) {
      reason = `${what} must be ${range}, not ${text}${off ? `. Choose a number in that range ${off}` : ""}.`;
    }
    if (reason) fields.push({ field: name, reason });
    else body[name] = Number(text);
  }
  return { body, fields };
}

async function submitSettings(event) {
  event.preventDefault();
  const form = $("#settings-form");
  clearFieldErrors(form);
  $("#settings-status").textContent = "";
  const { body, fields } = readSettings(form);
  if (fields.length) { showFieldErrors({ error: { fields } }, form); return; }
  const { status, data } = await api("PUT", "/settings", { body });
  if (status !== 200) { showFieldErrors(data, form); return; }
  state.policy = data;
  setExpiryBounds();
  showSettings();
  const days = data.revoke_unused_after_days;
  $("#settings-status").textContent = days
    ? `Saved. Tokens unused for ${days} days stop working and are revoked.`
    : "Saved. Unused tokens are kept.";
}

async function start() {
  await Promise.all([loadScopes(), loadPolicy()]);
  showSettings();
  await loadTokens();
  restoreDraft(ConsoleAuth.takeDraft());
}

$("#generate-open").addEventListener("click", openGenerate);
$("#generate-cancel").addEventListener("click", closeGenerate);
$("#generate-form").addEventListener("submit", submitGenerate);
$("#copy-token").addEventListener("click", copyToken);
$("#new-token-done").addEventListener("click", dismissNewToken);
$("#status-filter").addEventListener("change", () => loadTokens());
$("#all-users").addEventListener("change", () => loadTokens());
$("#revoke-selected").addEventListener("click", revokeSelected);
$("#load-more").addEventListener("click", () => loadTokens(true));
$("#regenerate-form").addEventListener("submit", submitRegenerate);
$("#regenerate-form").addEventListener("change", describeGrace);
$("#regenerate-cancel").addEventListener("click", closeRegenerate);
$("#regenerate").addEventListener("close", regenerateClosed);
$("#settings-form").addEventListener("submit", submitSettings);
$("#select-all").addEventListener("change", (event) => {
  document.querySelectorAll(".row-select:not(:disabled)").forEach((box) => { box.checked = event.target.checked; });
  updateBulkButton();
});
document.addEventListener("keydown", (event) => {
  // (An open dialog closes itself on Escape.)
  if (event.key === "Escape" && !$("#generate").hidden && !$("#regenerate").open) closeGenerate();
});

// -- sign-in hooks (auth.js) ---------------------------------------------------------------------

// Signing out, switching user or a refused session: nothing of the previous user stays on the
// page, neither a secret nor any message nor their tokens.
function resetSession() {
  $("#new-token-value").value = "";
  $("#new-token-note").textContent = "";
  $("#new-token").hidden = true;
  if ($("#regenerate").open) $("#regenerate").close();
  $("#generate-form").reset();
  clearFieldErrors();
  $("#generate").hidden = true;
  clearFieldErrors($("#settings-form"));
  for (const id of ["#copy-status", "#bulk-status", "#settings-status"]) $(id).textContent = "";
  showPageError("");
  $("#token-rows").replaceChildren();
  $("#scope-list").replaceChildren();
  $("#settings").hidden = true;
  Object.assign(state, { role: null, next: null, policy: null, regenerating: null, afterSecret: null });
  state.hints.clear();
}

// The create form's content, kept across a re-sign-in (none when the form is closed).
function draftOfGenerateForm() {
  if ($("#generate").hidden) return null;
  const scopes = [...document.querySelectorAll("#scope-list input:checked")].map((box) => box.value);
  return { name: $("#token-name").value, expires_at: $("#token-expiry").value, scopes };
}

function restoreDraft(draft) {
  if (!draft) return;
  openGenerate();
  $("#token-name").value = draft.name || "";
  if (draft.expires_at) $("#token-expiry").value = draft.expires_at;
  document.querySelectorAll("#scope-list input").forEach((box) => { box.checked = (draft.scopes || []).includes(box.value); });
}

ConsoleAuth.begin({
  onReset: resetSession,
  onSwitch: () => { state.loading = state.loading.then(start); }, // one load at a time: the last identity wins
}).then((signedIn) => { if (signedIn) state.loading = start(); });
