"""Signs in to the local dev server from a shell and prints the ID token, for curl:

    ID_TOKEN=$(python3 -m devserver.signin alice@acme.example)
    curl -H "Authorization: $ID_TOKEN" http://127.0.0.1:3000/tokens

The console's own sign-in, step by step: the authorization code grant with PKCE (S256) through
the dev server's managed login (/oauth2/authorize, the sign-in form, /oauth2/token). The
password: --password, else DEV_USER_PASSWORD, else asked (`make dev` prints every seeded user's).
Standard library only, so any python3 runs it from the repository's folder.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # every redirect is read here, not followed


_OPENER = urllib.request.build_opener(_NoRedirects)


def _send(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    """Status, Location and body of one request (a form POST with `data`, else a GET)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, response.headers.get("Location", ""), response.read()
    except urllib.error.HTTPError as error:  # 3xx (not followed) and 4xx
        return error.code, error.headers.get("Location", ""), error.read()


def sign_in(base_url: str, username: str, password: str) -> dict[str, Any]:
    """The token endpoint's answer (id_token, access_token, ...); SystemExit with the reason otherwise."""
    base_url = base_url.rstrip("/")
    try:
        status, _, body = _send(f"{base_url}/config.json")
    except OSError as error:
        raise SystemExit(f"{base_url} cannot be reached ({error}): is `make dev` running there?") from None
    if status != 200:
        raise SystemExit(f"{base_url}/config.json answered {status}: is `make dev` running there?")
    config = json.loads(body)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": config["clientId"],
            "redirect_uri": config["redirectUri"],
            "scope": "openid email profile",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    status, location, _ = _send(f"{base_url}/oauth2/authorize?{query}")
    if status != 302 or not location.startswith("/login"):
        raise SystemExit(f"/oauth2/authorize answered {status}, not the sign-in form.")
    status, location, _ = _send(base_url + location, {"username": username, "password": password}, {"Origin": base_url})
    callback = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if status != 302 or callback.get("state") != [state] or "code" not in callback:
        raise SystemExit(f"Sign-in refused for {username}: wrong email address or password?")
    status, _, body = _send(
        f"{base_url}/oauth2/token",
        {
            "grant_type": "authorization_code",
            "client_id": config["clientId"],
            "code": callback["code"][0],
            "redirect_uri": config["redirectUri"],
            "code_verifier": verifier,
        },
        {"Origin": base_url},
    )
    tokens: dict[str, Any] = json.loads(body)
    if status != 200:
        raise SystemExit(f"/oauth2/token answered {status}: {tokens}")
    return tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m devserver.signin", description=__doc__.splitlines()[0])
    parser.add_argument("username", help="A seeded user's email address, e.g. alice@acme.example")
    parser.add_argument("--password", help="Default: DEV_USER_PASSWORD, else asked")
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '3000')}", help="The dev server")
    args = parser.parse_args(argv)
    password = args.password or os.environ.get("DEV_USER_PASSWORD") or getpass.getpass(f"{args.username}'s password: ")
    print(sign_in(args.url, args.username, password)["id_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
