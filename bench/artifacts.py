"""The `sam build` output, laid out as Lambda runs it, for figure 3's cold starts.

`build()` runs `sam build` (tools/sam_build) with a python3.13 on PATH into a folder of its
own, then lays out read-only copies: each function's folder (/var/task), the layer's
`python/` (/opt/python), and a stand-in for the runtime's own packages (/var/runtime: boto3
and botocore from PyPI, pip's timestamp bytecode; no awscrt). The layer is built for arm64;
on another machine its compiled extensions are swapped for the same versions' wheels of this
machine (reported). `environment()` is a function's environment from template.yaml.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from bench.environment import CONSOLE_CLIENT_ID, EVENT_BUS_NAME, REGION, ROOT, TABLE_NAME
from devserver.template import load_template, parameter_default

RUNTIME_PACKAGES = ["boto3>=1.34,<2"]
# Stand-ins for the stack's other resources (!Ref of resources; !Sub's ${Resource.Attribute}).
# The pool is the sample events' (events/membership_cloudtrail.json).
RESOURCE_NAMES = {
    "TokensTable": TABLE_NAME,
    "TokenEventBus": EVENT_BUS_NAME,
    "TokenApi": "benchapi01",
    "UserPool": "us-east-1_EXAMPLE",
    "UserPoolClient": CONSOLE_CLIENT_ID,
    "ConsoleDistribution.DomainName": "d111111abcdef8.cloudfront.net",
}
QUEUE_NAME = "api-tokens-FlushQueue"


def python313() -> str:
    directory = subprocess.run(  # noqa: S603 (our own script)
        [str(ROOT / "tools" / "python313-dir")], capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(Path(directory) / "python3.13")


def _pip(python: str, target: Path, *arguments: str) -> None:
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target)]
    subprocess.run([*command, *arguments], check=True, capture_output=True)  # noqa: S603


def _read_only(path: Path) -> None:
    for directory, _, files in os.walk(path):
        for name in [*files, "."]:
            entry = Path(directory, name)
            entry.chmod(stat.S_IMODE(entry.stat().st_mode) & ~0o222)


def _swap_native(python: str, layer: Path) -> list[str]:
    """Reinstalls, for this machine, each layer package that ships an extension of another."""
    machine = platform.machine()
    if machine in {"aarch64", "arm64"}:
        return []
    swapped = []
    for record in layer.glob("*.dist-info/RECORD"):
        if "aarch64" in record.read_text():
            name, version = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)
            wheel = f"{name}=={version}"
            _pip(python, layer, "--no-deps", "--upgrade", "--only-binary=:all:", wheel)
            swapped.append(wheel)
    return swapped


def build(workdir: Path, functions: list[str]) -> dict[str, Any]:
    """`sam build`, then read-only copies; returns the paths and what was swapped."""
    python = python313()
    environment = {**os.environ, "PATH": f"{Path(python).parent}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    built = workdir / "sam-build"
    sam = str(ROOT / ".venv" / "bin" / "sam")
    subprocess.run(  # noqa: S603
        [sam, "build", "--build-dir", str(built), "--cache-dir", str(workdir / "cache")],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
    )
    lambda_root = workdir / "lambda"
    layer = lambda_root / "opt" / "python"
    shutil.copytree(built / "TokenLayer" / "python", layer)
    swapped = _swap_native(python, layer)
    for name in functions:
        shutil.copytree(built / name, lambda_root / "task" / name)
    runtime = lambda_root / "runtime"
    _pip(python, runtime, *RUNTIME_PACKAGES)
    for extra in runtime.glob("awscrt*"):  # not in the runtime; botocore imports it when present
        shutil.rmtree(extra)
    launcher = lambda_root / "launcher"
    launcher.mkdir()
    shutil.copy(Path(__file__).with_name("coldstart_child.py"), launcher)
    _read_only(lambda_root)
    versions = sorted(path.name.removesuffix(".dist-info") for path in runtime.glob("boto*.dist-info"))
    return {
        "python": python,
        "root": str(lambda_root),
        "layer": str(layer),
        "runtime": str(runtime),
        "child": str(launcher / "coldstart_child.py"),
        "tasks": {name: str(lambda_root / "task" / name) for name in functions},
        "swapped": swapped,
        "runtime_packages": versions,
    }


def cleanup(root: str) -> None:
    """Makes the read-only copies writable again, so that the temporary folder can go."""
    for directory, _, _files in os.walk(root):
        Path(directory).chmod(0o755)


def _condition(name: str, template: dict[str, Any]) -> bool:
    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Equals" in node:
            left, right = (value(item) for item in node["Equals"])
            return left == right
        if isinstance(node, dict) and "Not" in node:
            return not value(node["Not"][0])
        if isinstance(node, dict) and "Ref" in node:
            return parameter_default(node["Ref"])
        return node

    return bool(value(template["Conditions"][name]))


def _resolve(node: Any, template: dict[str, Any], names: dict[str, str]) -> str:
    """!Ref and !Sub of parameters (their defaults) and resources (stand-ins), !If on conditions,
    !Select of a !Split."""
    if not isinstance(node, dict):
        return str(node)
    (function, argument), *_ = node.items()
    if function == "Ref":
        return parameter_default(argument) if argument in template["Parameters"] else names[argument]
    if function == "Sub":
        text = argument if isinstance(argument, str) else argument[0]
        for key in set(re.findall(r"\$\{([^}]+)\}", text)):
            text = text.replace(f"${{{key}}}", _resolve({"Ref": key}, template, names))
        return text
    if function == "If":
        condition, when_true, when_false = argument
        return _resolve(when_true if _condition(condition, template) else when_false, template, names)
    if function == "Select":
        index, (split,) = argument[0], argument[1].values()
        separator, text = split
        return _resolve(text, template, names).split(separator)[int(index)]
    raise ValueError(f"cannot resolve {node}")


def environment(name: str, endpoints: dict[str, str], queue_url: str) -> dict[str, str]:
    """The function's environment as template.yaml sets it (Globals, then its own Variables),
    plus what Lambda sets (region, fake credentials) and the local endpoints."""
    template = load_template()
    names = {**RESOURCE_NAMES, "FlushQueue": queue_url}
    variables = {
        **template["Globals"]["Function"]["Environment"]["Variables"],
        **template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {}),
    }
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_ENDPOINT_URL": endpoints["events"],
        "AWS_ENDPOINT_URL_DYNAMODB": endpoints["dynamodb"],
        **({"AWS_ENDPOINT_URL_API_GATEWAY": endpoints["apigateway"]} if "apigateway" in endpoints else {}),
        "DYNAMODB_ENDPOINT_URL": endpoints["dynamodb"],
        **{key: _resolve(value, template, names) for key, value in variables.items()},
    }
