"""Package boundaries: the library never imports the gateway; the gateway never imports CLI
internals (issue "One way through the code")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_EVERY_LIBRARY_MODULE = """
import importlib, pkgutil, sys
import starpod_cron
for module in pkgutil.walk_packages(starpod_cron.__path__, "starpod_cron."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
loaded = sorted(m for m in sys.modules if m.startswith("gateway"))
assert not loaded, loaded
print("modules:", sum(m.startswith("starpod_cron") for m in sys.modules))
"""


def test_the_library_never_imports_the_gateway() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_LIBRARY_MODULE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 30  # every module really was imported


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_library_source_names_the_gateway_and_the_gateway_skips_cli_internals() -> None:
    for path in (ROOT / "starpod_cron").rglob("*.py"):
        assert not any(m.startswith("gateway") for m in _imports(path)), path
    for path in (ROOT / "gateway").rglob("*.py"):
        internals = [m for m in _imports(path) if m.startswith("starpod_cron.cli")]
        allowed = path.name == "__main__.py" and internals == ["starpod_cron.cli.main"]
        assert not internals or allowed, (path, internals)
