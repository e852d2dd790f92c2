"""Contracts of the code's shape: the layer's parts import only downwards, one module reads the
environment, every function serves exactly the routes template.yaml gives it, and the
handlers' imports stay lean."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devserver.gateway import load_handler_module
from devserver.template import ROOT, load_template

PACKAGE = ROOT / "layers" / "tokens" / "token_service"
FUNCTIONS = ROOT / "functions"
STANDARD_LIBRARY = sys.stdlib_module_names | {"__future__"}
# What each part may import besides the standard library (and itself).
ALLOWED = {
    "domain": set(),
    "storage": {"token_service.domain", "token_service.observability", "botocore", "mypy_boto3_dynamodb"},
    "http": {"token_service.domain", "token_service.observability", "pydantic", "aws_lambda_powertools"},
    "observability": {"aws_lambda_powertools"},
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def allowed(name: str, part: str) -> bool:
    if name.split(".")[0] in STANDARD_LIBRARY or name.startswith(f"token_service.{part}"):
        return True
    return any(name == prefix or name.startswith(prefix + ".") for prefix in ALLOWED[part])


@pytest.mark.parametrize("part", ["domain", "storage", "http"])
def test_each_part_imports_only_downwards(part: str) -> None:
    modules = sorted((PACKAGE / part).glob("*.py"))
    assert modules
    wrong = {f"{module.name}: {name}" for module in modules for name in imports_of(module) if not allowed(name, part)}
    assert not wrong


def test_observability_is_a_leaf() -> None:
    assert all(allowed(name, "observability") for name in imports_of(PACKAGE / "observability.py"))


@pytest.mark.parametrize("part", ["domain", "storage", "http"])
def test_each_part_says_in_one_line_what_belongs_there(part: str) -> None:
    source = (PACKAGE / part / "__init__.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and "\n" not in docstring.strip()


def string_constants(path: Path) -> list[str]:
    """Every string literal of a module but its docstrings: the messages it can produce."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_domain_messages_name_no_route_or_query_parameter() -> None:
    messages = [text for path in (PACKAGE / "domain").glob("*.py") for text in string_constants(path)]
    http_words = ("/tokens", "/scopes", "/settings", "/v1/token", "?next", "?all_users", "query")
    assert [text for text in messages if any(word in text for word in http_words)] == []


def reads_environment(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and {"environ", "getenv"} & {alias.name for alias in node.names}
        ):
            return True
    return False


def test_only_the_configuration_module_reads_the_environment() -> None:
    sources = [*PACKAGE.rglob("*.py"), *FUNCTIONS.rglob("*.py")]
    assert [path.relative_to(ROOT) for path in sources if reads_environment(path)] == [
        Path("layers/tokens/token_service/config.py")
    ]


def template_functions() -> dict[str, dict]:
    resources = load_template()["Resources"]
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.mark.parametrize("logical_id", sorted(template_functions()))
def test_every_function_serves_exactly_the_routes_the_template_gives_it(logical_id: str) -> None:
    properties = template_functions()[logical_id]
    declared = {
        (str(event["Properties"]["Method"]).upper(), str(event["Properties"]["Path"]))
        for event in properties.get("Events", {}).values()
        if event["Type"] == "Api"
    }
    module = load_handler_module(ROOT / properties["CodeUri"], properties.get("Handler", "app.lambda_handler"))
    app = getattr(module, "app", None)
    served = {(route.method, route.path) for route in app.routes} if app is not None else set()
    assert served == declared


def test_every_function_folder_is_in_the_template() -> None:
    code_dirs = {Path(properties["CodeUri"]).name for properties in template_functions().values()}
    assert code_dirs == {path.name for path in FUNCTIONS.iterdir() if (path / "app.py").exists()}


def loaded_modules(function: str) -> list[str]:
    """The modules a function's handler loads, in a fresh interpreter as Lambda starts it."""
    probe = f"import sys; sys.path.insert(0, 'functions/{function}'); import app; print('\\n'.join(sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "tokens")}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


@pytest.mark.parametrize("function", ["create", "list", "revoke", "scopes", "settings", "token_self", "cleanup"])
def test_no_function_imports_powertools_event_handler(function: str) -> None:
    assert [name for name in loaded_modules(function) if name.startswith("aws_lambda_powertools.event_handler")] == []


def test_the_authorizer_imports_no_validation_openapi_or_powertools_machinery() -> None:
    heavy = [
        name
        for name in loaded_modules("authorizer")
        if name.split(".")[0] in ("pydantic", "pydantic_core", "aws_lambda_powertools", "aws_xray_sdk", "boto3")
        or "openapi" in name
    ]
    assert heavy == []


def test_the_scopes_function_loads_no_aws_sdk_client() -> None:
    """GET /scopes needs the catalog only: no AWS client, nor botocore's client machinery (about
    a third of a cold start). Powertools imports botocore's top package, which loads nothing else."""
    assert [name for name in loaded_modules("scopes") if name.startswith(("botocore.", "boto3"))] == []


def test_the_second_flush_comes_once_no_authorizer_check_can_still_be_running() -> None:
    """A check that read a token before its revoke ends within the authorizer's timeout."""
    functions = template_functions()
    delay = str(functions["AuthorizerFunction"]["Timeout"])
    for name in ("RevokeTokensFunction", "TokenSelfFunction"):
        assert functions[name]["Environment"]["Variables"]["SECOND_FLUSH_DELAY_SECONDS"] == delay


def test_test_modules_have_unique_names_across_tiers() -> None:
    """pytest imports test modules by basename (there are no packages): two tiers holding the
    same file name fail the whole run at collection."""
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(name for name in set(names) if names.count(name) > 1) == []
