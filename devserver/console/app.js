"use strict";
// The API Tokens settings page. Plain JavaScript, no build step; user-controlled text goes in
// with textContent only (never as HTML), and no inline script or style (the CSP refuses them).
// Who calls: auth.js (sign-in, the ID token, sign-out); the hooks it needs are at the end.

const $ = (selector) => document.querySelector(selector);
const DAY_MS = 86400000;
const HOUR_MS = 3600000;
const SOON_DAYS = 7; // a token expiring within this many days is marked "Expires soon"
const PAGE_SIZE = 100; // GET /tokens' largest page
const BULK_CHUNK = 100; // POST /tokens/revoke takes at most 100 ids
const EVERYONE = "*"; // the owner filter's "every owner" (admins)
const AUDIT_PAGE = 50; // GET /audit's page size (at most 100)
const MAX_CIDRS = 20; // POST /tokens takes at most 20 allowlist entries
// The overlap a regeneration leaves the old token (the API's ISO-8601 durations).
const GRACE_MS = { PT0S: 0, PT1H: HOUR_MS, P1D: DAY_MS, P7D: 7 * DAY_MS, P30D: 30 * DAY_MS };
const state = {
  role: null,
  policy: null,
  tokens: [], // every token of the listing, all pages loaded (the admin's: the organisation's)
  shown: [], // the tokens the filters and the sort leave, in display order
  selected: new Set(), // ids of the selected tokens (shown ones only)
  hints: new Map(), // token id -> display hint, to name a replaced or replacing token
  loaded: false,
  generation: 0, // the latest list load; an older one's answer is dropped
  regenerating: null, // the token the regenerate dialog is for
  sentCidrs: [], // the allowlist entries of the last create sent
  detailsOf: null, // the token the details dialog shows
  afterSecret: null, // the token id whose row takes the focus when the new secret is dismissed
  confirming: null, // {resolve, typed} of the open confirmation dialog
  loading: Promise.resolve(),
  audit: { records: [], next: null, query: {}, generation: 0, loaded: false },
};

async function api(method, path, { body, query } = {}) {
  await ConsoleAuth.ensureFresh(draftOfGenerateForm); // an expired session signs in again first
  const url = new URL(ConsoleAuth.apiUrl() + path);
  Object.entries(query || {}).forEach(([key, value]) => {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  });
  const headers = ConsoleAuth.headers();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (_) {
    return { status: 0, data: { error: { message: "The console API could not be reached. Check your connection and try again." } } };
  }
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
  return (data && data.error && data.error.message) || "Something went wrong. Try again in a moment.";
}

const isoDate = (date) => date.toISOString().slice(0, 10);
const formatDate = (iso) => (iso ? iso.replace("T", " ").replace(/:\d\dZ$/, " UTC") : "—");
const formatDay = (iso) => (iso ? iso.slice(0, 10) : "—"); // the list's columns; the details give the time
const plural = (count, one, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
const me = () => ConsoleAuth.identity().userId;
const ownerName = (ownerId) => (ownerId === me() ? "you" : ownerId);
const isRevocable = (token) => token.status === "active" || token.status === "disabled";
const daysLeft = (token) => (Date.parse(token.expires_at) - Date.now()) / DAY_MS;
const expiresSoon = (token) => isRevocable(token) && daysLeft(token) <= SOON_DAYS;

// -- views: the token list (#tokens) and the organisation's settings (#settings, admins) ----------

// The admins' views; anyone else (or nobody signed in) sees the token list.
const ADMIN_VIEWS = { settings: "Organisation settings", audit: "Audit log" };

function currentView() {
  const name = window.location.hash.slice(1);
  return state.role === "admin" && Object.hasOwn(ADMIN_VIEWS, name) ? name : "tokens";
}

function showView(moveFocus) {
  const view = currentView();
  const admin = state.role === "admin";
  const links = [[$("#nav-tokens"), "tokens"], [$("#nav-settings"), "settings"], [$("#nav-audit"), "audit"]];
  for (const [link, name] of links) {
    $(`#view-${name}`).hidden = view !== name;
    if (name !== "tokens") link.hidden = !admin;
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const title = ADMIN_VIEWS[view] || "API Tokens";
  $("#page-title").textContent = title;
  document.title = `${title} · Settings`;
  if (view === "settings") showSettings();
  if (view === "audit") loadAudit(); // each visit: the changes made meanwhile
  if (moveFocus) $("#page-title").focus();
}

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
  for (const problem of fields) {
    const { field, reason } = sayProblem(problem, form);
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot || field === "form") continue;
    slot.textContent = slot.textContent ? `${slot.textContent} ${reason}` : reason;
    let input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (input && input.closest("[hidden]")) { // the date of a preset: the preset chosen takes the focus
      input = form.querySelector('input[name="expiry_preset"]:checked') || input;
    }
    if (input) input.setAttribute("aria-invalid", "true");
    first = first || input;
  }
  if (first) first.focus();
  else form.querySelector('[data-error-for="form"]').textContent = errorMessage(data);
}

// The server names a list entry by its index (allowed_cidrs.3): that field's slot gets the
// reason, saying which entry it is about. The server's reasons for these fields ("is not ...",
// "must be ...") become sentences naming the field; the others are shown as they come.
const FIELD_NAMES = {
  allowed_cidrs: "The allowed addresses", since: "The start date", until: "The end date", token_id: "The token id",
  actor: "The actor", action: "The action",
};

function sayProblem({ field, reason }, form) {
  const text = String(reason || "is not valid");
  const sentence = (subject) => {
    const full = /^[A-Z]/.test(text) ? text : `${subject} ${text}`;
    return /[.!?]$/.test(full) ? full : `${full}.`;
  };
  const entry = /^allowed_cidrs\.(\d+)$/.exec(String(field));
  if (entry) {
    const index = Number(entry[1]);
    const value = state.sentCidrs[index];
    const which = value === undefined ? `Entry ${index + 1}` : `Entry ${index + 1}, "${value}",`;
    return { field: "allowed_cidrs", reason: sentence(which) };
  }
  if (!Object.hasOwn(FIELD_NAMES, field)) return { field, reason: text };
  return { field, reason: sentence(FIELD_NAMES[field]) };
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

const todayUtc = () => new Date(`${isoDate(new Date())}T00:00:00Z`);
const daysAhead = (days) => isoDate(new Date(todayUtc().getTime() + days * DAY_MS));

// The presets within the organisation's maximum are offered; the others are disabled, saying why.
function setExpiryBounds() {
  const policy = state.policy;
  if (!policy) return;
  const input = $("#token-expiry");
  input.min = daysAhead(1);
  input.max = daysAhead(policy.max_lifetime_days);
  let choice = "custom";
  document.querySelectorAll('#expiry-presets input[name="expiry_preset"]').forEach((radio) => {
    if (radio.value === "custom") return;
    const days = Number(radio.value);
    const allowed = days <= policy.max_lifetime_days;
    radio.disabled = !allowed;
    radio.closest("label").classList.toggle("unavailable", !allowed);
    radio.nextElementSibling.textContent = allowed
      ? `${days} days`
      : `${days} days (over your organisation's maximum of ${policy.max_lifetime_days})`;
    if (allowed && days === policy.default_lifetime_days) choice = radio.value;
  });
  // A default that is no preset: "Custom date", set to the default.
  $(`#expiry-presets input[value="${choice}"]`).checked = true;
  input.value = daysAhead(policy.default_lifetime_days);
  presetChanged();
}

function chosenPreset() {
  const checked = $('#expiry-presets input[name="expiry_preset"]:checked');
  return checked ? checked.value : "custom";
}

// A preset sets the date; "Custom date" shows the date field. The hint says the resulting day.
function presetChanged() {
  const policy = state.policy;
  const preset = chosenPreset();
  const input = $("#token-expiry");
  $("#custom-expiry").hidden = preset !== "custom";
  if (preset !== "custom") input.value = daysAhead(Number(preset));
  const limit = policy ? ` Your organisation allows at most ${policy.max_lifetime_days} days.` : "";
  $("#expiry-hint").textContent = input.value
    ? `The token works until the end of ${input.value} (UTC), then expires.${limit}`
    : `Choose the last day the token works.${limit}`;
}

// The console's own checks, in plain words, before anything is sent.
function checkGenerate(body) {
  const fields = [];
  if (!body.name.trim()) {
    fields.push({ field: "name", reason: "The name must not be empty: give the token a name you will recognise." });
  }
  const policy = state.policy;
  if (!body.expires_at) {
    fields.push({ field: "expires_at", reason: "Choose an expiration date, or one of the periods above." });
  } else if (body.expires_at < daysAhead(1)) {
    fields.push({ field: "expires_at", reason: "The expiration date must be in the future: choose tomorrow or later." });
  } else if (policy && body.expires_at > daysAhead(policy.max_lifetime_days)) {
    fields.push({
      field: "expires_at",
      reason: `The expiration date is too far ahead: your organisation allows at most ${policy.max_lifetime_days} ` +
        `days, so choose ${daysAhead(policy.max_lifetime_days)} or earlier.`,
    });
  }
  if (!body.scopes.length) fields.push({ field: "scopes", reason: "Choose at least one scope: a token without scopes can do nothing." });
  if (body.allowed_cidrs && body.allowed_cidrs.length > MAX_CIDRS) {
    fields.push({
      field: "allowed_cidrs",
      reason: `List at most ${MAX_CIDRS} addresses or networks, not ${body.allowed_cidrs.length}: ` +
        "a wider network (a shorter prefix, such as /16) can cover several.",
    });
  }
  return fields;
}

// The allowlist as typed: one entry per line or separated by commas (or spaces).
const cidrsOf = (text) => String(text || "").split(/[\s,;]+/).filter(Boolean);

async function submitGenerate(event) {
  event.preventDefault();
  clearFieldErrors();
  const scopes = [...document.querySelectorAll("#scope-list input:checked")].map((box) => box.value);
  const body = { name: $("#token-name").value, scopes, expires_at: $("#token-expiry").value };
  const cidrs = cidrsOf($("#token-cidrs").value);
  if (cidrs.length) body.allowed_cidrs = cidrs;
  state.sentCidrs = cidrs; // to name an entry the server refuses
  const problems = checkGenerate(body);
  if (problems.length) { showFieldErrors({ error: { fields: problems } }); return; }
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
  $("#copy-status").textContent = "";
  $("#new-token").hidden = true;
  const row = state.afterSecret && rowOf(state.afterSecret);
  state.afterSecret = null;
  ((row && (row.querySelector("button.regenerate") || row.querySelector("button"))) || $("#generate-open")).focus();
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
    input.min = daysAhead(1);
    input.max = daysAhead(policy.max_lifetime_days);
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

// -- confirmation dialogs (revoke): the owner named; bulk ones ask to type who ----------------------

// Resolves true when confirmed. `typed`: the exact text the user must type (a user or organisation id).
function confirmAction({ title, message, confirmText, owners = [], typed = null, typedLabel = "" }) {
  const dialog = $("#confirm");
  const form = $("#confirm-form");
  if (state.confirming) state.confirming.resolve(false);
  clearFieldErrors(form);
  $("#confirm-title").textContent = title;
  $("#confirm-message").textContent = message;
  $("#confirm-ok").textContent = confirmText;
  const list = $("#confirm-owners");
  list.replaceChildren(...owners.map((line) => {
    const item = document.createElement("li");
    item.textContent = line;
    return item;
  }));
  list.hidden = owners.length === 0;
  $("#confirm-typed").hidden = typed === null;
  $("#confirm-label").textContent = typedLabel;
  $("#confirm-input").value = "";
  return new Promise((resolve) => {
    state.confirming = { resolve, typed };
    dialog.showModal();
    (typed === null ? $("#confirm-cancel") : $("#confirm-input")).focus();
  });
}

function submitConfirm(event) {
  event.preventDefault();
  const pending = state.confirming;
  if (!pending) return;
  const form = $("#confirm-form");
  clearFieldErrors(form);
  if (pending.typed !== null && $("#confirm-input").value.trim() !== pending.typed) {
    const typed = $("#confirm-input").value.trim();
    showFieldErrors({
      error: {
        fields: [{
          field: "confirmation",
          reason: typed
            ? `That is not it: type ${pending.typed} exactly, or cancel.`
            : `Type ${pending.typed} to confirm, or cancel.`,
        }],
      },
    }, form);
    return;
  }
  state.confirming = null;
  $("#confirm").close();
  pending.resolve(true);
}

function confirmClosed() {
  const pending = state.confirming;
  state.confirming = null;
  clearFieldErrors($("#confirm-form"));
  $("#confirm-input").value = "";
  if (pending) pending.resolve(false); // cancelled (the button or Escape)
}

// -- list -------------------------------------------------------------------------------------

function cell(text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  if (label) td.dataset.label = label; // the column's name, shown on narrow screens
  return td;
}

function dayCell(iso, label) {
  const td = cell(formatDay(iso), label);
  td.className = "day";
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

function soonText(token) {
  const days = Math.floor(daysLeft(token));
  if (days < 1) return "Expires soon: today";
  return `Expires soon: in ${plural(days, "day")}`;
}

function tokenRow(token, showOwner) {
  const row = document.createElement("tr");
  row.dataset.tokenId = token.token_id;
  const select = document.createElement("input");
  select.type = "checkbox";
  select.className = "row-select";
  select.value = token.token_id;
  select.disabled = !isRevocable(token);
  select.checked = state.selected.has(token.token_id);
  select.setAttribute("aria-label", `Select ${token.name}`);
  select.addEventListener("change", () => {
    if (select.checked) state.selected.add(token.token_id);
    else state.selected.delete(token.token_id);
    updateBulkButton();
  });
  const selectCell = cell("", "Select");
  selectCell.className = "select-cell";
  selectCell.append(select);
  const nameCell = cell("", "Name");
  nameCell.className = "name-cell";
  const name = document.createElement("button");
  name.type = "button";
  name.className = "link-button details-link";
  name.textContent = token.name;
  name.setAttribute("aria-haspopup", "dialog");
  name.addEventListener("click", () => openDetails(token));
  nameCell.append(name);
  row.append(selectCell, nameCell);
  if (showOwner) row.append(cell(ownerName(token.owner_id), "Owner"));
  const hint = cell("", "Token");
  const code = document.createElement("code");
  code.textContent = token.display_hint;
  hint.append(code);
  if ((token.allowed_cidrs || []).length) {
    const mark = document.createElement("span");
    mark.className = "allowlist-mark";
    mark.textContent = "Listed addresses only";
    hint.append(mark);
  }
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
  const expires = cell("", "Expires");
  const expiresBox = document.createElement("div");
  expiresBox.append(formatDay(token.expires_at));
  if (expiresSoon(token)) {
    const mark = document.createElement("span");
    mark.className = "soon";
    mark.textContent = soonText(token);
    expiresBox.append(mark);
  }
  expires.append(expiresBox);
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
  if (isRevocable(token)) {
    actions.append(actionButton("Revoke", "revoke", `Revoke ${token.name}`, () => revokeOne(token)));
  }
  const actionsCell = cell("", "Actions");
  actionsCell.className = "actions-cell";
  actionsCell.append(actions);
  row.append(hint, cell(token.scopes.join(", "), "Scopes"), status, dayCell(token.created_at, "Created"),
    expires, token.last_used_at ? dayCell(token.last_used_at, "Last used") : cell("Never", "Last used"), actionsCell);
  return row;
}

// Every page of the listing (the organisation's for admins): search, filters and sort then work
// on all of it, in the page.
async function loadTokens() {
  const generation = ++state.generation;
  const query = { limit: PAGE_SIZE, all_users: state.role === "admin" ? "true" : "" };
  const tokens = [];
  $("#list-loading").hidden = state.loaded;
  let next = null;
  do {
    const { status, data } = await api("GET", "/tokens", { query: { ...query, next } });
    if (generation !== state.generation) return; // a newer load (or another user) took over
    if (status !== 200) { $("#list-loading").hidden = true; showPageError(errorMessage(data)); return; }
    tokens.push(...data.items);
    next = data.next;
  } while (next);
  showPageError("");
  $("#list-loading").hidden = true;
  state.tokens = tokens;
  state.loaded = true;
  state.hints.clear();
  tokens.forEach((token) => state.hints.set(token.token_id, token.display_hint));
  fillListFilters();
  render();
}

function setOptions(select, options, keep) {
  const previous = keep ? select.value : null;
  select.replaceChildren(...options.map(([value, text]) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    return option;
  }));
  if (previous !== null && options.some(([value]) => value === previous)) select.value = previous;
}

// The scope filter offers the scopes of the tokens listed and of the catalog; the owner filter
// (admins) each owner of the organisation's tokens, the user first.
function fillListFilters() {
  const catalog = [...document.querySelectorAll("#scope-list input")].map((box) => box.value);
  const scopes = [...new Set([...catalog, ...state.tokens.flatMap((token) => token.scopes)])].sort();
  setOptions($("#scope-filter"), [["", "Any scope"], ...scopes.map((scope) => [scope, scope])], true);
  const admin = state.role === "admin";
  $("#owner-field").hidden = !admin;
  if (!admin) return;
  const self = me();
  const owners = [...new Set(state.tokens.map((token) => token.owner_id))].filter((id) => id !== self).sort();
  setOptions($("#owner-filter"), [[self, "You"], [EVERYONE, "Everyone in the organisation"],
    ...owners.map((id) => [id, id])], true);
}

const filterValues = () => ({
  search: $("#search").value.trim().toLowerCase(),
  status: $("#status-filter").value,
  scope: $("#scope-filter").value,
  owner: state.role === "admin" ? $("#owner-filter").value || me() : me(),
  sort: $("#sort").value,
});

function ownedBy(owner) {
  return owner === EVERYONE ? state.tokens : state.tokens.filter((token) => token.owner_id === owner);
}

const SORTS = {
  created: (token) => token.created_at || "",
  name: (token) => token.name.toLowerCase(),
  expires: (token) => token.expires_at || "",
  used: (token) => token.last_used_at || "",
};

function sortTokens(tokens, sort) {
  const [key, direction] = sort.split("-");
  const of = SORTS[key] || SORTS.created;
  const sign = direction === "asc" ? 1 : -1;
  // Ties (the same second) keep the API's order, newest first; "created, oldest first" reverses it.
  const order = new Map(state.tokens.map((token, index) => [token.token_id, index]));
  const tie = key === "created" && direction === "asc" ? -1 : 1;
  return [...tokens].sort((a, b) => {
    const [x, y] = [of(a), of(b)];
    if (key === "used" && (!x || !y) && x !== y) return x ? -1 : 1; // "never" last either way
    if (x !== y) return x < y ? -sign : sign;
    return tie * (order.get(a.token_id) - order.get(b.token_id));
  });
}

function render() {
  const filters = filterValues();
  const scoped = ownedBy(filters.owner);
  const shown = sortTokens(scoped.filter((token) =>
    (!filters.search || token.name.toLowerCase().includes(filters.search)) &&
    (!filters.status || token.status === filters.status) &&
    (!filters.scope || token.scopes.includes(filters.scope))), filters.sort);
  state.shown = shown;
  const shownIds = new Set(shown.map((token) => token.token_id));
  for (const id of [...state.selected]) {
    const token = state.tokens.find((item) => item.token_id === id);
    if (!shownIds.has(id) || !token || !isRevocable(token)) state.selected.delete(id);
  }
  const showOwner = state.role === "admin" && filters.owner !== me();
  document.querySelectorAll(".owner-col").forEach((node) => { node.hidden = !showOwner; });
  $("#token-rows").replaceChildren(...shown.map((token) => tokenRow(token, showOwner)));

  const admin = state.role === "admin";
  const filtered = Boolean(filters.search || filters.status || filters.scope);
  const ownerText = filters.owner === EVERYONE ? "in the organisation"
    : filters.owner === me() ? (admin ? "of yours" : "") : `of ${filters.owner}`;
  $("#list-title").textContent = filters.owner === EVERYONE ? "Organisation tokens"
    : filters.owner === me() ? "Your tokens" : `Tokens of ${filters.owner}`;
  $("#list-count").textContent = scoped.length
    ? `Showing ${shown.length} of ${plural(scoped.length, "token")}${ownerText ? ` ${ownerText}` : ""}`
    : "";
  $("#token-table").hidden = shown.length === 0;
  $("#empty").hidden = !(scoped.length === 0 && !filtered);
  $("#empty-text").replaceChildren(emptyText(filters.owner));
  $("#no-match").hidden = !(shown.length === 0 && (filtered || scoped.length > 0) && !(scoped.length === 0 && !filtered));
  $("#clear-filters").hidden = !filtered;
  const owner = admin && filters.owner !== EVERYONE ? filters.owner : null;
  const revokeOwner = $("#revoke-owner");
  revokeOwner.hidden = !owner || !scoped.some(isRevocable);
  revokeOwner.textContent = owner === me() ? "Revoke all your tokens" : `Revoke all tokens of ${owner}`;
  updateBulkButton();
}

function emptyText(owner) {
  const strong = document.createElement("strong");
  if (owner === EVERYONE) strong.textContent = "Nobody in the organisation has a token yet: generate one.";
  else if (owner === me()) strong.textContent = "You have no tokens yet: generate one.";
  else strong.textContent = `${owner} has no tokens.`;
  return strong;
}

function clearFilters() {
  $("#search").value = "";
  $("#status-filter").value = "";
  $("#scope-filter").value = "";
  render();
  $("#search").focus();
}

function updateBulkButton() {
  const count = state.selected.size;
  const button = $("#revoke-selected");
  button.disabled = count === 0;
  button.textContent = count ? `Revoke selected (${count})` : "Revoke selected";
  const selectable = state.shown.filter(isRevocable);
  const all = $("#select-all");
  all.checked = selectable.length > 0 && selectable.every((token) => state.selected.has(token.token_id));
  all.indeterminate = !all.checked && count > 0;
  all.disabled = selectable.length === 0;
}

// -- details ------------------------------------------------------------------------------------

function detailLine(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

function openDetails(token) {
  state.detailsOf = token;
  $("#details-name").textContent = token.name;
  const list = $("#details-list");
  list.replaceChildren();
  const by = (who) => (who ? ` by ${ownerName(who)}` : "");
  detailLine(list, "Token", token.display_hint);
  detailLine(list, "Token id", token.token_id);
  detailLine(list, "Status", expiresSoon(token) ? `${token.status} (${soonText(token).toLowerCase()})` : token.status);
  detailLine(list, "Owner", ownerName(token.owner_id));
  detailLine(list, "Scopes", token.scopes.join(", "));
  const cidrs = token.allowed_cidrs || [];
  detailLine(list, "Allowed addresses", cidrs.length ? cidrs.join(", ") : "Any address");
  detailLine(list, "Created", `${formatDate(token.created_at)}${by(token.created_by)}`);
  detailLine(list, "Expires", formatDate(token.expires_at));
  detailLine(list, "Last used", token.last_used_at ? formatDate(token.last_used_at) : "Never");
  detailLine(list, "Last used from", token.last_used_ip || (token.last_used_at ? "Unknown address" : "—"));
  if (token.disabled_at) detailLine(list, "Disabled", `${formatDate(token.disabled_at)}${by(token.disabled_by)}`);
  if (token.revoked_at) detailLine(list, "Revoked", `${formatDate(token.revoked_at)}${by(token.revoked_by)}`);
  if (token.rotated_from) detailLine(list, "Replaces", state.hints.get(token.rotated_from) || token.rotated_from);
  if (token.rotated_to) detailLine(list, "Replaced by", state.hints.get(token.rotated_to) || token.rotated_to);
  $("#details-revoke").hidden = !isRevocable(token);
  const owner = $("#details-revoke-owner");
  owner.hidden = state.role !== "admin" || !state.tokens.some((item) => item.owner_id === token.owner_id && isRevocable(item));
  owner.textContent = token.owner_id === me() ? "Revoke all your tokens" : `Revoke all tokens of ${token.owner_id}`;
  $("#details-audit").hidden = state.role !== "admin";
  $("#details").showModal();
  $("#details-close").focus();
}

function detailsClosed() {
  const token = state.detailsOf;
  state.detailsOf = null;
  if (!token || $("#confirm").open) return;
  const row = rowOf(token.token_id);
  const button = row && row.querySelector(".details-link");
  if (button) button.focus();
}

// -- revoke ---------------------------------------------------------------------------------------

// After a revoke the pressed button may be gone (the row revoked, or filtered out): the focus goes to
// the same row if it is still listed, else to the row now at its place, else the one before, else the
// list's heading area.
function focusNear(tokenId, index) {
  const row = rowOf(tokenId);
  const rows = [...document.querySelectorAll("#token-rows tr")];
  const target = row || rows[Math.min(index, rows.length - 1)] || null;
  const button = target && (target.querySelector("button.revoke") || target.querySelector("button.details-link"));
  (button || $("#search")).focus();
}

function bulkMessage(totals, what) {
  const parts = [`Revoked ${plural(totals.revoked, "token")}${what ? ` ${what}` : ""}.`];
  if (totals.already_revoked) {
    parts.push(`${totals.already_revoked} ${totals.already_revoked === 1 ? "was" : "were"} already revoked.`);
  }
  if (totals.not_found) parts.push(`${totals.not_found} not found (deleted meanwhile).`);
  return parts.join(" ");
}

async function revokeOne(token) {
  const index = state.shown.findIndex((item) => item.token_id === token.token_id);
  const owner = token.owner_id === me() ? "yours" : `owned by ${token.owner_id}`;
  const ok = await confirmAction({
    title: `Revoke "${token.name}"?`,
    message: `The token ${token.display_hint}, ${owner}, stops working at once: anything using it is refused ` +
      "from now on. This cannot be undone.",
    confirmText: "Revoke token",
  });
  if (!ok) { focusNear(token.token_id, index); return; }
  const { status, data } = await api("DELETE", `/tokens/${encodeURIComponent(token.token_id)}`);
  if (status !== 200) { showPageError(errorMessage(data)); await loadTokens(); focusNear(token.token_id, index); return; }
  $("#bulk-status").textContent = `Revoked "${token.name}"${token.owner_id === me() ? "" : ` of ${token.owner_id}`}.`;
  await loadTokens();
  focusNear(token.token_id, index);
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

// Any number of ids, in requests of at most 100 (the API's limit); the totals of all of them.
async function revokeIds(ids) {
  const totals = { revoked: 0, already_revoked: 0, not_found: 0 };
  for (let start = 0; start < ids.length; start += BULK_CHUNK) {
    if (ids.length > BULK_CHUNK) {
      $("#bulk-status").textContent = `Revoking ${ids.length} tokens: ${start} done…`;
    }
    const { status, data } = await api("POST", "/tokens/revoke", { body: { token_ids: ids.slice(start, start + BULK_CHUNK) } });
    if (status !== 200) return { totals, failed: errorMessage(data), remaining: ids.length - start };
    totals.revoked += data.revoked;
    totals.already_revoked += data.already_revoked;
    totals.not_found += data.not_found;
  }
  return { totals, failed: null, remaining: 0 };
}

function ownerLines(tokens) {
  const counts = new Map();
  tokens.forEach((token) => counts.set(token.owner_id, (counts.get(token.owner_id) || 0) + 1));
  return [...counts].map(([owner, count]) => `${owner === me() ? "You" : owner}: ${plural(count, "token")}`);
}

async function revokeSelected() {
  const ids = [...state.selected];
  if (!ids.length) return;
  const tokens = state.tokens.filter((token) => state.selected.has(token.token_id));
  const index = state.shown.findIndex((token) => state.selected.has(token.token_id));
  const ok = await confirmAction({
    title: `Revoke ${plural(ids.length, "token")}?`,
    message: `${ids.length === 1 ? "It stops" : "They stop"} working at once: anything using ${ids.length === 1 ? "it" : "them"} ` +
      "is refused from now on. This cannot be undone. Owners:",
    owners: ownerLines(tokens),
    confirmText: `Revoke ${plural(ids.length, "token")}`,
  });
  if (!ok) { $("#revoke-selected").focus(); return; }
  const { totals, failed, remaining } = await revokeIds(ids);
  state.selected.clear();
  if (failed) {
    showPageError(`${bulkMessage(totals)} The other ${plural(remaining, "token")} could not be revoked: ${failed} ` +
      "Select them again and retry; revoking again is safe.");
    $("#bulk-status").textContent = "";
  } else {
    $("#bulk-status").textContent = bulkMessage(totals);
  }
  await loadTokens();
  focusNear(null, Math.max(index, 0));
}

// Every active or disabled token of one user (admins, or yourself): typed confirmation of the user id.
async function revokeOwner(ownerId, returnFocus) {
  const listed = state.tokens.filter((token) => token.owner_id === ownerId && isRevocable(token));
  const self = ownerId === me();
  const ok = await confirmAction({
    title: self ? "Revoke all your tokens?" : `Revoke all tokens of ${ownerId}?`,
    message: `Every active or disabled token of ${self ? "yours" : `the user ${ownerId}`} (${plural(listed.length, "token")} ` +
      "listed) stops working at once. This cannot be undone.",
    typed: ownerId,
    typedLabel: `To confirm, type the user id: ${ownerId}`,
    confirmText: self ? "Revoke all your tokens" : `Revoke all tokens of ${ownerId}`,
  });
  if (!ok) { if (returnFocus) returnFocus.focus(); return; }
  const { status, data } = await api("POST", "/tokens/revoke", { body: { owner_id: ownerId } });
  if (status !== 200) { showPageError(errorMessage(data)); return; }
  $("#bulk-status").textContent = bulkMessage(data, self ? "of yours" : `of ${ownerId}`);
  await loadTokens();
  focusNear(null, 0);
}

async function revokeOrganisation() {
  const org = ConsoleAuth.identity().orgId;
  const button = $("#revoke-organisation");
  const ok = await confirmAction({
    title: "Revoke every token of the organisation?",
    message: `Every active or disabled token of every user of ${org} stops working at once, yours included. ` +
      "This cannot be undone.",
    typed: org,
    typedLabel: `To confirm, type the organisation id: ${org}`,
    confirmText: "Revoke all tokens of the organisation",
  });
  if (!ok) { button.focus(); return; }
  const { status, data } = await api("POST", "/tokens/revoke", { body: { organisation: true } });
  if (status !== 200) { $("#danger-status").textContent = errorMessage(data); button.focus(); return; }
  $("#danger-status").textContent = bulkMessage(data, `in ${org}`);
  $("#bulk-status").textContent = bulkMessage(data, `in ${org}`);
  button.focus();
  await loadTokens();
}

// -- audit log (admins) ---------------------------------------------------------------------------

const ACTIONS = {
  "token.created": "Token created",
  "token.rotated": "Token regenerated",
  "token.revoked": "Token revoked",
  "token.disabled": "Token disabled",
  "token.enabled": "Token enabled",
  "token.scopes_trimmed": "Scopes reduced",
  "policy.changed": "Token policy changed",
};

// Who made a change, in plain words: a user (you), a token revoking itself, a policy, a
// membership change, a leak report.
function actorText(actor) {
  const [kind, ...rest] = String(actor).split(":");
  const what = rest.join(":");
  if (!what) return actor === me() ? `${actor} (you)` : actor;
  if (kind === "token") return `The token itself (${what})`;
  if (kind === "policy") return what === "unused" ? "The unused-token policy" : `Policy (${what})`;
  if (kind === "membership") return `A membership change (${what})`;
  if (kind === "leak") return `A leak report (${what})`;
  return actor;
}

const quoted = (text) => `"${text}"`;
const scopesText = (scopes) => (Array.isArray(scopes) && scopes.length ? scopes.join(", ") : "none");
const daysText = (value) => (value === null || value === undefined ? null : plural(value, "day"));

const REVOKE_KINDS = {
  single: "Revoked on its own.",
  bulk: "Revoked with others (a bulk revoke).",
  self: "The token revoked itself.",
  membership: "Revoked because its owner's membership or role changed.",
};

// A record's `details`, summarised in plain words; anything not known is listed as it is.
function describeRecord(record) {
  const details = record.details || {};
  const known = new Set();
  const take = (name) => { known.add(name); return details[name]; };
  const parts = [];
  switch (record.action) {
    case "token.created":
    case "token.rotated": {
      const name = take("name");
      const scopes = take("scopes");
      const expires = take("expires_at");
      const verb = record.action === "token.created" ? "Created" : "Regenerated";
      parts.push(`${verb}${name ? ` ${quoted(name)}` : ""} with scopes ${scopesText(scopes)}` +
        `${expires ? `, expiring ${formatDate(expires)}` : ""}.`);
      const cidrs = take("allowed_cidrs"); // (if the API records the allowlist)
      if (Array.isArray(cidrs) && cidrs.length) parts.push(`Usable only from ${cidrs.join(", ")}.`);
      if (record.action === "token.rotated" && record.token_ids.length > 1) {
        parts.push(`The new token ${record.token_ids[record.token_ids.length - 1]} replaces ${record.token_ids[0]}.`);
      }
      break;
    }
    case "token.revoked": {
      const kind = take("kind");
      const url = take("url");
      const days = take("unused_after_days");
      const lastUsed = take("last_used_at");
      if (kind === "leak") parts.push(`Revoked because it was reported leaked${url ? ` at ${url}` : ""}.`);
      else if (kind === "policy") {
        const since = typeof lastUsed === "number" ? formatInstant(lastUsed * 1000) : lastUsed && formatDate(String(lastUsed));
        parts.push(`Revoked by the unused-token policy${days ? `: not used for ${daysText(days)}` : ""}` +
          `${since ? ` (unused since ${since})` : ""}.`);
      } else parts.push(REVOKE_KINDS[kind] || `Revoked${kind ? ` (${kind})` : ""}.`);
      break;
    }
    case "token.disabled": parts.push("Disabled: refused until enabled again."); break;
    case "token.enabled": parts.push("Enabled again."); break;
    case "token.scopes_trimmed": {
      const role = take("role");
      const scopes = take("scopes");
      parts.push(`Scopes reduced to what the role ${role || "now held"} may grant: ${scopesText(scopes)}.`);
      break;
    }
    case "policy.changed": {
      const max = take("max_lifetime_days");
      const fallback = take("default_lifetime_days");
      const active = take("max_active_tokens_per_user");
      const unused = take("revoke_unused_after_days");
      const said = [];
      if (max !== undefined) said.push(`maximum lifetime ${daysText(max)}`);
      if (fallback !== undefined) said.push(`default lifetime ${daysText(fallback)}`);
      if (active !== undefined) said.push(`at most ${plural(active, "active token")} per user`);
      if (unused !== undefined) said.push(unused ? `tokens unused for ${daysText(unused)} revoked` : "unused tokens kept");
      parts.push(said.length ? `Policy set: ${said.join(", ")}.` : "Policy changed.");
      break;
    }
    default: break;
  }
  const rest = Object.entries(details).filter(([name]) => !known.has(name));
  if (rest.length) {
    parts.push(rest.map(([name, value]) => `${name.replace(/_/g, " ")}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join("; ") + ".");
  }
  return parts.join(" ") || "—";
}

// The token ids of a record, each a button that filters the log by it (with its hint, when listed).
function tokensCell(record) {
  const td = cell("", "Tokens");
  td.className = "tokens-cell";
  if (!record.token_ids.length) { td.textContent = "—"; return td; }
  const list = document.createElement("div");
  list.className = "token-ids";
  for (const tokenId of record.token_ids) {
    const item = document.createElement("div");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.textContent = tokenId;
    button.setAttribute("aria-label", `Show only the records of token ${tokenId}`);
    button.addEventListener("click", () => {
      clearFieldErrors($("#audit-filters"));
      $("#audit-token").value = tokenId;
      loadAudit();
      $("#audit-token").focus();
    });
    item.append(button);
    if (state.hints.has(tokenId)) { // the token as the list shows it
      const hint = document.createElement("small");
      hint.textContent = state.hints.get(tokenId);
      item.append(hint);
    }
    list.append(item);
  }
  td.append(list);
  return td;
}

function auditRow(record) {
  const row = document.createElement("tr");
  row.dataset.seq = String(record.seq);
  row.dataset.action = record.action;
  const action = cell(ACTIONS[record.action] || record.action, "Action");
  action.className = "action-cell";
  const time = cell(formatDate(record.at), "Time");
  time.className = "day";
  const details = cell(describeRecord(record), "Details");
  details.className = "details-cell";
  row.append(cell(String(record.seq), "Record"), time, action, cell(actorText(record.actor), "Actor"),
    tokensCell(record), cell(record.source_ip || "—", "Address"), details);
  return row;
}

// The filters as GET /audit takes them; the dates are whole days, UTC.
function auditQuery() {
  const form = $("#audit-filters");
  const query = {};
  const fields = [];
  const token = $("#audit-token").value.trim();
  const actor = $("#audit-actor").value.trim();
  if (token) query.token_id = token;
  if (actor) query.actor = actor;
  if ($("#audit-action").value) query.action = $("#audit-action").value;
  const since = $("#audit-since").value;
  const until = $("#audit-until").value;
  if (since) query.since = `${since}T00:00:00Z`;
  if (until) query.until = `${until}T23:59:59Z`;
  if (since && until && until < since) {
    fields.push({ field: "until", reason: `The end date must not be before the start date, ${since}.` });
  }
  form.querySelector("#audit-clear").hidden = Object.keys(query).length === 0;
  return { query, fields };
}

// The first page of the filtered log (`more`: the next page, appended).
async function loadAudit(more = false) {
  if (state.role !== "admin") return;
  const audit = state.audit;
  const form = $("#audit-filters");
  let query = audit.query;
  if (!more) {
    clearFieldErrors(form);
    const read = auditQuery();
    if (read.fields.length) { showFieldErrors({ error: { fields: read.fields } }, form); return; }
    query = read.query;
  }
  const generation = ++audit.generation;
  $("#audit-loading").hidden = more || audit.loaded;
  $("#audit-more").disabled = true;
  const { status, data } = await api("GET", "/audit", { query: { ...query, limit: AUDIT_PAGE, next: more ? audit.next : null } });
  if (generation !== audit.generation) return; // a newer load (or another user) took over
  $("#audit-loading").hidden = true;
  $("#audit-more").disabled = false;
  if (status !== 200) {
    if (status === 400) showFieldErrors(data, form);
    else form.querySelector('[data-error-for="form"]').textContent = errorMessage(data);
    return;
  }
  audit.query = query;
  audit.records = more ? [...audit.records, ...data.items] : data.items;
  audit.next = data.next || null;
  audit.loaded = true;
  renderAudit(more ? data.items : null);
}

// `added`: the rows of a further page, appended; else the whole list is drawn again.
function renderAudit(added) {
  const audit = state.audit;
  const rows = $("#audit-rows");
  if (added) rows.append(...added.map(auditRow));
  else rows.replaceChildren(...audit.records.map(auditRow));
  const count = audit.records.length;
  const filtered = Object.keys(audit.query).length > 0;
  $("#audit-table").hidden = count === 0;
  $("#audit-empty").hidden = count !== 0;
  $("#audit-empty-text").textContent = filtered ? "No audit records match these filters." : "No changes recorded yet.";
  $("#audit-count").textContent = count
    ? `Showing ${plural(count, "record")}${audit.next ? "; older ones follow" : ""}${filtered ? " matching the filters" : ""}.`
    : "";
  $("#audit-more").hidden = !audit.next;
}

async function loadMoreAudit() {
  const before = state.audit.records.length;
  await loadAudit(true);
  // The focus goes to the first new record's first control, or stays on the button.
  const row = $("#audit-rows").children[before];
  const target = (row && row.querySelector("button")) || (!$("#audit-more").hidden && $("#audit-more"));
  if (target) target.focus();
  else $("#audit-count").focus();
}

function clearAuditFilters() {
  $("#audit-filters").reset();
  loadAudit();
  $("#audit-token").focus();
}

async function verifyAudit() {
  const button = $("#audit-verify");
  const out = $("#audit-verify-status");
  out.textContent = "Checking the records…";
  out.className = "verify-status";
  button.disabled = true;
  let answer;
  try {
    answer = await api("GET", "/audit/verify");
  } finally {
    button.disabled = false;
  }
  const { status, data } = answer;
  if (status !== 200) { out.textContent = errorMessage(data); out.classList.add("broken"); return; }
  if (data.intact) {
    out.textContent = data.records
      ? `The chain of ${plural(data.records, "record")} is intact.` +
        (data.first_seq > 1 ? ` It starts at record ${data.first_seq}: older records have expired.` : "")
      : "No changes recorded yet: there is nothing to check.";
    out.classList.add("intact");
  } else {
    const reason = String(data.reason || "it does not follow the record before it").replace(/\.$/, "");
    out.textContent = `Record ${data.broken_at} is broken: ${reason}.`;
    out.classList.add("broken");
  }
  document.querySelectorAll("#audit-rows tr").forEach((row) => {
    row.classList.toggle("broken-record", !data.intact && row.dataset.seq === String(data.broken_at));
  });
}

// From a token's details: its records.
function showAuditOf(token) {
  $("#audit-filters").reset();
  $("#audit-token").value = token.token_id;
  if (window.location.hash === "#audit") showView(true);
  else window.location.hash = "#audit"; // hashchange shows the view, loaded with the filter
}

function resetAudit() {
  state.audit.generation += 1; // a load under way is dropped
  Object.assign(state.audit, { records: [], next: null, query: {}, loaded: false });
  $("#audit-filters").reset();
  clearFieldErrors($("#audit-filters"));
  $("#audit-rows").replaceChildren();
  $("#audit-table").hidden = true;
  $("#audit-empty").hidden = true;
  $("#audit-more").hidden = true;
  $("#audit-clear").hidden = true;
  $("#audit-loading").hidden = true;
  for (const id of ["#audit-count", "#audit-verify-status", "#audit-empty-text"]) $(id).textContent = "";
  $("#audit-verify-status").className = "verify-status";
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
  if (state.role !== "admin" || !state.policy) return;
  const form = $("#settings-form");
  if (section.dataset.shownFor === JSON.stringify(state.policy)) return; // keep what is being typed
  section.dataset.shownFor = JSON.stringify(state.policy);
  clearFieldErrors(form);
  for (const { name } of POLICY_FIELDS) {
    const value = state.policy[name];
    form.elements[name].value = value === null || value === undefined ? "" : String(value);
  }
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
  if (state.role === "admin") $("#owner-filter").value = me();
  showView(false);
  await loadTokens();
  restoreDraft(ConsoleAuth.takeDraft());
}

$("#generate-open").addEventListener("click", openGenerate);
$("#generate-cancel").addEventListener("click", closeGenerate);
$("#generate-form").addEventListener("submit", submitGenerate);
$("#expiry-presets").addEventListener("change", presetChanged);
$("#token-expiry").addEventListener("change", presetChanged);
$("#copy-token").addEventListener("click", copyToken);
$("#new-token-done").addEventListener("click", dismissNewToken);
$("#filters").addEventListener("submit", (event) => event.preventDefault());
for (const type of ["input", "change"]) $("#search").addEventListener(type, render); // typing; cleared
for (const id of ["#status-filter", "#scope-filter", "#owner-filter", "#sort"]) $(id).addEventListener("change", render);
$("#clear-filters").addEventListener("click", clearFilters);
$("#no-match-clear").addEventListener("click", clearFilters);
$("#revoke-selected").addEventListener("click", revokeSelected);
$("#revoke-owner").addEventListener("click", () => revokeOwner(filterValues().owner, $("#revoke-owner")));
$("#revoke-organisation").addEventListener("click", revokeOrganisation);
$("#regenerate-form").addEventListener("submit", submitRegenerate);
$("#regenerate-form").addEventListener("change", describeGrace);
$("#regenerate-cancel").addEventListener("click", closeRegenerate);
$("#regenerate").addEventListener("close", regenerateClosed);
$("#details-close").addEventListener("click", () => $("#details").close());
$("#details").addEventListener("close", detailsClosed);
$("#details-revoke").addEventListener("click", () => {
  const token = state.detailsOf;
  $("#details").close();
  if (token) revokeOne(token);
});
$("#details-revoke-owner").addEventListener("click", () => {
  const token = state.detailsOf;
  $("#details").close();
  if (token) revokeOwner(token.owner_id, rowOf(token.token_id) && rowOf(token.token_id).querySelector(".details-link"));
});
$("#confirm-form").addEventListener("submit", submitConfirm);
$("#confirm-cancel").addEventListener("click", () => $("#confirm").close());
$("#confirm").addEventListener("close", confirmClosed);
$("#settings-form").addEventListener("submit", submitSettings);
$("#audit-filters").addEventListener("submit", (event) => { event.preventDefault(); loadAudit(); });
$("#audit-filters").addEventListener("change", (event) => { if (event.target.tagName === "SELECT") loadAudit(); });
$("#audit-clear").addEventListener("click", clearAuditFilters);
$("#audit-more").addEventListener("click", loadMoreAudit);
$("#audit-verify").addEventListener("click", verifyAudit);
$("#details-audit").addEventListener("click", () => {
  const token = state.detailsOf;
  state.detailsOf = null; // the focus goes to the audit log, not back to the row
  $("#details").close();
  if (token) showAuditOf(token);
});
$("#select-all").addEventListener("change", (event) => {
  for (const token of state.shown.filter(isRevocable)) {
    if (event.target.checked) state.selected.add(token.token_id);
    else state.selected.delete(token.token_id);
  }
  document.querySelectorAll(".row-select:not(:disabled)").forEach((box) => { box.checked = event.target.checked; });
  updateBulkButton();
});
window.addEventListener("hashchange", () => { if (state.role) showView(true); });
document.addEventListener("keydown", (event) => {
  // (An open dialog closes itself on Escape.)
  const dialogOpen = document.querySelector("dialog[open]");
  if (event.key === "Escape" && !$("#generate").hidden && !dialogOpen) closeGenerate();
});

// -- sign-in hooks (auth.js) ---------------------------------------------------------------------

// Signing out, switching user or a refused session: nothing of the previous user stays on the
// page, neither a secret nor any message nor their tokens.
function resetSession() {
  state.generation += 1; // a list load under way is dropped
  $("#new-token-value").value = "";
  $("#new-token-note").textContent = "";
  $("#new-token").hidden = true;
  for (const id of ["#regenerate", "#details"]) if ($(id).open) $(id).close();
  if ($("#confirm").open) $("#confirm").close();
  $("#generate-form").reset();
  clearFieldErrors();
  $("#generate").hidden = true;
  clearFieldErrors($("#settings-form"));
  $("#settings-form").reset();
  delete $("#settings").dataset.shownFor;
  for (const id of ["#copy-status", "#bulk-status", "#settings-status", "#danger-status", "#list-count"]) $(id).textContent = "";
  resetAudit();
  showPageError("");
  $("#filters").reset();
  $("#token-rows").replaceChildren();
  $("#details-list").replaceChildren();
  $("#details-name").textContent = "";
  $("#scope-list").replaceChildren();
  $("#owner-filter").replaceChildren();
  $("#owner-field").hidden = true;
  $("#empty").hidden = true;
  $("#no-match").hidden = true;
  $("#revoke-owner").hidden = true;
  Object.assign(state, {
    role: null, policy: null, tokens: [], shown: [], loaded: false, regenerating: null, detailsOf: null, afterSecret: null,
    sentCidrs: [],
  });
  state.selected.clear();
  state.hints.clear();
  updateBulkButton();
  showView(false);
}

// The create form's content, kept across a re-sign-in (none when the form is closed).
function draftOfGenerateForm() {
  if ($("#generate").hidden) return null;
  const scopes = [...document.querySelectorAll("#scope-list input:checked")].map((box) => box.value);
  return {
    name: $("#token-name").value, preset: chosenPreset(), expires_at: $("#token-expiry").value, scopes,
    allowed_cidrs: $("#token-cidrs").value,
  };
}

function restoreDraft(draft) {
  if (!draft) return;
  openGenerate();
  $("#token-name").value = draft.name || "";
  $("#token-cidrs").value = typeof draft.allowed_cidrs === "string" ? draft.allowed_cidrs : "";
  const preset = draft.preset && $(`#expiry-presets input[value="${CSS.escape(draft.preset)}"]:not(:disabled)`);
  if (preset) preset.checked = true;
  if (draft.expires_at && (!preset || draft.preset === "custom")) $("#token-expiry").value = draft.expires_at;
  presetChanged();
  document.querySelectorAll("#scope-list input").forEach((box) => { box.checked = (draft.scopes || []).includes(box.value); });
}

ConsoleAuth.begin({
  onReset: resetSession,
  onSwitch: () => { state.loading = state.loading.then(start); }, // one load at a time: the last identity wins
}).then((signedIn) => { if (signedIn) state.loading = start(); });
