"""`sam build`, run for real into a temporary folder: the layer and every function ship bytecode
that Python 3.13 loads as it is, and the layer holds arm64 wheels without what the runtime has.

For every module (.py) of the built layer (token_service and its dependencies) and functions:
`__pycache__/<module>.cpython-313.pyc`, whose header (PEP 552: magic, flags, then the source
hash for hash-based pycs) has Python 3.13's magic number, flags 0b01 (hash-based, check_source
off: "unchecked-hash") and the hash of that very source. Then Python 3.13 shows it uses such a
pyc without reading the source.

Needs a python3.13 (tools/python313-dir finds one); skipped without, except in CI, where
.ci/run puts one on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.template import ROOT, load_template

HASH_BASED, CHECK_SOURCE = 0b01, 0b10
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil")
ELF_MACHINE_AARCH64 = 183


def run(command: list[Any], **options: Any) -> subprocess.CompletedProcess[str]:
    """A command of this test's own making (tools, sam, python3.13), its output captured."""
    return subprocess.run(command, capture_output=True, text=True, check=False, **options)  # noqa: S603


def python313_dir() -> str:
    found = run([ROOT / "tools" / "python313-dir"])
    if found.returncode != 0:
        reason = "no python3.13 to run `sam build` with (put one on PATH, or install pyenv's 3.13)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must build: {reason}; .ci/run puts pyenv's on PATH", pytrace=False)
        pytest.skip(reason)
    return found.stdout.strip()


@pytest.fixture(scope="module")
def python313() -> str:
    return str(Path(python313_dir()) / "python3.13")


@pytest.fixture(scope="module")
def built(python313: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    env = {**os.environ, "PATH": f"{Path(python313).parent}{os.pathsep}{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    sam = Path(sys.executable).parent / "sam"
    result = run(
        [sam, "build", "--build-dir", build_dir, "--cache-dir", build_dir.parent / "cache"],
        cwd=ROOT,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return build_dir


def resources_of(kind: str) -> list[str]:
    return sorted(
        logical_id for logical_id, resource in load_template()["Resources"].items() if resource["Type"] == kind
    )


def code_roots(built: Path) -> Iterator[Path]:
    yield built / "TokenLayer" / "python"
    for logical_id in resources_of("AWS::Serverless::Function"):
        yield built / logical_id


def modules(built: Path) -> list[Path]:
    return sorted(path for root in code_roots(built) for path in root.rglob("*.py"))


def pyc_of(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"


def test_every_module_has_unchecked_hash_bytecode_of_its_own_source(built: Path, python313: str) -> None:
    sources = modules(built)
    assert len(sources) > 500  # token_service, the functions, pydantic, Powertools, ...
    assert all(root.is_dir() for root in code_roots(built))
    missing = [str(source.relative_to(built)) for source in sources if not pyc_of(source).is_file()]
    assert missing == []
    # Python 3.13's magic number, and its hash of each source (importlib.util.source_hash is
    # keyed by the interpreter's magic number, so it must be 3.13's own).
    probe = (
        "import importlib.util, json, sys; paths = json.load(sys.stdin); "
        "print(json.dumps({'magic': importlib.util.MAGIC_NUMBER.hex(), "
        "'hashes': [importlib.util.source_hash(open(p, 'rb').read()).hex() for p in paths]}))"
    )
    answer = run([python313, "-c", probe], input=json.dumps([str(source) for source in sources]))
    assert answer.returncode == 0, answer.stderr
    expected = json.loads(answer.stdout)
    wrong = []
    for source, source_hash in zip(sources, expected["hashes"], strict=True):
        header = pyc_of(source).read_bytes()[:16]
        magic, flags, stored_hash = header[:4].hex(), int.from_bytes(header[4:8], "little"), header[8:16].hex()
        if (magic, flags, stored_hash) != (expected["magic"], HASH_BASED, source_hash):
            wrong.append(f"{source.relative_to(built)}: magic {magic}, flags {flags:#04b}")
    assert wrong == []
    assert not HASH_BASED & CHECK_SOURCE  # unchecked: the check_source bit is off


def test_no_other_bytecode_is_shipped(built: Path) -> None:
    pycs = [path for root in code_roots(built) for path in root.rglob("*.pyc")]
    expected = {pyc_of(source) for source in modules(built)}
    assert sorted(str(p.relative_to(built)) for p in set(pycs) - expected) == []


def test_python_313_runs_the_bytecode_without_reading_the_source(built: Path, python313: str, tmp_path: Path) -> None:
    layer = tmp_path / "python"
    shutil.copytree(built / "TokenLayer" / "python" / "token_service", layer / "token_service")
    module = layer / "token_service" / "domain" / "token_format.py"  # standard library imports only
    module.write_text('raise RuntimeError("the source was compiled")\n', encoding="utf-8")
    probe = "import token_service.domain.token_format as m; print(m.__cached__)"
    env = {**os.environ, "PYTHONPATH": str(layer), "PYTHONDONTWRITEBYTECODE": "1"}
    used = run([python313, "-c", probe], env=env)
    assert used.returncode == 0, used.stderr
    assert used.stdout.strip() == str(pyc_of(module))
    # The same pyc, checked against its source on request, is refused: the test above is real.
    checked = [python313, "--check-hash-based-pycs", "always", "-c", probe]
    refused = run(checked, env=env)
    assert "the source was compiled" in refused.stderr


def test_the_layer_has_the_package_and_arm64_wheels_but_nothing_the_runtime_provides(built: Path) -> None:
    layer = built / "TokenLayer" / "python"
    package = ROOT / "layers" / "tokens" / "token_service"
    shipped = {
        path.relative_to(package) for path in package.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }
    for relative in shipped:
        assert (layer / "token_service" / relative).read_bytes() == (package / relative).read_bytes()
    for name in ("pydantic", "pydantic_core", "aws_lambda_powertools", "aws_xray_sdk", "wrapt"):
        assert (layer / name).is_dir(), name
    assert [name for name in RUNTIME_PROVIDED if (layer / name).exists()] == []
    assert not (layer / "bin").exists()
    extensions = list(layer.rglob("*.so"))
    assert any(path.name.endswith(".cpython-313-aarch64-linux-gnu.so") for path in extensions)
    for path in extensions:
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, path.name


def test_each_function_ships_its_handler_only(built: Path) -> None:
    for logical_id in resources_of("AWS::Serverless::Function"):
        files = sorted(str(p.relative_to(built / logical_id)) for p in (built / logical_id).rglob("*") if p.is_file())
        assert files == ["__pycache__/app.cpython-313.pyc", "app.py"], logical_id
