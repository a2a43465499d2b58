"""Shared plumbing of the benchmark harness: the bench venv, temp repos,
timing, peers, statistics and result rows.

Nothing here is a benchmark: each benchmark is one ``bench_*.py`` module
listed in ``run.py``. Read ``bench/README.md`` first.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
WORKERS_DIR = BENCH_DIR / "workers"
PEERS_DIR = Path(os.environ.get("CMFGIT_BENCH_PEERS", "/work/shared/bench-peers"))

# Where the peers live on the reference machine (see bench/README.md).
PEER_PATHS = {
    "mlflow": "/opt/peers/mlflow/bin/python",
    "dvc": "/opt/peers/dvc/bin/dvc",
    "b3sum": shutil.which("b3sum") or "/usr/bin/b3sum",
    "cmflib": "/opt/cmfref/venv/bin/python",
}

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def stats(samples: Sequence[float], digits: int = 6) -> dict[str, Any]:
    """Median, min and max of ``samples`` (seconds or rates), as the peer scripts report them."""
    xs = sorted(samples)
    return {
        "median": round(statistics.median(xs), digits),
        "min": round(xs[0], digits),
        "max": round(xs[-1], digits),
        "n": len(xs),
    }


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git": git,
    }


def source_commit() -> str:
    """The commit of the tree being measured (``+dirty`` if it has local changes)."""
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "cmfgit", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# -- the bench venv ------------------------------------------------------------


def install_venv(venv: Path, *, reinstall: bool = True, log: Callable[[str], None] = print) -> Path:
    """A venv with cmfgit installed from this tree as a regular (non-editable)
    package, so start-up is measured as users get it: no editable finder, no
    source-tree ``PYTHONPATH``, compiled ``.pyc`` files. Returns its python.

    The tree is copied first (pip would otherwise leave ``build/`` in it).
    Dependencies are installed once, when the venv is created.
    """
    python = venv / "bin" / "python"
    fresh = not python.exists()
    if fresh:
        log(f"creating the bench venv {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    elif not reinstall:
        return python
    with tempfile.TemporaryDirectory(prefix="cmfgit-src-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "cmfgit", src / "cmfgit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        args = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)]
        if not fresh:
            args[5:5] = ["--no-deps", "--force-reinstall"]
        log("installing cmfgit into the bench venv (non-editable)")
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"pip install failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return python


# -- the context every benchmark gets ----------------------------------------


class Context:
    """What a benchmark needs: the cmfgit under test, the peers, a temp dir."""

    def __init__(self, python: Path, tmp: Path, quick: bool, peers: dict[str, str | None]) -> None:
        self.python = str(python)  # the bench venv's python, cmfgit importable
        self.cmfgit = str(python.parent / "cmfgit")  # its console script
        self.tmp = tmp
        self.quick = quick
        self.peers = peers
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "CMFGIT_")) and k != "PYTHONPATH"}
        env.update(GIT_IDENTITY)
        env["HOME"] = str(home)
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        env.pop("VIRTUAL_ENV", None)
        self.env = env

    def peer(self, name: str) -> str | None:
        return self.peers.get(name)

    def mkdtemp(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp))

    def run(
        self, argv: Sequence[str], cwd: Path | str | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run a command with the bench environment; raise with its output on failure."""
        env = dict(self.env)
        env.update(kwargs.pop("env", {}))
        proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        return proc

    def worker(self, name: str, *args: str, python: str | None = None, cwd: Path | str | None = None) -> Any:
        """Run ``bench/workers/<name>.py`` and return the JSON it prints last."""
        proc = self.run([python or self.python, str(WORKERS_DIR / f"{name}.py"), *args], cwd=cwd)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def peer_script(self, script: str, *args: str, python: str | None = None) -> Any:
        """Run one of the shared peer scripts (``bench-peers/<script>``); its JSON line."""
        proc = self.run([python or sys.executable, str(PEERS_DIR / script), *args])
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def dvc_bench(self, skip: str, *args: str, status_repeats: int = 1) -> Any:
        """``bench-peers/dvc_bench.py`` (one repeat) when DVC is installed and the run
        is not --quick; None otherwise."""
        dvc = self.peer("dvc")
        if not dvc or self.quick:
            return None
        return self.peer_script(
            "dvc_bench.py",
            *("--dvc", str(dvc), "--skip", skip, *args, "--repeats", "1"),
            *("--status-repeats", str(status_repeats), "--tmp", str(self.tmp)),
        )

    def make_repo(self, name: str, *, init: bool = True) -> Path:
        """A fresh git repo with one commit, initialised for cmfgit by the
        cmfgit under test (so its merge driver names this interpreter)."""
        repo = self.mkdtemp(f"{name}-")
        self.run(["git", "init", "-q"], repo)
        (repo / "README").write_text("bench\n")
        (repo / ".gitignore").write_text("data/\n*.bin\n")
        self.run(["git", "add", "-A"], repo)
        self.run(["git", "commit", "-q", "-m", "start"], repo)
        if init:
            self.run([self.cmfgit, "init"], repo)
            self.run(["git", "add", "-A"], repo)
            self.run(["git", "commit", "-q", "-m", "cmfgit init"], repo)
        return repo


def time_commands(
    ctx: Context, commands: dict[str, Sequence[str]], repeats: int, cwd: Path, warmup: int = 2
) -> dict[str, list[float]]:
    """Wall time of each command, interleaved (A B C A B C ...) so that a busy
    spell of the shared machine hits all of them alike."""
    env = ctx.env
    for _ in range(warmup):
        for argv in commands.values():
            subprocess.run(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            t = time.perf_counter()
            proc = subprocess.run(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            samples[name].append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise RuntimeError(f"{name}: exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return samples


# -- result rows ---------------------------------------------------------------


def row(
    measure: str,
    cmfgit: float | None,
    unit: str,
    *,
    peer: float | None = None,
    peer_name: str = "",
    higher_is_better: bool = False,
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One line of a results table. ``ratio`` says how cmfgit compares with the
    peer in the same run: > 1 means cmfgit is better by that factor."""
    ratio: float | None = None
    if cmfgit and peer:
        ratio = (cmfgit / peer) if higher_is_better else (peer / cmfgit)
    return {
        "measure": measure,
        "cmfgit": cmfgit,
        "peer": peer,
        "peer_name": peer_name,
        "unit": unit,
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": met,
        "note": note,
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit in ("MB/s", "/s", "records/s", "runs/s", "executions/s"):
        return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    return f"{value:g} {unit}"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| measure | cmfgit | peer (same run) | cmfgit vs peer | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer = f"{r['peer_name']}: {fmt(r['peer'], r['unit'])}" if r["peer_name"] else ""
        ratio = ""
        if r["ratio"] is not None:
            ratio = f"{r['ratio']:.2f}× better" if r["ratio"] >= 1 else f"{1 / r['ratio']:.2f}× worse"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        measure = r["measure"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {measure} | {fmt(r['cmfgit'], r['unit'])} | {peer} | {ratio} | {r['target']} | {met} |")
    return "\n".join(lines)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
