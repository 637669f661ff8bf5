"""The import-linter contracts catch what they promise to: a copy of the package with one
forbidden import planted in it fails them, naming the contract, and the unplanted copy passes.

Each run analyses a copy in a temporary folder (put first on the path), so the checkout
itself is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def copy_project(target: Path) -> Path:
    """The package and the contracts (pyproject.toml) under `target`; returns the copy of
    src/skipline."""
    shutil.copytree(
        ROOT / "src" / "skipline", target / "src" / "skipline",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target / "src" / "skipline"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(project / "pyproject.toml")],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_unplanted_copy_keeps_every_contract(tmp_path: Path) -> None:
    copy_project(tmp_path)
    linted = lint_imports(tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "BROKEN" not in linted.stdout


def module_file(package: Path, module: str) -> Path:
    """The file of `module` (dotted, under skipline) in the copy: its .py file, its package's
    __init__.py, or a new .py file in the package above it."""
    path = package.joinpath(*module.split(".")[1:])
    if path.is_dir():
        return path / "__init__.py"
    return path.with_suffix(".py")


@pytest.mark.parametrize(("importer", "forbidden", "contract"), [
    ("skipline.api.planted", "skipline.store.postgres.batch",
     "api never touches a concrete store"),
    ("skipline.api.planted", "skipline.store.sqlite.write_ops",
     "api never touches a concrete store"),
    ("skipline.service", "skipline.store.memory",
     "service and worker never touch a concrete store"),
    ("skipline.store.sqlite.planted", "skipline.store.postgres.rows",
     "stores are independent of each other"),
    ("skipline.store.postgres.planted", "skipline.store.sqlite.rows",
     "stores are independent of each other"),
    ("skipline.store.planted", "skipline.api", "stores only know the domain"),
    ("skipline.domain.planted", "skipline.store.base", "domain is pure"),
])
def test_a_planted_import_breaks_its_contract(
    tmp_path: Path, importer: str, forbidden: str, contract: str
) -> None:
    file = module_file(copy_project(tmp_path), importer)
    existing = file.read_text(encoding="utf-8") if file.exists() else ""
    file.write_text(existing + f"\nimport {forbidden}  # planted\n", encoding="utf-8")
    linted = lint_imports(tmp_path)
    assert linted.returncode != 0, linted.stdout
    assert f"{contract} BROKEN" in linted.stdout, linted.stdout
