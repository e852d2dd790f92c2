"""The local Cognito user pool of `make dev`, and the ID-token check of API Gateway's Cognito
user pool authorizer.

- `LocalUserPool`: a user pool on moto's cognito-idp (the dev server's embedded moto server),
  created from template.yaml's UserPool and UserPoolClient (their attributes, password policy,
  OAuth flows, scopes and token lifetimes), with the local console's URLs as its callback and
  sign-out URLs, and seeded users in two organisations and the three roles. Its ID tokens are
  moto's own: RS256, signed with the key moto publishes at the pool's
  /.well-known/jwks.json.
- `IdTokenVerifier`: what the ConsoleApi's Cognito authorizer checks before a function runs,
  for a method without OAuth scopes (ours): the signature (RS256 only, against the pool's
  JWKS), the issuer (this pool), the expiry, and that it is an ID token. It does not check the
  audience: the console's functions do (CONSOLE_CLIENT_IDS), as on AWS.

The signatures are checked by PyJWT, never by hand.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from devserver.template import load_template

REGION = "us-east-1"
# What template.yaml's UserPool and UserPoolClient set that CreateUserPool and
# CreateUserPoolClient take as they are (the rest is named here or is CloudFormation's only).
POOL_PROPERTIES = (
    "UsernameAttributes",
    "AutoVerifiedAttributes",
    "AdminCreateUserConfig",
    "MfaConfiguration",
    "AccountRecoverySetting",
    "Policies",
    "Schema",
)
CLIENT_PROPERTIES = (
    "GenerateSecret",
    "ExplicitAuthFlows",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "ReadAttributes",
    "WriteAttributes",
    "AllowedOAuthFlowsUserPoolClient",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "SupportedIdentityProviders",
    "IdTokenValidity",
    "AccessTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)


@dataclass(frozen=True)
class SeedUser:
    email: str
    name: str
    org_id: str | None  # None: a user no administrator has placed in an organisation yet
    role: str | None


SEED_USERS = (
    SeedUser("alice@acme.example", "Alice Admin", "org-acme", "admin"),
    SeedUser("bob@acme.example", "Bob Member", "org-acme", "member"),
    SeedUser("carol@acme.example", "Carol Viewer", "org-acme", "viewer"),
    SeedUser("dave@globex.example", "Dave Admin", "org-globex", "admin"),
    SeedUser("erin@globex.example", "Erin Member", "org-globex", "member"),
    SeedUser("frank@globex.example", "Frank Viewer", "org-globex", "viewer"),
    SeedUser("nora@newcomer.example", "Nora Newcomer", None, None),
)


class SignInFailed(Exception):
    """Wrong user name or password, or a user who cannot sign in (disabled, a challenge)."""


def new_password() -> str:
    """Random, and within the template's password policy (12+ characters, upper and lower case, digits)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(16))
        if all(any(test(char) for char in password) for test in (str.islower, str.isupper, str.isdigit)):
            return password


def _plain(properties: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The named properties that hold plain values (intrinsic functions are CloudFormation's)."""
    return {name: properties[name] for name in names if name in properties}


class LocalUserPool:
    """The user pool, its console app client and its users, on moto's cognito-idp at `endpoint`."""

    def __init__(self, endpoint: str, redirect_uris: Sequence[str], password: str | None = None) -> None:
        import boto3

        self.endpoint = endpoint
        self.client = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=REGION)
        resources = load_template()["Resources"]
        pool = self.client.create_user_pool(
            PoolName="api-tokens-local", **_plain(resources["UserPool"]["Properties"], POOL_PROPERTIES)
        )["UserPool"]
        self.pool_id: str = pool["Id"]
        self.redirect_uris = tuple(redirect_uris)
        app_client = self.client.create_user_pool_client(
            UserPoolId=self.pool_id,
            ClientName="api-tokens-console-local",
            CallbackURLs=list(self.redirect_uris),
            LogoutURLs=list(self.redirect_uris),
            **_plain(resources["UserPoolClient"]["Properties"], CLIENT_PROPERTIES),
        )["UserPoolClient"]
        self.client_id: str = app_client["ClientId"]
        self.passwords: dict[str, str] = {}
        for user in SEED_USERS:
            self.add_user(user, password or new_password())

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        """The pool's keys as moto serves them (on AWS: <issuer>/.well-known/jwks.json)."""
        return f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json"

    def add_user(self, user: SeedUser, password: str) -> None:
        attributes = {"email": user.email, "email_verified": "true", "name": user.name}
        if user.org_id is not None and user.role is not None:
            attributes.update({"custom:org_id": user.org_id, "custom:role": user.role})
        self.client.admin_create_user(
            UserPoolId=self.pool_id,
            Username=user.email,
            UserAttributes=[{"Name": name, "Value": value} for name, value in attributes.items()],
            MessageAction="SUPPRESS",
        )
        self.client.admin_set_user_password(
            UserPoolId=self.pool_id, Username=user.email, Password=password, Permanent=True
        )
        self.passwords[user.email] = password

    def app_client(self, client_id: str) -> dict[str, Any] | None:
        """The app client's settings (callback and sign-out URLs, flows, scopes), or None."""
        try:
            found: dict[str, Any] = self.client.describe_user_pool_client(UserPoolId=self.pool_id, ClientId=client_id)[
                "UserPoolClient"
            ]
        except self.client.exceptions.ResourceNotFoundException:
            return None
        return found

    def sign_in(self, client_id: str, username: str, password: str) -> dict[str, Any]:
        """Checks the password (AdminInitiateAuth); the tokens, the refresh token among them."""
        try:
            answer = self.client.admin_initiate_auth(
                UserPoolId=self.pool_id,
                ClientId=client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        except (
            self.client.exceptions.NotAuthorizedException,
            self.client.exceptions.UserNotFoundException,
            self.client.exceptions.UserNotConfirmedException,
        ) as error:
            raise SignInFailed("Incorrect username or password.") from error
        if "AuthenticationResult" not in answer:  # NEW_PASSWORD_REQUIRED, an MFA code...
            challenge = answer.get("ChallengeName")
            raise SignInFailed(f"This user must answer a {challenge} challenge, which the local sign-in cannot show.")
        result: dict[str, Any] = answer["AuthenticationResult"]
        return result

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        """New ID and access tokens for a signed-in session (REFRESH_TOKEN_AUTH): fresh times, and
        the user's attributes as they are now."""
        try:
            answer = self.client.admin_initiate_auth(
                UserPoolId=self.pool_id,
                ClientId=client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
            )
        except self.client.exceptions.NotAuthorizedException as error:
            raise SignInFailed("The session is no longer valid.") from error
        result: dict[str, Any] = answer["AuthenticationResult"]
        return result


def claim_text(value: Any) -> str:
    """A claim as API Gateway passes it to a REST API's function: every value a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(claim_text(item) for item in value) + "]"
    return str(value)


class IdTokenVerifier:
    """API Gateway's Cognito user pool authorizer, for a method without OAuth scopes: the
    Authorization header must be an ID token of the pool, signed with one of its keys (RS256),
    not expired. Anything else is None (a 401 before any function runs)."""

    ALGORITHMS = ("RS256",)  # Cognito's; "none", HS256 with the public key and the like are refused

    def __init__(self, issuer: str, jwks_url: str, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.clock = clock
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)

    def claims(self, authorization: str | None) -> dict[str, str] | None:
        if not authorization:
            return None
        try:
            key = self._keys.get_signing_key_from_jwt(authorization)
            claims: dict[str, Any] = jwt.decode(
                authorization,
                key.key,
                algorithms=list(self.ALGORITHMS),
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("token_use") != "id":  # an access token needs OAuth scopes on the method
            return None
        if float(claims["exp"]) <= self.clock():  # the gateway's own clock, to the second
            return None
        return {name: claim_text(value) for name, value in claims.items()}
