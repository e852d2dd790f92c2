"""A local stand-in for Cognito's managed login, on the dev server's own origin: the endpoints
the console uses, with the authorization code grant and PKCE, for the local user pool.

- `GET /oauth2/authorize`: checks the app client, the redirect URI (one of the client's
  callback URLs, exactly), `response_type=code`, the scopes and PKCE (`code_challenge` with
  `code_challenge_method=S256`: required here, as the console always sends it). With a
  signed-in session (a cookie, an hour, as managed login's) it answers with a code at once;
  otherwise it redirects to the sign-in page, `/login`, with the same parameters.
- `GET /login` shows the sign-in form; `POST /login` checks the password with the pool
  (AdminInitiateAuth), starts the session and redirects to the redirect URI with `code` and
  `state`.
- `POST /oauth2/token` (form-encoded): `grant_type=authorization_code` with `client_id`,
  `code`, `redirect_uri` and `code_verifier`; a code is good once, for five minutes, for that
  client, redirect URI and verifier. The answer: `id_token`, `access_token`, `refresh_token`,
  `expires_in`, `token_type`, minted by the pool (moto's tokens) at that moment.
- `GET /logout?client_id=...&logout_uri=...`: ends the session and redirects to the sign-out
  URL, which must be one of the client's.

Errors that cannot safely go back to the application (an unknown client, a redirect URI that
is not the client's) are an error page, as OAuth 2.0 requires (RFC 6749 4.1.2.1); the others
go back to the redirect URI with `error`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from devserver.cognito import LocalUserPool, SignInFailed
from devserver.wsgi import IncomingRequest, Response

SESSION_COOKIE = "cognito"  # managed login's session cookie has this name too
SESSION_SECONDS = 3600  # managed login's session: an hour
CODE_SECONDS = 300  # an authorization code: five minutes, once
PATHS = frozenset({"/oauth2/authorize", "/login", "/oauth2/token", "/logout"})
_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 4.1
_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")  # BASE64URL(SHA-256), unpadded


@dataclass(frozen=True)
class Session:
    username: str
    refresh_token: str
    expires: float


@dataclass(frozen=True)
class Grant:
    """What an authorization code stands for, until it is redeemed."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    session: Session
    expires: float


class AuthorizeError(Exception):
    """A request to /oauth2/authorize or /login that is refused."""

    def __init__(self, error: str, description: str, *, redirect: bool) -> None:
        super().__init__(description)
        self.error, self.description, self.redirect = error, description, redirect


def code_challenge_of(verifier: str) -> str:
    """S256: BASE64URL(SHA-256(verifier)), without padding (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _first(values: Mapping[str, list[str]], name: str) -> str:
    found = values.get(name) or [""]
    return found[0]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def _redirect(location: str, cookie: str | None = None) -> Response:
    headers = {"Location": location, "Cache-Control": "no-store"}
    response = Response(b"", status=302, headers=headers)
    if cookie is not None:
        response.headers["Set-Cookie"] = cookie
    return response


def _with_query(uri: str, parameters: Mapping[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode({name: value for name, value in parameters.items() if value})


class ManagedLogin:
    """The endpoints above, for `pool`; sessions and codes live in memory."""

    def __init__(self, pool: LocalUserPool, clock: Callable[[], float] = time.time) -> None:
        self.pool = pool
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def handle(self, request: IncomingRequest) -> Response | None:
        """The answer to a managed login request; None when the path is not one of them."""
        if request.path not in PATHS:
            return None
        route = (request.method, request.path)
        if route in {("GET", "/oauth2/authorize"), ("HEAD", "/oauth2/authorize")}:
            return self.authorize(request)
        if route in {("GET", "/login"), ("HEAD", "/login")}:
            return self.login_page(request)
        if route == ("POST", "/login"):
            return self.login(request)
        if route == ("POST", "/oauth2/token"):
            return self.token(request)
        if route in {("GET", "/logout"), ("HEAD", "/logout")}:
            return self.logout(request)
        return _error_page(405, "This endpoint does not take that method.")

    # -- /oauth2/authorize and /login ------------------------------------------------------------

    def _check_authorize(self, query: Mapping[str, list[str]]) -> dict[str, str]:
        """The parameters of a valid request; AuthorizeError otherwise."""
        parameters = {
            name: _first(query, name)
            for name in ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge")
        }
        parameters["code_challenge_method"] = _first(query, "code_challenge_method")
        app_client = self.pool.app_client(parameters["client_id"]) if parameters["client_id"] else None
        if app_client is None:
            raise AuthorizeError("invalid_request", "No such app client (client_id).", redirect=False)
        if parameters["redirect_uri"] not in app_client.get("CallbackURLs", []):
            raise AuthorizeError(
                "redirect_mismatch", "redirect_uri is not one of the app client's callback URLs.", redirect=False
            )
        if parameters["response_type"] != "code" or "code" not in app_client.get("AllowedOAuthFlows", []):
            raise AuthorizeError("unsupported_response_type", "response_type must be code.", redirect=True)
        scopes = parameters["scope"].split()
        if not scopes or not set(scopes) <= set(app_client.get("AllowedOAuthScopes", [])):
            raise AuthorizeError("invalid_scope", "scope must be some of the app client's scopes.", redirect=True)
        if parameters["code_challenge_method"] != "S256" or not _PKCE_CHALLENGE.fullmatch(parameters["code_challenge"]):
            raise AuthorizeError(
                "invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256.", redirect=True
            )
        return parameters

    def _refused(self, error: AuthorizeError, query: Mapping[str, list[str]]) -> Response:
        if not error.redirect:
            return _error_page(400, f"Sign-in error: {error.description}")
        return _redirect(
            _with_query(
                _first(query, "redirect_uri"),
                {"error": error.error, "error_description": error.description, "state": _first(query, "state")},
            )
        )

    def _session(self, request: IncomingRequest) -> tuple[str, Session] | None:
        cookie = SimpleCookie()
        try:
            cookie.load(_header(request.headers, "Cookie") or "")
        except CookieError:  # a malformed Cookie header is no session
            return None
        morsel = cookie.get(SESSION_COOKIE)
        if morsel is None:
            return None
        with self._lock:
            session = self._sessions.get(morsel.value)
            if session is not None and session.expires <= self.clock():
                del self._sessions[morsel.value]
                session = None
        return (morsel.value, session) if session is not None else None

    def _code_for(self, parameters: Mapping[str, str], session: Session) -> str:
        code = secrets.token_urlsafe(32)
        grant = Grant(
            client_id=parameters["client_id"],
            redirect_uri=parameters["redirect_uri"],
            code_challenge=parameters["code_challenge"],
            scope=parameters["scope"],
            session=session,
            expires=self.clock() + CODE_SECONDS,
        )
        with self._lock:
            self._grants = {key: value for key, value in self._grants.items() if value.expires > self.clock()}
            self._grants[code] = grant
        return code

    def authorize(self, request: IncomingRequest) -> Response:
        try:
            parameters = self._check_authorize(request.query)
        except AuthorizeError as error:
            return self._refused(error, request.query)
        found = self._session(request)
        if found is None:
            return _redirect("/login?" + urlencode({name: value for name, value in parameters.items() if value}))
        code = self._code_for(parameters, found[1])
        return _redirect(_with_query(parameters["redirect_uri"], {"code": code, "state": parameters["state"]}))

    def login_page(self, request: IncomingRequest) -> Response:
        try:
            parameters = self._check_authorize(request.query)
        except AuthorizeError as error:
            return self._refused(error, request.query)
        action = "/login?" + urlencode({name: value for name, value in parameters.items() if value})
        return _sign_in_page(action, "", "", 200)

    def login(self, request: IncomingRequest) -> Response:
        try:
            parameters = self._check_authorize(request.query)
        except AuthorizeError as error:
            return self._refused(error, request.query)
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        username, password = form.get("username", "").strip(), form.get("password", "")
        action = "/login?" + urlencode({name: value for name, value in parameters.items() if value})
        if not username or not password:
            return _sign_in_page(action, "Enter your email address and your password.", username, 400)
        try:
            result = self.pool.sign_in(parameters["client_id"], username, password)
        except SignInFailed as failed:
            return _sign_in_page(action, str(failed), username, 400)
        session = Session(username, result["RefreshToken"], self.clock() + SESSION_SECONDS)
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = session
        code = self._code_for(parameters, session)
        cookie = f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECONDS}"
        return _redirect(_with_query(parameters["redirect_uri"], {"code": code, "state": parameters["state"]}), cookie)

    # -- /oauth2/token -------------------------------------------------------------------------------

    def token(self, request: IncomingRequest) -> Response:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return _token_error(400, "invalid_request", "The body must be application/x-www-form-urlencoded.")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "authorization_code":
            return _token_error(400, "unsupported_grant_type", "grant_type must be authorization_code.")
        missing = [name for name in ("client_id", "code", "redirect_uri", "code_verifier") if not form.get(name)]
        if missing:
            return _token_error(400, "invalid_request", f"Missing {', '.join(missing)}.")
        with self._lock:
            grant = self._grants.pop(form["code"], None)  # once, whatever comes next
        if grant is None or grant.expires <= self.clock():
            return _token_error(400, "invalid_grant", "The code is unknown, used or expired.")
        if form["client_id"] != grant.client_id:
            return _token_error(400, "invalid_grant", "The code was issued to another client.")
        if form["redirect_uri"] != grant.redirect_uri:
            return _token_error(400, "invalid_grant", "redirect_uri is not the one the code was issued for.")
        verifier = form["code_verifier"]
        if not _PKCE_VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            code_challenge_of(verifier), grant.code_challenge
        ):
            return _token_error(400, "invalid_grant", "code_verifier does not match the code_challenge.")
        try:
            tokens = self.pool.refresh(grant.client_id, grant.session.refresh_token)
        except SignInFailed:
            return _token_error(400, "invalid_grant", "The session behind the code has ended.")
        payload = {
            "id_token": tokens["IdToken"],
            "access_token": tokens["AccessToken"],
            "refresh_token": grant.session.refresh_token,
            "expires_in": int(tokens.get("ExpiresIn", 3600)),
            "token_type": "Bearer",
        }
        return Response(
            json.dumps(payload),
            status=200,
            headers={"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    # -- /logout ------------------------------------------------------------------------------------------

    def logout(self, request: IncomingRequest) -> Response:
        client_id, logout_uri = _first(request.query, "client_id"), _first(request.query, "logout_uri")
        app_client = self.pool.app_client(client_id) if client_id else None
        if app_client is None:
            return _error_page(400, "Sign-out error: no such app client (client_id).")
        if logout_uri not in app_client.get("LogoutURLs", []):
            return _error_page(400, "Sign-out error: logout_uri is not one of the app client's sign-out URLs.")
        found = self._session(request)
        if found is not None:
            with self._lock:
                self._sessions.pop(found[0], None)
                self._grants = {key: grant for key, grant in self._grants.items() if grant.session is not found[1]}
        return _redirect(logout_uri, f"{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")


def _token_error(status: int, error: str, description: str) -> Response:
    return Response(
        json.dumps({"error": error, "error_description": description}),
        status=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · API Tokens (local)</title>
  <link rel="stylesheet" href="/console/style.css">
</head>
<body class="managed-login">
  <main>
    <h1>{title}</h1>
    {content}
  </main>
</body>
</html>
"""


def _page(status: int, title: str, content: str) -> Response:
    body = _PAGE.format(title=html.escape(title), content=content)
    return Response(
        body,
        status=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            # No script, no framing (clickjacking of the password form), forms post here only.
            "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            # Not no-referrer: with it, browsers send `Origin: null` with the form, which the dev
            # server refuses as a cross-site write.
            "Referrer-Policy": "same-origin",
        },
    )


def _error_page(status: int, message: str) -> Response:
    return _page(status, "Sign-in error", f'<p class="alert" role="alert">{html.escape(message)}</p>')


def _sign_in_page(action: str, message: str, username: str, status: int) -> Response:
    alert = f'<p id="sign-in-error" class="alert" role="alert">{html.escape(message)}</p>' if message else ""
    content = f"""<p class="lead">The dev server's stand-in for Cognito managed login. <code>make dev</code>
      printed the local users and their passwords when it started.</p>
    {alert}
    <form id="sign-in-form" class="card" method="post" action="{html.escape(action)}">
      <div class="field">
        <label for="username">Email address</label>
        <input id="username" name="username" type="email" autocomplete="username" required
          value="{html.escape(username)}">
      </div>
      <div class="field">
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required>
      </div>
      <div class="actions"><button type="submit" class="primary">Sign in</button></div>
    </form>"""
    return _page(status, "Sign in", content)
