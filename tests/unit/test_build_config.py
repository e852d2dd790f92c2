"""How `sam build` builds the layer and the functions (tools/sam_build), checked without building:
every resource goes through the Makefile, which has its target; the layer's requirements leave
out what the Lambda runtime provides; build.py targets the template's runtime and architecture.
tests/system/test_build_artifacts.py runs the build itself."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import requires
from pathlib import Path
from types import ModuleType

import pytest

from devserver.template import ROOT, load_template

TOOLS = ROOT / "tools" / "sam_build"
LAYER = ROOT / "layers" / "tokens"
BUILT = {
    logical_id: resource
    for logical_id, resource in load_template()["Resources"].items()
    if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::LayerVersion"}
}


def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sam_build", TOOLS / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requirement_names(path: Path) -> dict[str, str]:
    """name -> the full requirement line (extras and specifiers), comments left out."""
    lines = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return {re.split(r"[\[<>=!~ ;]", line)[0].lower(): line for line in lines if line}


@pytest.mark.parametrize("logical_id", sorted(BUILT))
def test_every_function_and_the_layer_build_through_the_makefile(logical_id: str) -> None:
    metadata = BUILT[logical_id].get("Metadata", {})
    assert metadata.get("BuildMethod") == "makefile"
    assert (ROOT / metadata["ContextPath"] / "Makefile") == TOOLS / "Makefile"
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry_run = subprocess.run(  # noqa: S603
        ["make", "-n", "-f", str(TOOLS / "Makefile"), f"build-{logical_id}", "ARTIFACTS_DIR=/artifacts"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    kind = "layer" if BUILT[logical_id]["Type"] == "AWS::Serverless::LayerVersion" else "function"
    assert f'build.py {kind} . "/artifacts"' in dry_run.stdout


def test_the_build_targets_the_templates_runtime_and_architecture() -> None:
    script = build_script()
    function_globals = load_template()["Globals"]["Function"]
    assert function_globals["Runtime"] == "python{}.{}".format(*script.RUNTIME)
    assert function_globals["Architectures"] == ["arm64"] and script.PLATFORM.endswith("_aarch64")
    layer = BUILT["TokenLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == [function_globals["Runtime"]]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert script.UNCHECKED_HASH_FLAGS == 0b01  # PEP 552: hash-based, check_source off


def test_the_layer_bundles_nothing_the_runtime_provides() -> None:
    bundled = requirement_names(LAYER / "requirements.txt")
    no_deps = requirement_names(LAYER / "requirements-no-deps.txt")
    runtime = {"boto3", "botocore", "s3transfer"}
    assert not runtime & (set(bundled) | set(no_deps))
    # Powertools without [tracer]: its aws-xray-sdk would bring a second botocore.
    assert "[" not in bundled["aws-lambda-powertools"]
    # The X-Ray SDK comes without dependencies; every one of them but botocore is listed.
    assert "aws-xray-sdk" in no_deps
    xray_needs = {re.split(r"[<>=!~ ;(]", line)[0].lower() for line in requires("aws-xray-sdk") or []}
    assert xray_needs - runtime <= set(no_deps)


def test_the_layer_and_the_dev_environment_ask_for_the_same_versions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {re.split(r"[\[<>=!~ ;]", line)[0].lower(): line for line in project["dependencies"]}
    bundled = requirement_names(LAYER / "requirements.txt")
    for name in ("aws-lambda-powertools", "pydantic"):
        assert re.sub(r"\[.*\]", "", declared[name]).replace(" ", "") == bundled[name].replace(" ", "")
