"""Who may import what (docs/architecture.md, "Rules"), checked on the source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "cmfgit"
HEAVY = ("typer", "click", "rich", "pydantic")
HOT_MODULES = (
    "cmfgit.logrun",
    "cmfgit.merge_driver",
    "cmfgit.hooks",
    "cmfgit.main",
    "cmfgit.api",
    "cmfgit.fastread",
    "cmfgit.views",
)

# Modules that may start processes, and why. Only gitutil.py runs git.
SUBPROCESS_ALLOWED = {
    "gitutil.py": "every call of the git command line",
    "logrun.py": "runs the user's COMMAND (and asks a Python COMMAND's interpreter for its version and sys.path)",
    "hooks.py": "runs the user's own chained (legacy) hook",
    "demo.py": "plays a user typing git and cmfgit commands in a shell session",
    "cli/docgen.py": "runs 'cmfgit --help' to generate the CLI reference",
    "firstread.py": "starts the full build of the query index in a detached Python process",
}


def sources() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def imported_modules(tree: ast.Module, top_level_only: bool = False) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", HOT_MODULES)
def test_hot_paths_do_not_import_heavy_packages(module: str) -> None:
    code = f"import sys, {module}; print(*sorted(m.split('.')[0] for m in sys.modules))"
    heavy = loaded_after(code) & set(HEAVY)
    assert not heavy, f"importing {module} loads {sorted(heavy)}"


def test_log_run_end_to_end_imports_nothing_heavy(repo: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cmfgit", "log-run", "-q", "-s", "x", "--", "true"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "cmfgit" in imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    help_proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cmfgit", "log-run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert help_proc.stdout.startswith("Usage: cmfgit log-run")  # help is click's, as for every command


def test_only_the_cli_package_imports_typer_and_click() -> None:
    offenders = {
        name: sorted(imported_modules(tree) & {"typer", "click", "pydantic"})
        for name, tree in sources()
        if not name.startswith("cli/")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_rich_is_imported_lazily_outside_the_cli() -> None:
    """rich costs start-up time: the core imports it inside the function that draws."""
    offenders = [
        name for name, tree in sources() if not name.startswith("cli/") and "rich" in imported_modules(tree, True)
    ]
    assert offenders == []


def test_only_gitutil_runs_git() -> None:
    problems: list[str] = []
    for name, tree in sources():
        uses_subprocess = bool(imported_modules(tree) & {"subprocess"}) or any(
            isinstance(n, ast.Attribute) and n.attr in ("system", "popen", "execvp", "spawnvp")
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "os"
        )
        if uses_subprocess and name not in SUBPROCESS_ALLOWED:
            problems.append(f"{name} starts processes")
        if name in ("gitutil.py", "demo.py"):
            continue
        for node in ast.walk(tree):
            # ["git", ...] as a command line anywhere but gitutil.py
            if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
                first = node.elts[0]
                if isinstance(first, ast.Constant) and first.value == "git" and len(node.elts) > 1:
                    problems.append(f"{name}:{node.lineno} builds a git command line")
    assert problems == []


def test_only_main_exits() -> None:
    """Errors become exit codes in main.py only; the rest raises CmfgitError."""
    offenders = []
    for name, tree in sources():
        if name in ("main.py", "__main__.py"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "exit":
                if isinstance(node.value, ast.Name) and node.value.id in ("sys", "os"):
                    offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
