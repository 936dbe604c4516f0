"""The dashboard's files ship in the package: every file under gateway/web/ (the vendored
uPlot too) matches a [tool.setuptools.package-data] pattern, so a wheel serves it; and the
pages load no script or style from elsewhere (no CDN)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "gateway" / "web"


def test_every_dashboard_file_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["gateway"]
    files = [p.relative_to(WEB.parent).as_posix() for p in WEB.rglob("*") if p.is_file()]
    assert "web/vendor/uplot/uPlot.iife.min.js" in files and "web/vendor/uplot/LICENSE" in files
    # setuptools reads the patterns as recursive globs (``**`` is zero or more folders)
    shipped = {m.relative_to(WEB.parent).as_posix() for p in patterns for m in WEB.parent.glob(p)}
    missing = [f for f in files if f not in shipped]
    assert missing == [], f"not in the package data: {missing}"


def test_no_script_or_style_comes_from_elsewhere() -> None:
    for page in WEB.glob("*.html"):
        for address in re.findall(r'(?:src|href)="([^"]+)"', page.read_text()):
            assert "//" not in address, f"{page.name} loads {address}"
    for module in WEB.glob("*.js"):
        for address in re.findall(r'^import .* from "([^"]+)";', module.read_text(), re.M):
            assert address.startswith("./"), f"{module.name} imports {address}"
