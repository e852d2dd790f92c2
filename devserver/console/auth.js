"use strict";
// Sign-in for the console: Cognito managed login, with the authorization code grant and PKCE
// (S256). The password is typed on the user pool's own pages, never here; the console gets a
// code, exchanges it at the pool's /oauth2/token for tokens, and calls the console API with
// `Authorization: <ID token>`, as API Gateway's Cognito authorizer expects.
//
// Tokens live in this page's memory only: they are gone when the tab closes or reloads (a
// reload signs in again, silently while the managed login session lasts). sessionStorage holds
// the PKCE verifier and state of a sign-in under way, the create form's draft across a
// re-sign-in, and why the last page signed out; never a token. Memory is no defence against a
// script running in the page (the Content-Security-Policy is); it keeps tokens out of storage.
//
// /config.json: {apiUrl, userPoolId, clientId, authDomain, redirectUri, region}, and locally
// `devIdentityHeaders` when the dev server takes X-Dev-* headers (tests): then the identity
// switcher stands in for sign-in.

const ConsoleAuth = (() => {
  const PENDING = "consoleAuth.pending"; // {state, verifier} of the sign-in under way
  const DRAFT = "consoleAuth.draft"; // {sub, draft}: the create form, kept across a re-sign-in
  const NOTICE = "consoleAuth.notice"; // why the previous page signed out: "signed-out" | "refused"
  const DEV_IDENTITY = "devIdentity"; // the identity switcher's choice (dev server, tests)
  const EXPIRY_MARGIN_MS = 60000; // sign in again a minute before the ID token expires
  const byId = (id) => document.getElementById(id);

  // The signed-in session; `idToken` goes in every API call. (Tests tamper with it here.)
  const session = { idToken: null, claims: null, expiresAt: 0 };
  let config = null;
  let devIdentity = null;
  let justSignedIn = false; // no API call has succeeded since the code exchange
  let onReset = () => {};

  const never = () => new Promise(() => {}); // the page is leaving, or waits for the user

  function base64url(bytes) {
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  const randomString = (size) => base64url(crypto.getRandomValues(new Uint8Array(size)));

  async function challengeOf(verifier) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    return base64url(new Uint8Array(digest));
  }

  // A JWT's payload, read for display and for sanity checks only: the API checks the signature.
  function payloadOf(token) {
    const part = String(token).split(".")[1] || "";
    const text = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (char) => char.charCodeAt(0))));
  }

  const authBase = () => {
    const domain = String(config.authDomain).replace(/\/+$/, "");
    return /^https?:\/\//.test(domain) ? domain : `https://${domain}`;
  };

  function readJson(key) {
    try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch (_) { return null; }
  }

  // -- what the page shows ------------------------------------------------------------------------

  function setState(name) {
    document.body.dataset.auth = name; // style.css shows the token pages only when "signed-in"
  }

  function showPanel(title, message, { signIn = false, signOut = false } = {}) {
    byId("auth-title").textContent = title;
    byId("auth-message").textContent = message;
    byId("sign-in").hidden = !signIn;
    byId("auth-sign-out").hidden = !signOut;
    byId("auth-panel").hidden = false;
    const focus = signIn ? byId("sign-in") : signOut ? byId("auth-sign-out") : null;
    if (focus) focus.focus();
  }

  function showUser(claims) {
    const org = claims["custom:org_id"];
    const role = claims["custom:role"];
    byId("session-user").textContent =
      `Signed in as ${claims.email || claims["cognito:username"] || claims.sub}` + (org && role ? ` (${org}, ${role})` : "");
    byId("session").hidden = false;
  }

  // -- sign-in ----------------------------------------------------------------------------------------

  async function signIn() {
    const state = randomString(32);
    const verifier = randomString(48);
    sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier }));
    const url = new URL(`${authBase()}/oauth2/authorize`);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: config.clientId,
      redirect_uri: config.redirectUri,
      scope: "openid email profile",
      state,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
    }).toString();
    window.location.assign(url.toString());
    return never();
  }

  // The sign-in's answer at the redirect URI: ?code=...&state=... or ?error=...
  async function completeSignIn(params) {
    const pending = readJson(PENDING);
    sessionStorage.removeItem(PENDING);
    window.history.replaceState(null, "", new URL(config.redirectUri).pathname); // the code leaves the address bar
    if (!pending || params.get("state") !== pending.state) {
      return "The sign-in answer does not belong to a sign-in started here. Sign in again.";
    }
    if (params.get("error")) {
      return `Sign-in failed: ${params.get("error_description") || params.get("error")}.`;
    }
    let response;
    try {
      response = await fetch(`${authBase()}/oauth2/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          client_id: config.clientId,
          code: params.get("code") || "",
          redirect_uri: config.redirectUri,
          code_verifier: pending.verifier,
        }),
      });
    } catch (_) {
      return "The sign-in service could not be reached. Sign in again.";
    }
    const tokens = await response.json().catch(() => ({}));
    if (!response.ok || !tokens.id_token) return "The sign-in could not be completed. Sign in again.";
    let claims;
    try { claims = payloadOf(tokens.id_token); } catch (_) { return "The sign-in returned an unreadable token."; }
    const issuer = `https://cognito-idp.${config.region}.amazonaws.com/${config.userPoolId}`;
    if (claims.token_use !== "id" || claims.aud !== config.clientId || claims.iss !== issuer) {
      return "The sign-in returned a token for another application. Sign in again.";
    }
    session.idToken = tokens.id_token; // the access and refresh tokens are not kept: the API takes the ID token
    session.claims = claims;
    session.expiresAt = Number(claims.exp) * 1000;
    justSignedIn = true;
    return null;
  }

  // -- the dev server's identity switcher (tests) -------------------------------------------------

  function startDevIdentity(onSwitch) {
    devIdentity = JSON.parse(localStorage.getItem(DEV_IDENTITY) || "null") || { user: "alice", org: "org-acme", role: "admin" };
    byId("identity-user").value = devIdentity.user;
    byId("identity-org").value = devIdentity.org;
    byId("identity-role").value = devIdentity.role;
    byId("identity").hidden = false;
    byId("identity").addEventListener("submit", (event) => {
      event.preventDefault();
      onReset(); // nothing of the previous user stays on the page
      devIdentity = { user: byId("identity-user").value.trim(), org: byId("identity-org").value.trim(), role: byId("identity-role").value };
      localStorage.setItem(DEV_IDENTITY, JSON.stringify(devIdentity));
      onSwitch();
    });
    setState("signed-in");
  }

  // -- the page's hooks ---------------------------------------------------------------------------------

  // Resolves true once a member of an organisation is signed in (the page may call the API), false
  // when the page shows why not (signed out, an error, no organisation); never while it leaves.
  async function begin(hooks) {
    onReset = hooks.onReset || onReset;
    byId("sign-in").addEventListener("click", () => { signIn(); });
    byId("sign-out").addEventListener("click", () => { signOut(); });
    byId("auth-sign-out").addEventListener("click", () => { signOut(); });
    try {
      const response = await fetch("/config.json", { cache: "no-store" });
      config = await response.json();
    } catch (_) {
      setState("error");
      showPanel("The console cannot start", "Its configuration (config.json) could not be read. Reload the page.");
      return false;
    }
    if (config.devIdentityHeaders) {
      startDevIdentity(hooks.onSwitch || (() => {}));
      return true;
    }
    const params = new URLSearchParams(window.location.search);
    if (params.has("code") || params.has("error")) {
      const problem = await completeSignIn(params);
      if (problem) {
        setState("signed-out");
        showPanel("Not signed in", problem, { signIn: true });
        return false;
      }
    }
    if (!session.idToken) {
      const notice = sessionStorage.getItem(NOTICE);
      sessionStorage.removeItem(NOTICE);
      setState("signed-out");
      if (notice === "signed-out") {
        showPanel("You are signed out", "Sign in to manage your API tokens.", { signIn: true });
        return false;
      }
      if (notice === "refused") {
        showPanel(
          "Sign in again",
          "The console API did not accept your session, so you were signed out. Sign in again to go on; " +
            "a token form you had not submitted comes back.",
          { signIn: true },
        );
        return false;
      }
      return signIn();
    }
    showUser(session.claims);
    if (!session.claims["custom:org_id"] || !session.claims["custom:role"]) {
      setState("no-membership");
      showPanel(
        "Your account is not in an organisation yet",
        `You are signed in as ${session.claims.email || session.claims.sub}, but no administrator has added your ` +
          "account to an organisation with a role (admin, member or viewer), so there are no API tokens to " +
          "manage. Ask your organisation's administrator to add you, then sign in again.",
        { signOut: true },
      );
      return false;
    }
    byId("auth-panel").hidden = true;
    setState("signed-in");
    return true;
  }

  // The headers that say who calls: the ID token (or, on the dev server in test mode, X-Dev-*).
  function headers() {
    if (devIdentity) {
      return { "X-Dev-User-Id": devIdentity.user, "X-Dev-Org-Id": devIdentity.org, "X-Dev-Role": devIdentity.role };
    }
    return { Authorization: session.idToken };
  }

  const apiUrl = () => String(config.apiUrl).replace(/\/+$/, "");

  // Who is signed in, as the API knows them: the user id (tokens' owner_id), organisation and role.
  function identity() {
    if (devIdentity) return { userId: devIdentity.user, orgId: devIdentity.org, role: devIdentity.role };
    const claims = session.claims || {};
    return { userId: claims.sub || null, orgId: claims["custom:org_id"] || null, role: claims["custom:role"] || null };
  }

  function saveDraft(draftOf) {
    const draft = draftOf ? draftOf() : null;
    if (draft && session.claims) sessionStorage.setItem(DRAFT, JSON.stringify({ sub: session.claims.sub, draft }));
  }

  // Before each call: an ID token about to expire means signing in again first, keeping the form.
  async function ensureFresh(draftOf) {
    if (devIdentity || Date.now() < session.expiresAt - EXPIRY_MARGIN_MS) return;
    saveDraft(draftOf);
    onReset();
    setState("signing-in");
    return signIn();
  }

  // After each call: whether the API took the session.
  async function answered(status, draftOf) {
    if (devIdentity) return;
    if (status !== 401) { justSignedIn = false; return; }
    saveDraft(draftOf);
    onReset();
    session.idToken = null;
    session.claims = null;
    session.expiresAt = 0;
    if (justSignedIn) { // refused right after signing in: signing in again would only loop
      setState("error");
      showPanel(
        "The console API refused your sign-in",
        "The sign-in worked, but the console API does not accept it (is the console configured for this " +
          "user pool's app client?). Sign out, and tell your administrator.",
        { signOut: true },
      );
      return never();
    }
    return leave("refused");
  }

  // Signs out of managed login too, so the next sign-in asks for a password again.
  function leave(notice) {
    sessionStorage.removeItem(PENDING);
    sessionStorage.setItem(NOTICE, notice);
    setState("signing-out");
    const url = new URL(`${authBase()}/logout`);
    url.search = new URLSearchParams({ client_id: config.clientId, logout_uri: config.redirectUri }).toString();
    window.location.assign(url.toString());
    return never();
  }

  function signOut() {
    onReset(); // the secret on screen and every message go first
    sessionStorage.removeItem(DRAFT);
    session.idToken = null;
    session.claims = null;
    session.expiresAt = 0;
    byId("session").hidden = true;
    return leave("signed-out");
  }

  // The create form saved before a re-sign-in, for the same user only.
  function takeDraft() {
    const saved = readJson(DRAFT);
    sessionStorage.removeItem(DRAFT);
    return saved && session.claims && saved.sub === session.claims.sub ? saved.draft : null;
  }

  return { begin, headers, apiUrl, identity, ensureFresh, answered, signOut, takeDraft, session };
})();
