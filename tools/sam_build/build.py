"""What `sam build` runs for the layer and the functions (tools/sam_build/Makefile).

    python3.13 build.py layer SOURCE ARTIFACTS_DIR
    python3.13 build.py function SOURCE ARTIFACTS_DIR

`layer`: installs layers/tokens/requirements.txt for the Lambda runtime (arm64 wheels of
CPython 3.13, as SAM's own python builder does), then requirements-no-deps.txt without their
dependencies (the X-Ray SDK without botocore, which the runtime provides), and copies the
layer's own packages (token_service), all into ARTIFACTS_DIR/python (/opt/python on Lambda).
`function`: copies the function's folder (app.py) into ARTIFACTS_DIR (/var/task on Lambda).

Then both compile every module to `__pycache__/<module>.cpython-313.pyc` with unchecked-hash
invalidation (PEP 552): the runtime imports the bytecode as it is, without compiling the
source (Lambda's code folders are read-only, so nothing it compiles at a cold start is ever
kept) and without even a stat of the source to compare times. The build checks its own output.

It must run on Python 3.13, the runtime's version: bytecode is specific to a minor version.
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

RUNTIME = (3, 13)
PLATFORM = "manylinux2014_aarch64"  # Architectures: [arm64]
LAYER_ROOT = "/opt/python"  # where Lambda puts a Python layer's python/ folder
FUNCTION_ROOT = "/var/task"
# Never copied into the artifacts: build inputs and local leftovers.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "requirements*.txt", ".*")
UNCHECKED_HASH_FLAGS = 0b01  # PEP 552: bit 0 hash-based, bit 1 check_source (off)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in {"layer", "function"}:
        print(__doc__, file=sys.stderr)
        return 2
    if sys.version_info[:2] != RUNTIME:
        print(f"build.py must run on Python {RUNTIME[0]}.{RUNTIME[1]}, not {sys.version.split()[0]}", file=sys.stderr)
        return 2
    kind, source, artifacts = argv[0], Path(argv[1]).resolve(), Path(argv[2]).resolve()
    if kind == "layer":
        target = artifacts / "python"
        install_requirements(source, target)
        copy_tree(source, target)
        runtime_root = LAYER_ROOT
    else:
        target = artifacts
        copy_tree(source, target)
        runtime_root = FUNCTION_ROOT
    compile_tree(target, runtime_root)
    missing = uncompiled(target)
    if missing:
        print(f"no unchecked-hash cpython-313 bytecode for: {', '.join(missing[:20])}", file=sys.stderr)
        return 1
    return 0


def install_requirements(source: Path, target: Path) -> None:
    pip = [
        *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
        *("--root-user-action=ignore", "--target", str(target), "--platform", PLATFORM, "--implementation", "cp"),
        *("--python-version", f"{RUNTIME[0]}.{RUNTIME[1]}", "--only-binary=:all:", "--upgrade"),
        "--no-compile",  # compiled below, hash-based; pip would write timestamp-based pycs
    ]
    subprocess.run([*pip, "-r", str(source / "requirements.txt")], check=True)  # noqa: S603 (this interpreter's pip)
    no_deps = source / "requirements-no-deps.txt"
    if no_deps.exists():
        subprocess.run([*pip, "--no-deps", "-r", str(no_deps)], check=True)  # noqa: S603
    # Console scripts have no use in a layer (and their shebangs name this machine's Python).
    shutil.rmtree(target / "bin", ignore_errors=True)


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=IGNORED, dirs_exist_ok=True)


def compile_tree(target: Path, runtime_root: str) -> None:
    """Every module under `target`, as the runtime names it (`ddir`: tracebacks and
    co_filename show /opt/python/... or /var/task/..., not this machine's build folder)."""
    compiled = compileall.compile_dir(
        target,
        ddir=runtime_root,
        force=True,  # also replace any timestamp-based pyc, never skip one as up to date
        quiet=1,
        optimize=0,  # the runtime runs without -O: it looks for <module>.cpython-313.pyc
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not compiled:
        raise SystemExit("compileall failed (see above)")


def uncompiled(target: Path) -> list[str]:
    """The modules without a cpython-313 pyc marked hash-based and unchecked."""
    tag = sys.implementation.cache_tag  # cpython-313
    missing = []
    for source in sorted(target.rglob("*.py")):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        header = pyc.read_bytes()[:16] if pyc.exists() else b""
        if len(header) < 16 or int.from_bytes(header[4:8], "little") != UNCHECKED_HASH_FLAGS:
            missing.append(str(source.relative_to(target)))
    return missing


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
