"""The score of `make mutation`, per module: run in build/mutation after `mutmut run`.

    python tools/mutation_report.py [PATTERN ...]

Reads mutmut's results (mutants/**/*.py.meta) for the mutants whose names match the patterns
(the ones `mutmut run` was given; all when none), prints killed / total per module and each
surviving mutant as the line it changed, and exits 1 when a module is under the threshold.
Killed counts timeouts (the tests noticed); survivors, mutants no test reached and mutants not
run all count against the score."""

from __future__ import annotations

import ast
import difflib
import fnmatch
import json
import sys
from collections import defaultdict
from pathlib import Path

THRESHOLD = 0.90
KILLED = {1, 3, 24, -24, 152, 255, 36}  # killed, pytest internal error, timeouts
STATUS = {0: "survived", 33: "no tests", 5: "no tests", 34: "skipped", 35: "suspicious", None: "not run"}


def module_of(mutant: str) -> str:
    """token_service.domain.authorizer.xǁTokenAuthorizerǁdecide__mutmut_3 -> token_service.domain.authorizer"""
    parts = mutant.split(".")
    index = next(i for i, part in enumerate(parts) if part.startswith(("x_", "xǁ")))
    return ".".join(parts[:index])


def changed_lines(source: Path, mutant: str, functions: dict[Path, dict[str, list[str]]]) -> str:
    """The mutant's change, as `-old | +new` (read from mutmut's generated module)."""
    if source not in functions:
        text = source.read_text()
        lines = text.splitlines()
        functions[source] = {
            node.name: lines[node.lineno - 1 : node.end_lineno or node.lineno]
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
    name = mutant.rsplit(".", 1)[1]
    base = name.rsplit("__mutmut_", 1)[0]
    original = [
        line.replace(f"{base}__mutmut_orig", name) for line in functions[source].get(f"{base}__mutmut_orig", [])
    ]
    diff = difflib.unified_diff(original, functions[source].get(name, []), lineterm="", n=0)
    return " | ".join(line.strip() for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---")))


def main(patterns: list[str]) -> int:
    results: dict[str, dict[str, int | None]] = defaultdict(dict)
    sources: dict[str, Path] = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        for mutant, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if not patterns or any(fnmatch.fnmatch(mutant, pattern) for pattern in patterns):
                results[module_of(mutant)][mutant] = code
                sources[mutant] = meta.with_suffix("")
    if not results:
        print("no mutation results: run `make mutation`", file=sys.stderr)
        return 1
    functions: dict[Path, dict[str, list[str]]] = {}
    failing = []
    print(f"\n{'module':<40} {'killed':>7} {'total':>6} {'score':>7}")
    for module, codes in sorted(results.items()):
        killed = sum(code in KILLED for code in codes.values())
        score = killed / len(codes)
        print(f"{module:<40} {killed:>7} {len(codes):>6} {score:>7.1%}")
        if score < THRESHOLD:
            failing.append(module)
    total = sum(len(codes) for codes in results.values())
    all_killed = sum(code in KILLED for codes in results.values() for code in codes.values())
    print(f"{'all':<40} {all_killed:>7} {total:>6} {all_killed / total:>7.1%}")
    for module, codes in sorted(results.items()):
        others = {mutant: code for mutant, code in codes.items() if code not in KILLED}
        if others:
            print(f"\nnot killed in {module} (docs/mutation.md says which are equivalent):")
        for mutant, code in sorted(others.items(), key=lambda item: item[0]):
            status = STATUS.get(code, f"exit {code}")
            print(f"  [{status}] {mutant.rsplit('.', 1)[1]}: {changed_lines(sources[mutant], mutant, functions)[:160]}")
    if failing:
        print(f"\nunder {THRESHOLD:.0%}: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
