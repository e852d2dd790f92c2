"""Uploads the console to the stack's bucket with its runtime configuration, then invalidates the
CloudFront distribution in front of it. The last step of `make deploy`, after `sam deploy`.

1. Reads the stack's outputs (CloudFormation DescribeStacks): ApiUrl, ConsoleUrl,
   ConsoleBucketName, ConsoleDistributionId, UserPoolId, UserPoolClientId, ConsoleAuthDomainUrl.
2. Uploads devserver/console/* at the paths the dev server serves them at (`/` is index.html,
   every file is also under /console/), each with its Content-Type and a Cache-Control:
   `no-cache` for the pages and config.json (browsers revalidate them on every load, so a deploy
   shows at once), `public, max-age=300` for scripts and style sheets. Each page gets a
   Content-Security-Policy <meta> that narrows the template's connect-src (which can name the
   API only by its regional execute-api domain) to the API's and the sign-in domain's origins.
3. Writes /config.json, which the console reads at start:
   {"apiUrl", "userPoolId", "clientId", "authDomain", "redirectUri", "region"}; and the API
   reference the dev server serves: /docs (docs.html) and /openapi.json (generated from the
   handlers' models, with the console API's URL as its server).
4. Deletes objects a previous upload left that this one does not have, then invalidates /* .

The stack name, region and profile come from samconfig.toml (`--config-env`, as `sam deploy`);
`--stack-name` and `--region` override them. With an existing user pool (ExistingUserPoolArn),
the pool's id comes from that ARN, the app client from ExistingUserPoolClientIds (the first) and
the sign-in domain from ExistingUserPoolDomain (the ConsoleAuthDomainUrl output); `--user-pool-id`,
`--client-id` and the other flags override any of them.

    .venv/bin/python tools/deploy_console.py [--config-env prod] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_DIR = ROOT / "devserver" / "console"
SAMCONFIG = ROOT / "samconfig.toml"
CONFIG_KEY = "config.json"
OPENAPI_KEY = "openapi.json"
PAGE_CACHE = "no-cache"  # revalidated on every load (ETag): a deploy shows at once
ASSET_CACHE = "public, max-age=300"  # scripts and style sheets: at most 5 minutes old
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
_HEAD = re.compile(rb"<head(\s[^>]*)?>", re.IGNORECASE)


class DeployError(Exception):
    """Something the operator must fix; the message says what."""


@dataclass(frozen=True)
class Target:
    """Where the console goes, and what config.json tells it."""

    bucket: str
    distribution_id: str
    settings: dict[str, str]  # config.json


@dataclass(frozen=True)
class Upload:
    key: str
    body: bytes
    content_type: str
    cache_control: str


# -- where ---------------------------------------------------------------------------------------


def samconfig_parameters(path: Path, config_env: str) -> dict[str, Any]:
    """The stack name, region and profile `sam deploy --config-env <env>` uses (its global
    parameters, then its deploy parameters); {} without the file."""
    if not path.is_file():
        return {}
    with path.open("rb") as stream:
        config = tomllib.load(stream)
    environment = config.get(config_env, {})
    merged = {
        **environment.get("global", {}).get("parameters", {}),
        **environment.get("deploy", {}).get("parameters", {}),
    }
    return {key: merged[key] for key in ("stack_name", "region", "profile") if merged.get(key)}


def stack_outputs(cloudformation: Any, stack_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The stack's outputs and parameters, by key."""
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except cloudformation.exceptions.ClientError as error:
        raise DeployError(f"stack {stack_name}: {error.response['Error']['Message']} (deploy it first)") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    parameters = {item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])}
    return outputs, parameters


def target_of(
    outputs: Mapping[str, str], parameters: Mapping[str, str], region: str, overrides: Mapping[str, str | None]
) -> Target:
    """The bucket, the distribution and config.json, from the stack's outputs (overrides first)."""

    def value(name: str, output: str, flag: str) -> str:
        found = overrides.get(name) or outputs.get(output)
        if not found:
            raise DeployError(f"the stack has no {output} output: pass {flag}")
        return found.rstrip("/")

    existing_pool = parameters.get("ExistingUserPoolArn", "")
    pool_id = overrides.get("user_pool_id") or outputs.get("UserPoolId") or existing_pool.rpartition("/")[2]
    if not pool_id:
        raise DeployError("the stack has no UserPoolId output nor ExistingUserPoolArn: pass --user-pool-id")
    # An existing pool's app clients are the ExistingUserPoolClientIds parameter: the console uses the first.
    existing_clients = [text.strip() for text in parameters.get("ExistingUserPoolClientIds", "").split(",")]
    client_id = overrides.get("client_id") or outputs.get("UserPoolClientId") or existing_clients[0]
    if not client_id:
        raise DeployError("the stack has no UserPoolClientId output nor ExistingUserPoolClientIds: pass --client-id")
    console_url = value("console_url", "ConsoleUrl", "--console-url")
    settings = {
        "apiUrl": value("api_url", "ApiUrl", "--api-url"),
        "userPoolId": pool_id,
        "clientId": client_id,
        "authDomain": value("auth_domain", "ConsoleAuthDomainUrl", "--auth-domain"),
        "redirectUri": console_url + "/",
        "region": region,
    }
    for name in ("apiUrl", "authDomain", "redirectUri"):
        if urlsplit(settings[name]).scheme != "https":
            raise DeployError(f"{name} must be an https URL: {settings[name]}")
    return Target(
        bucket=value("bucket", "ConsoleBucketName", "--bucket"),
        distribution_id=value("distribution_id", "ConsoleDistributionId", "--distribution-id"),
        settings=settings,
    )


# -- what ----------------------------------------------------------------------------------------


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def connect_sources(settings: Mapping[str, str]) -> str:
    """connect-src of the pages: their own origin, the console API's and the sign-in domain's."""
    origins = [f"{part.scheme}://{part.netloc}" for part in map(urlsplit, (settings["apiUrl"], settings["authDomain"]))]
    return " ".join(["'self'", *dict.fromkeys(origins)])


def with_csp_meta(page: bytes, settings: Mapping[str, str]) -> bytes:
    """The page with a Content-Security-Policy <meta> first in its <head>. Browsers enforce it
    besides the distribution's header, so the narrower connect-src wins."""
    head = _HEAD.search(page)
    if head is None:
        raise DeployError("a console page has no <head>: the CSP <meta> has nowhere to go")
    meta = f'\n  <meta http-equiv="Content-Security-Policy" content="connect-src {connect_sources(settings)}">'
    return page[: head.end()] + meta.encode() + page[head.end() :]


def console_uploads(console_dir: Path, settings: Mapping[str, str]) -> list[Upload]:
    """Every object of the console, in upload order: scripts and styles first, then config.json,
    then the pages, so that no page is served before what it loads."""
    files = sorted(path for path in console_dir.iterdir() if path.is_file() and not path.name.startswith("."))
    if not any(path.name == "index.html" for path in files):
        raise DeployError(f"{console_dir} has no index.html")
    assets, pages = [], []
    for path in files:
        body = path.read_bytes()
        if path.suffix == ".html":
            body = with_csp_meta(body, settings)
            pages.append(Upload(f"console/{path.name}", body, content_type(path.name), PAGE_CACHE))
            if path.name == "index.html":  # the distribution's default root object: /
                pages.append(Upload("index.html", body, content_type(path.name), PAGE_CACHE))
            if path.name == "docs.html":  # the API reference at /docs, as the dev server serves it
                pages.append(Upload("docs", body, content_type(path.name), PAGE_CACHE))
        else:
            assets.append(Upload(f"console/{path.name}", body, content_type(path.name), ASSET_CACHE))
    config = Upload(CONFIG_KEY, json.dumps(dict(settings), indent=2).encode() + b"\n", "application/json", PAGE_CACHE)
    reference = Upload(OPENAPI_KEY, api_reference(settings["apiUrl"]), "application/json", PAGE_CACHE)
    return [*assets, config, reference, *pages]


def api_reference(api_url: str) -> bytes:
    """The OpenAPI document /docs reads, generated from the handlers' own models (what the dev
    server serves at /openapi.json), with the console API's URL as its server."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # The document reads the configuration's catalog and route map paths; the table's name is
    # required by the configuration but appears nowhere in the document.
    os.environ.setdefault("TABLE_NAME", "api-tokens")
    from devserver.openapi import openapi_document

    return json.dumps(openapi_document(api_url), indent=2).encode() + b"\n"


# -- doing it ------------------------------------------------------------------------------------


def upload(s3: Any, bucket: str, uploads: Sequence[Upload]) -> list[str]:
    """Puts every object, then deletes what the bucket holds besides them; the deleted keys."""
    for item in uploads:
        s3.put_object(
            Bucket=bucket, Key=item.key, Body=item.body, ContentType=item.content_type, CacheControl=item.cache_control
        )
    wanted = {item.key for item in uploads}
    stale = [
        entry["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for entry in page.get("Contents", [])
        if entry["Key"] not in wanted
    ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in stale[start : start + 1000]]})
    return stale


def invalidate(cloudfront: Any, distribution_id: str) -> str:
    """Drops every cached object of the distribution; the invalidation's id."""
    answer = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": f"console-{time.time_ns()}"},
    )
    return str(answer["Invalidation"]["Id"])


def deploy_console(session: Any, stack_name: str, console_dir: Path, overrides: Mapping[str, str | None]) -> Target:
    cloudformation = session.client("cloudformation")
    outputs, parameters = stack_outputs(cloudformation, stack_name)
    target = target_of(outputs, parameters, cloudformation.meta.region_name, overrides)
    uploads = console_uploads(console_dir, target.settings)
    stale = upload(session.client("s3"), target.bucket, uploads)
    print(f"uploaded {len(uploads)} objects to s3://{target.bucket} ({len(stale)} stale ones deleted)")
    print(f"config.json: {json.dumps(target.settings)}")
    invalidation = invalidate(session.client("cloudfront"), target.distribution_id)
    print(
        f"invalidating /* on {target.distribution_id} ({invalidation}); the console: {target.settings['redirectUri']}"
    )
    return target


def main(argv: Sequence[str] | None = None, session_factory: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/deploy_console.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment (default: default)")
    parser.add_argument("--samconfig", type=Path, default=SAMCONFIG)
    parser.add_argument("--stack-name", help="default: samconfig.toml's stack_name")
    parser.add_argument("--region", help="default: samconfig.toml's, else your AWS profile's or AWS_REGION")
    parser.add_argument("--profile", help="default: samconfig.toml's, else the default AWS profile")
    parser.add_argument("--console-dir", type=Path, default=CONSOLE_DIR)
    for flag in ("api-url", "user-pool-id", "client-id", "auth-domain", "console-url", "bucket", "distribution-id"):
        parser.add_argument(f"--{flag}", help="instead of the stack's output")
    parser.add_argument("--dry-run", action="store_true", help="print config.json and the objects; change nothing")
    args = parser.parse_args(argv)
    saved = samconfig_parameters(args.samconfig, args.config_env)
    stack_name = args.stack_name or saved.get("stack_name")
    if not stack_name:
        parser.error(f"no stack name: pass --stack-name or set stack_name in {args.samconfig} [{args.config_env}]")
    if session_factory is None:
        import boto3

        session_factory = boto3.Session
    session = session_factory(
        region_name=args.region or saved.get("region"), profile_name=args.profile or saved.get("profile")
    )
    overrides = {
        name: getattr(args, name)
        for name in ("api_url", "user_pool_id", "client_id", "auth_domain", "console_url", "bucket", "distribution_id")
    }
    try:
        if args.dry_run:
            cloudformation = session.client("cloudformation")
            target = target_of(*stack_outputs(cloudformation, stack_name), cloudformation.meta.region_name, overrides)
            print(json.dumps(target.settings, indent=2))
            for item in console_uploads(args.console_dir, target.settings):
                print(f"s3://{target.bucket}/{item.key}  {item.content_type}  {item.cache_control}")
        else:
            deploy_console(session, stack_name, args.console_dir, overrides)
    except DeployError as error:
        print(f"deploy_console: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
