"use strict";
// The API Tokens settings page. Plain JavaScript, no build step.
// Identity: locally the dev server stands in for Cognito and reads X-Dev-* headers.

const $ = (selector) => document.querySelector(selector);
const DAY_MS = 86400000;
const state = { identity: loadIdentity(), role: null, next: null, policy: null, loading: Promise.resolve() };

function loadIdentity() {
  const saved = JSON.parse(localStorage.getItem("devIdentity") || "null");
  return saved || { user: "alice", org: "org-acme", role: "admin" };
}

async function api(method, path, { body, query } = {}) {
  const url = new URL(path, window.location.origin);
  Object.entries(query || {}).forEach(([key, value]) => {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  });
  const headers = {
    "X-Dev-User-Id": state.identity.user,
    "X-Dev-Org-Id": state.identity.org,
    "X-Dev-Role": state.identity.role,
  };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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

function clearFieldErrors() {
  document.querySelectorAll(".field-error").forEach((node) => { node.textContent = ""; });
  document.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

function showFieldErrors(data) {
  const fields = (data && data.error && data.error.fields) || [];
  let shown = false;
  for (const { field, reason } of fields) {
    const slot = $(`#error-${CSS.escape(field)}`);
    if (!slot) continue;
    slot.textContent = reason;
    const input = field === "scopes" ? $("#scope-list input") : $(`[name="${CSS.escape(field)}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
    shown = true;
  }
  if (!shown) $("#error-form").textContent = errorMessage(data);
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
  $("#new-token-value").value = data.token;
  $("#copy-status").textContent = "";
  $("#new-token").hidden = false;
  $("#new-token-value").focus();
  $("#new-token-value").select();
  await loadTokens();
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
  $("#new-token").hidden = true;
  $("#generate-open").focus();
}

// -- list and revoke ----------------------------------------------------------------------

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function tokenRow(token, showOwner) {
  const row = document.createElement("tr");
  row.dataset.tokenId = token.token_id;
  const select = document.createElement("input");
  select.type = "checkbox";
  select.className = "row-select";
  select.value = token.token_id;
  select.disabled = token.status !== "active";
  select.setAttribute("aria-label", `Select ${token.name}`);
  select.addEventListener("change", updateBulkButton);
  const selectCell = document.createElement("td");
  selectCell.append(select);
  row.append(selectCell, cell(token.name));
  if (showOwner) row.append(cell(token.owner_id));
  const hint = document.createElement("td");
  const code = document.createElement("code");
  code.textContent = token.display_hint;
  hint.append(code);
  const status = document.createElement("td");
  const badge = document.createElement("span");
  badge.className = `status status-${token.status}`;
  badge.textContent = token.status;
  status.append(badge);
  const actions = document.createElement("td");
  if (token.status === "active") {
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.textContent = "Revoke";
    revoke.setAttribute("aria-label", `Revoke ${token.name}`);
    revoke.addEventListener("click", () => revokeOne(token));
    actions.append(revoke);
  }
  row.append(hint, cell(token.scopes.join(", ")), status, cell(formatDate(token.expires_at)),
    cell(token.last_used_at ? formatDate(token.last_used_at) : "Never"), actions);
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
  if (!append) rows.replaceChildren();
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

async function start() {
  $("#identity-user").value = state.identity.user;
  $("#identity-org").value = state.identity.org;
  $("#identity-role").value = state.identity.role;
  await Promise.all([loadScopes(), loadPolicy()]);
  await loadTokens();
}

$("#identity").addEventListener("submit", (event) => {
  event.preventDefault();
  state.identity = { user: $("#identity-user").value.trim(), org: $("#identity-org").value.trim(), role: $("#identity-role").value };
  localStorage.setItem("devIdentity", JSON.stringify(state.identity));
  state.loading = state.loading.then(start); // one load at a time: the last identity wins
});
$("#generate-open").addEventListener("click", openGenerate);
$("#generate-cancel").addEventListener("click", closeGenerate);
$("#generate-form").addEventListener("submit", submitGenerate);
$("#copy-token").addEventListener("click", copyToken);
$("#new-token-done").addEventListener("click", dismissNewToken);
$("#status-filter").addEventListener("change", () => loadTokens());
$("#all-users").addEventListener("change", () => loadTokens());
$("#revoke-selected").addEventListener("click", revokeSelected);
$("#load-more").addEventListener("click", () => loadTokens(true));
$("#select-all").addEventListener("change", (event) => {
  document.querySelectorAll(".row-select:not(:disabled)").forEach((box) => { box.checked = event.target.checked; });
  updateBulkButton();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("#generate").hidden) closeGenerate();
});
state.loading = start();
