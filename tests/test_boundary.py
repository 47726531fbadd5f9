"""The Qt boundary: only kiosk.ui may import Qt; the core runs headless."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kiosk

PACKAGE = Path(kiosk.__file__).parent
QT = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "kiosk.ui")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "ui" not in p.relative_to(PACKAGE).parts]


def test_no_core_module_imports_qt() -> None:
    modules = core_modules()
    assert len(modules) >= 10  # the scan really sees the package
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(
            m for m in imported_modules(p) if any(m == q or m.startswith(q + ".") for q in QT)
        )
        for p in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scan_would_catch_a_qt_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from PySide6 import QtCore\n")
    assert "PySide6" in imported_modules(bad)


def test_importing_every_core_module_loads_no_qt() -> None:
    names = sorted(
        "kiosk." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).replace(".__init__", "")
        for p in core_modules()
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        "import kiosk.recognition as r\n"
        "[getattr(r, n) for n in r.__all__]\n"
        f"qt = {QT!r}\n"
        "loaded = [m for m in sys.modules if any(m == q or m.startswith(q + '.') for q in qt)]\n"
        "print(sorted(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
