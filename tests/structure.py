"""Measures of the code's structure that the issue "One store, two dialects" sets limits on:
import cycles between modules, modules over 500 lines, and near-identical functions in
different files. Each takes the directory the packages live in, so the tests can also try
them on small trees they write themselves. ``near_pairs`` is the definition the issue gives
(and ``/work/shared/tools/near_pairs.py`` implements), copied here because CI has only the
repository."""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("starpod_cron", "gateway")


def sources(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own
    name, for its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules``."""
    parts = name.split(".")
    while parts:
        if (candidate := ".".join(parts)) in modules:
            return candidate
        parts.pop()
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``name`` imports anywhere in its text: at the top,
    inside functions and under ``TYPE_CHECKING`` alike."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_known(a.name, modules) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                target = _known(f"{origin}.{alias.name}", modules) or _known(origin, modules)
                if target:
                    found.add(target)
    found.discard(name)
    if path.name == "__init__.py":  # a package re-exporting its children is no cycle
        found = {m for m in found if not m.startswith(name + ".")}
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    modules = sources(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (the
    strongly connected components of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def long_modules(
    root: Path, limit: int = 500, packages: tuple[str, ...] = PACKAGES
) -> dict[str, int]:
    """The modules over ``limit`` lines, with their line counts."""
    counts = {
        str(path.relative_to(root)): len(path.read_text().splitlines())
        for path in sources(root, packages).values()
    }
    return {path: n for path, n in counts.items() if n > limit}


@dataclass(frozen=True)
class Function:
    file: str
    name: str
    line: int
    tokens: tuple[str, ...]


def _tokens(text: str) -> tuple[str, ...]:
    """A function's tokens with comments, layout and ``await`` dropped, every string folded
    to ``S`` and every number to ``0``."""
    out: list[str] = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(text).readline):
            if t.type in (
                tokenize.COMMENT,
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
            ):
                continue
            if t.type == tokenize.STRING:
                out.append("S")
            elif t.type == tokenize.NUMBER:
                out.append("0")
            else:
                out.append(t.string)
    except (tokenize.TokenError, IndentationError):
        pass  # a nested function's segment can end mid-block: its tokens so far still count
    return tuple(t for t in out if t != "await")


def functions(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Function]:
    """Every function (methods and nested ones included) of at least 6 lines and 40 tokens."""
    found: list[Function] = []
    for path in sources(root, packages).values():
        text = path.read_text()
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                segment = ast.get_source_segment(text, node) or ""
                tokens = _tokens(segment)
                if len(segment.splitlines()) >= 6 and len(tokens) >= 40:
                    rel = str(path.relative_to(root))
                    found.append(Function(rel, node.name, node.lineno, tokens))
    return found


def near_pairs(root: Path, ratio: float = 0.8, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Pairs of functions in different files whose token sequences are at least ``ratio``
    alike (difflib's ratio), one line each."""
    funcs = functions(root, packages)
    pairs: list[str] = []
    for i, a in enumerate(funcs):
        for b in funcs[i + 1 :]:
            longer = max(len(a.tokens), len(b.tokens))
            if a.file == b.file or abs(len(a.tokens) - len(b.tokens)) > longer * 0.25:
                continue
            m = difflib.SequenceMatcher(None, a.tokens, b.tokens, autojunk=False)
            if m.quick_ratio() >= ratio and m.ratio() >= ratio:
                pairs.append(
                    f"{a.file}:{a.line} {a.name}  ~  {b.file}:{b.line} {b.name}  ({m.ratio():.0%})"
                )
    return pairs
