"""Writes the typed dataclass bodies that mirror :mod:`starpod_cron.fields`.

mypy must see every attribute of ``CronJob``, ``JobUpdate``, ``JobSpec``, ``JobRecord`` and
``JobFields``, so their fields are real class attributes; this module writes them from the
declaration into the blocks their modules mark with ``# fields: <Class> ...`` and
``# end of generated fields``. After changing the declaration run::

    python -m starpod_cron.fieldgen          # rewrite the blocks
    python -m starpod_cron.fieldgen --check  # exit 1 if a block is stale (tests do this)
"""

from __future__ import annotations

import enum
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path

from .fields import (
    FIRST_DEFAULTED,
    JOB_FIELDS,
    REQUIRED,
    SPECIAL_INPUTS,
    JobField,
    public_fields,
    settable_fields,
    user_fields,
)

ROOT = Path(__file__).parent
END = "# end of generated fields"
INDENT = "    "


def _literal(value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, str):
        return '"' + value + '"'
    return repr(value)


def _doc(text: str) -> list[str]:
    wrapped = textwrap.wrap(text.replace("\\", "\\\\"), 100 - len(INDENT) - 6)
    if len(wrapped) == 1:
        return [f'"""{wrapped[0]}"""']
    return [f'"""{wrapped[0]}', *wrapped[1:-1], f'{wrapped[-1]}"""']


def _defaulted(fields: Iterable[JobField]) -> set[str]:
    """Names from FIRST_DEFAULTED on (dataclass fields with defaults must come last)."""
    names = [f.name for f in fields]
    return set(names[names.index(FIRST_DEFAULTED) :]) if FIRST_DEFAULTED in names else set()


def cron_job() -> list[str]:
    fields = list(public_fields())
    later = _defaulted(fields)
    lines: list[str] = []
    for f in fields:
        default = "" if f.name not in later else f" = {_literal(f.default_value())}"
        lines += [f"{f.name}: {f.annotation}{default}", *_doc(f.help)]
    return lines


def job_update() -> list[str]:
    lines: list[str] = []
    for f in user_fields():
        base = f.annotation.removesuffix(" | None")
        annotation = f"{base} | _Unset" + (" | None" if f.nullable else "")
        lines.append(f"{f.name}: {annotation} = UNSET")
    return lines


def job_spec() -> list[str]:
    lines: list[str] = []
    for f in settable_fields():
        if f.setting is not None:
            lines += [
                f"{f.name}: {f.base_type} | None = None",
                *_doc(f"Default: [cron] {f.setting}."),
            ]
        elif f.default is REQUIRED:
            lines.append(f"{f.name}: {f.annotation}")
        else:
            lines.append(f"{f.name}: {f.annotation} = {_literal(f.default)}")
    return lines


def column_default(f: JobField) -> object:
    """The stored value of a field's default (for the record's defaults)."""
    value = f.default_value()
    if isinstance(value, enum.Enum):
        return value.value
    if f.storage == "secs_ms" and value is not None:
        return round(value * 1000)
    return value


def job_record() -> list[str]:
    later = _defaulted(JOB_FIELDS)
    lines: list[str] = []
    for f in JOB_FIELDS:
        for column, annotation in f.columns():
            default = "" if f.name not in later else f" = {_literal(column_default(f))}"
            lines.append(f"{column}: {annotation}{default}")
    return lines


_INPUT_TYPES = {
    "int": "int",
    "number": "float",
    "duration": "float",
    "bool": "bool",
    "list": "list[str]",
}


def job_fields() -> list[str]:
    return [
        f"{f.name}: {_INPUT_TYPES.get(f.input, 'str')} | None = None"
        for f in user_fields()
        if f.name not in SPECIAL_INPUTS
    ]


BLOCKS: dict[str, tuple[str, Callable[[], list[str]]]] = {
    "CronJob": ("models.py", cron_job),
    "JobUpdate": ("models.py", job_update),
    "JobSpec": ("models.py", job_spec),
    "JobRecord": ("store/records.py", job_record),
    "JobFields": ("jobfields.py", job_fields),
}


def _rewrite(text: str, name: str, body: list[str]) -> str:
    start_tag = f"# fields: {name} "
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    found = False
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if line.strip().startswith(start_tag):
            found = True
            indent = line[: len(line) - len(line.lstrip())]
            while i < len(lines) and lines[i].strip() != END:
                i += 1
            if i == len(lines):
                raise SystemExit(f"{name}: no '{END}' after its '{start_tag}' line")
            out += [indent + b if b else b for b in body]
    if not found:
        raise SystemExit(f"{name}: no '{start_tag}...' line marks its block")
    return "\n".join(out)


def generate(*, check: bool = False) -> list[str]:
    """Rewrite every block (or with ``check`` only list the stale ones); returns the names
    of the classes whose block changed (or would)."""
    stale: list[str] = []
    texts: dict[Path, str] = {}
    for name, (module, build) in BLOCKS.items():
        path = ROOT / module
        before = texts.get(path, path.read_text())
        after = _rewrite(before, name, build())
        if after != before:
            stale.append(name)
        texts[path] = after
    if not check:
        _write(texts)
    return stale


def _write(texts: dict[Path, str]) -> None:
    """Write the new texts, then import the package in a fresh interpreter; if that fails
    (a field without a default before one with), put the old texts back and say why."""
    before = {path: path.read_text() for path in texts}
    for path, text in texts.items():
        if text != before[path]:
            path.write_text(text)
    probe = subprocess.run(
        [sys.executable, "-c", "import starpod_cron.store.records, starpod_cron.jobfields"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        for path, text in before.items():
            path.write_text(text)
        raise SystemExit("the generated fields do not import; nothing changed:\n" + probe.stderr)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = generate(check=check)
    if stale and check:
        print(
            f"stale generated fields: {', '.join(stale)}; run python -m starpod_cron.fieldgen",
            file=sys.stderr,
        )
        return 1
    for name in stale:
        print(f"rewrote the fields of {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
