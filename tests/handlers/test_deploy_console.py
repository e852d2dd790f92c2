"""`make deploy`'s last step, tools/deploy_console.py, against moto's CloudFormation, S3 and
CloudFront: it reads the stack's outputs, uploads the console with the right Content-Type and
Cache-Control, writes config.json, narrows the pages' connect-src, removes what an earlier upload
left, and invalidates the distribution. No AWS account: everything here is moto."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devserver.template import ROOT
from tools import deploy_console

REGION = "eu-west-1"  # not the tests' default region: the tool must take samconfig.toml's
STACK = "api-tokens-test"
API_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod"
AUTH_DOMAIN = "https://api-tokens-123456789012.auth.eu-west-1.amazoncognito.com"
CONSOLE_FILES = sorted(path.name for path in (ROOT / "devserver" / "console").iterdir() if path.is_file())
META = re.compile(rb'\n  <meta http-equiv="Content-Security-Policy" content="([^"]*)">')


@contextmanager
def deployed_stack(
    tmp_path: Path, *, existing_pool: bool = False, existing_clients: str = ""
) -> Iterator[dict[str, Any]]:
    """A stack as `sam deploy` leaves it: its bucket (made by CloudFormation), a distribution and
    the outputs the tool reads; and a samconfig.toml naming the stack and the region."""
    with mock_aws():
        cloudfront = boto3.client("cloudfront")
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "console",
                "Comment": "console",
                "Enabled": True,
                "DefaultRootObject": "index.html",
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "bucket",
                            "DomainName": "bucket.s3.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {"TargetOriginId": "bucket", "ViewerProtocolPolicy": "redirect-to-https"},
            }
        )["Distribution"]
        outputs: dict[str, Any] = {
            "ApiUrl": API_URL,
            "ConsoleUrl": f"https://{distribution['DomainName']}",
            "ConsoleBucketName": {"Ref": "ConsoleBucket"},
            "ConsoleDistributionId": distribution["Id"],
            "ConsoleAuthDomainUrl": AUTH_DOMAIN,
        }
        if not existing_pool:
            outputs |= {"UserPoolId": "eu-west-1_AbCdEf123", "UserPoolClientId": "4example0client0id0abcdef"}
        template = {
            "Parameters": {
                "ExistingUserPoolArn": {"Type": "String", "Default": ""},
                "ExistingUserPoolClientIds": {"Type": "String", "Default": ""},
            },
            "Resources": {"ConsoleBucket": {"Type": "AWS::S3::Bucket"}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        pool_arn = f"arn:aws:cognito-idp:{REGION}:123456789012:userpool/eu-west-1_Existing99" if existing_pool else ""
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": "ExistingUserPoolArn", "ParameterValue": pool_arn},
                {"ParameterKey": "ExistingUserPoolClientIds", "ParameterValue": existing_clients},
            ],
        )
        stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        found = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
        samconfig = tmp_path / "samconfig.toml"
        samconfig.write_text(
            f'version = 0.1\n[default.global.parameters]\nstack_name = "{STACK}"\n'
            f'[default.deploy.parameters]\nregion = "{REGION}"\ncapabilities = "CAPABILITY_IAM"\n',
            encoding="utf-8",
        )
        yield {
            "outputs": found,
            "samconfig": samconfig,
            "s3": boto3.client("s3", region_name=REGION),
            "cloudfront": cloudfront,
        }


def objects(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    s3, bucket = stack["s3"], stack["outputs"]["ConsoleBucketName"]
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key) for key in keys}


def test_make_deploy_uploads_the_console_with_its_configuration_and_invalidates_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with deployed_stack(tmp_path) as stack:
        bucket = stack["outputs"]["ConsoleBucketName"]
        stack["s3"].put_object(Bucket=bucket, Key="console/removed-since.js", Body=b"old")

        assert deploy_console.main(["--samconfig", str(stack["samconfig"])]) == 0

        uploaded = objects(stack)
        pages = {"index.html", "docs"}  # / and /docs, as the dev server serves them
        assert set(uploaded) == {*pages, "config.json", "openapi.json", *(f"console/{name}" for name in CONSOLE_FILES)}
        # /docs reads the API's document, with the console API as its server.
        reference = json.loads(uploaded["openapi.json"]["Body"].read())
        assert reference["servers"] == [{"url": API_URL}] and "/tokens" in reference["paths"]
        config = json.loads(uploaded["config.json"]["Body"].read())
        assert config == {
            "apiUrl": API_URL,
            "userPoolId": "eu-west-1_AbCdEf123",
            "clientId": "4example0client0id0abcdef",
            "authDomain": AUTH_DOMAIN,
            "redirectUri": stack["outputs"]["ConsoleUrl"] + "/",
            "region": REGION,
        }
        types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json"}
        for key, answer in uploaded.items():
            suffix = Path(key).suffix or ".html"  # /docs is a page
            assert answer["ContentType"].split(";")[0] == types[suffix], key
            # Pages and config.json revalidate on every load; scripts and styles live 5 minutes.
            expected = "no-cache" if suffix in {".html", ".json"} else "public, max-age=300"
            assert answer["CacheControl"] == expected, key

        invalidations = stack["cloudfront"].list_invalidations(DistributionId=stack["outputs"]["ConsoleDistributionId"])
        [invalidation] = invalidations["InvalidationList"]["Items"]
        batch = stack["cloudfront"].get_invalidation(
            DistributionId=stack["outputs"]["ConsoleDistributionId"], Id=invalidation["Id"]
        )["Invalidation"]["InvalidationBatch"]
        assert batch["Paths"]["Items"] == ["/*"]
    assert "1 stale ones deleted" in capsys.readouterr().out


def test_every_page_is_the_console_s_own_with_connect_src_narrowed_to_the_api_and_sign_in(tmp_path: Path) -> None:
    """The template's CSP names the API by its regional execute-api domain (the API's id would
    make a dependency cycle); the <meta> each page gets narrows connect-src to the exact origins."""
    with deployed_stack(tmp_path) as stack:
        assert deploy_console.main(["--samconfig", str(stack["samconfig"])]) == 0
        uploaded = objects(stack)
    pages = {key: answer["Body"].read() for key, answer in uploaded.items() if key.endswith(".html") or key == "docs"}
    assert pages["index.html"] == pages["console/index.html"] and pages["docs"] == pages["console/docs.html"]
    for key, page in pages.items():
        [policy] = META.findall(page)
        assert policy.decode() == (
            "connect-src 'self' https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com "
            "https://api-tokens-123456789012.auth.eu-west-1.amazoncognito.com"
        )
        source = (ROOT / "devserver" / "console" / ("docs.html" if key == "docs" else Path(key).name)).read_bytes()
        assert META.sub(b"", page) == source, key  # nothing else changed
        assert page.index(b"<meta http-equiv") < page.index(b"<script"), key  # before any script runs


def test_scripts_and_styles_are_uploaded_byte_for_byte(tmp_path: Path) -> None:
    with deployed_stack(tmp_path) as stack:
        assert deploy_console.main(["--samconfig", str(stack["samconfig"])]) == 0
        uploaded = objects(stack)
    for name in CONSOLE_FILES:
        if not name.endswith(".html"):
            assert uploaded[f"console/{name}"]["Body"].read() == (ROOT / "devserver" / "console" / name).read_bytes()


def test_an_existing_user_pool_s_id_and_app_client_come_from_the_stack_s_parameters(tmp_path: Path) -> None:
    """With ExistingUserPoolArn the stack creates no pool and no app client: the pool's id is the
    ARN's last part, the app client the first of ExistingUserPoolClientIds."""
    with deployed_stack(tmp_path, existing_pool=True, existing_clients="7console0client, 8cli0client") as stack:
        assert deploy_console.main(["--samconfig", str(stack["samconfig"])]) == 0
        config = json.loads(objects(stack)["config.json"]["Body"].read())
    assert (config["userPoolId"], config["clientId"]) == ("eu-west-1_Existing99", "7console0client")
    assert config["authDomain"] == AUTH_DOMAIN  # the ConsoleAuthDomainUrl output: ExistingUserPoolDomain


def test_without_an_app_client_the_tool_names_the_flag_and_uploads_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with deployed_stack(tmp_path, existing_pool=True) as stack:
        assert deploy_console.main(["--samconfig", str(stack["samconfig"])]) == 1
        assert "pass --client-id" in capsys.readouterr().err
        assert objects(stack) == {}

        arguments = ["--samconfig", str(stack["samconfig"]), "--client-id", "9given0client"]
        assert deploy_console.main(arguments) == 0
        assert json.loads(objects(stack)["config.json"]["Body"].read())["clientId"] == "9given0client"


def test_a_stack_that_is_not_deployed_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with deployed_stack(tmp_path) as stack:
        arguments = ["--samconfig", str(stack["samconfig"]), "--stack-name", "never-deployed"]
        assert deploy_console.main(arguments) == 1
    error = capsys.readouterr().err
    assert "stack never-deployed" in error and "deploy it first" in error


def test_a_dry_run_prints_config_json_and_the_objects_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with deployed_stack(tmp_path) as stack:
        assert deploy_console.main(["--samconfig", str(stack["samconfig"]), "--dry-run"]) == 0
        assert objects(stack) == {}
        assert (
            "Items"
            not in stack["cloudfront"].list_invalidations(DistributionId=stack["outputs"]["ConsoleDistributionId"])[
                "InvalidationList"
            ]
        )
    printed = capsys.readouterr().out
    assert f'"apiUrl": "{API_URL}"' in printed
    assert "/console/app.js  text/javascript; charset=utf-8  public, max-age=300" in printed
