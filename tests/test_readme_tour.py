"""The README's "A five-minute tour", run line by line exactly as written.

The test prepares what the tour assumes (a git repository ``my-pipeline`` with a
``prepare.py``, a ``train.py`` and ``data/raw.csv``, and an ``origin`` remote
named ``wine.git``, so that the project and its pipeline are called ``wine``),
puts a ``cmfgit`` and a ``python`` on PATH, and runs each command line of the
tour's code block with bash, in order. After each line it checks what that line
should have done. A tour line without a check fails the test: change the README,
change the checks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import ROOT, git

PREPARE = """\
import pathlib

rows = pathlib.Path("data/raw.csv").read_text().splitlines()
pathlib.Path("data/train.csv").write_text("\\n".join(rows[:3]) + "\\n")
"""
TRAIN = """\
import json
import pathlib

data = pathlib.Path("data/train.csv").read_bytes()
pathlib.Path("model.pkl").write_bytes(b"model trained on " + data)
pathlib.Path("metrics.json").write_text(json.dumps({"acc": 0.93, "rmse": 0.71}))
"""


def tour_lines() -> list[str]:
    """The tour's command lines: continuation lines joined, blank and comment-only lines left out."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A five-minute tour\n.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no tour block"
    lines: list[str] = []
    pending = ""
    for line in block.group(1).splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        line, pending = pending + line, ""
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    return lines


class Tour:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "cmfgit").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cmfgit "$@"\n')
        (bin_dir / "cmfgit").chmod(0o755)
        (bin_dir / "python").symlink_to(sys.executable)
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        self.origin = tmp / "remotes" / "wine.git"
        git(tmp, "init", "-q", "--bare", "-b", "main", str(self.origin))
        self.repo = tmp / "my-pipeline"
        (self.repo / "data").mkdir(parents=True)
        git(self.repo, "init", "-q", "-b", "main")
        (self.repo / "prepare.py").write_text(PREPARE)
        (self.repo / "train.py").write_text(TRAIN)
        (self.repo / "data" / "raw.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "pipeline code and raw data")
        git(self.repo, "remote", "add", "origin", self.origin.as_uri())
        git(self.repo, "push", "-q", "-u", "origin", "main")
        self.store = tmp / "cmf-data"  # the data remote's directory (a mount, elsewhere)
        self.store.mkdir()
        self.cwd = tmp

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        if line.split()[0] == "cd":
            self.cwd = Path(subprocess.run(["bash", "-ec", f"{line}\npwd"], cwd=self.cwd, env=self.env,
                                           capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
            return subprocess.CompletedProcess(line, 0, "", "")
        return subprocess.run(["bash", "-c", line], cwd=self.cwd, env=self.env, capture_output=True, text=True)

    def cmfgit(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "cmfgit", *args], cwd=cwd or self.repo, env=self.env, capture_output=True, text=True
        )
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def runs(self, *scope: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.cmfgit("log", "--json", *scope))
        return found

    def by_stage(self) -> dict[str, dict[str, Any]]:
        return {r["stage"]: r for r in self.runs()}

    def records_in(self, tree: str) -> set[str]:
        listed = git(self.repo, "ls-tree", "-r", "--name-only", tree, "--", ".cmf/objects")
        return {p for p in listed.splitlines() if p.endswith(".yaml")}


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    tour = Tour(tmp_path)

    def cd(out: str) -> None:
        assert tour.cwd == tour.repo

    def init(out: str) -> None:
        assert (tour.repo / ".cmf" / "config.yaml").exists() and (tour.repo / ".gitattributes").exists()
        assert git(tour.repo, "config", "cmfgit.site").strip() == "lab-a"
        assert git(tour.repo, "config", "merge.cmfgit.driver").strip()
        assert (tour.repo / ".git" / "hooks" / "pre-commit").exists()

    def prepare(out: str) -> None:
        (run,) = tour.runs()
        assert (run["pipeline"], run["stage"], run["site"], run["exit_code"]) == ("wine", "prepare", "lab-a", 0)
        assert [i["path"] for i in run["inputs"]] == ["data/raw.csv"]
        assert [o["path"] for o in run["outputs"]] == ["data/train.csv"]
        assert (tour.repo / "data" / "train.csv").read_text() == "a,b\n1,2\n3,4\n"

    def train(out: str) -> None:
        run = tour.by_stage()["train"]
        assert run["params"] == {"lr": 0.01, "epochs": 5} and run["metrics"] == {"acc": 0.93, "rmse": 0.71}
        outputs = {o["path"]: o["type"] for o in run["outputs"]}
        assert outputs == {"model.pkl": "model", "metrics.json": "metrics"}
        assert [i["hash"] for i in run["inputs"]] == [tour.by_stage()["prepare"]["outputs"][0]["hash"]]

    def log(out: str) -> None:
        runs = tour.by_stage()
        assert out.index(runs["train"]["id"][:12]) < out.index(runs["prepare"]["id"][:12])  # newest first
        assert "lr=0.01" in out and "acc=0.93" in out

    def log_where(out: str) -> None:
        runs = tour.by_stage()
        assert runs["train"]["id"][:12] in out and runs["prepare"]["id"][:12] not in out

    def show(out: str) -> None:
        assert out.startswith(f"id: {tour.by_stage()['train']['id']}\n") and "stage: train" in out

    def lineage(out: str) -> None:
        runs = tour.by_stage()
        for text in ("model.pkl", "data/train.csv", "data/raw.csv", runs["train"]["id"][:8], runs["prepare"]["id"][:8]):
            assert text in out, (text, out)
        assert out.index(runs["train"]["id"][:8]) < out.index(runs["prepare"]["id"][:8])  # upstream, in order

    def diff(out: str) -> None:
        runs = tour.by_stage()
        assert f"A {runs['prepare']['id'][:12]}" in out and f"B {runs['train']['id'][:12]}" in out
        assert re.search(r"params\.lr\s+-\s+0\.01", out), out

    def compare(out: str) -> None:
        runs = tour.by_stage()
        lines = out.splitlines()
        assert (
            lines[0].startswith("|") and runs["prepare"]["id"][:7] in lines[0] and runs["train"]["id"][:7] in lines[0]
        )
        assert any(line.startswith("| **params.lr** |") and "0.01" in line for line in lines), out  # changed: bold

    def site_build(out: str) -> None:
        site = tour.repo.parent / "wine-site"
        assert (site / "index.html").is_file() and (site / "config.js").is_file()
        data = "".join(p.read_text() for p in (site / "data").glob("*.js"))
        assert tour.by_stage()["train"]["id"] in data and "model.pkl" in data

    def tag(out: str) -> None:
        assert tour.by_stage()["train"]["tags"] == {"status": "production"}
        assert "status=production" in out

    def fsck(out: str) -> None:
        assert re.fullmatch(r"fsck: 3 record\(s\) ok\n", out), out  # two runs and the tag

    def status(out: str) -> None:
        for path in ("data/train.csv", "model.pkl", "metrics.json"):  # outputs enter the cache when recorded
            assert re.search(rf"^unchanged\s+cached\s+{re.escape(path)}$", out, re.M), out
        assert re.search(r"^unchanged\s+-\s+data/raw\.csv$", out, re.M), out  # an input: when pushed

    def remote(out: str) -> None:
        assert "added data remote 'store' -> ../cmf-data (default)" in out, out
        assert "cmf-data" in (tour.repo / ".cmf" / "config.yaml").read_text()

    def commit(out: str) -> None:
        on_disk = {p.relative_to(tour.repo).as_posix() for p in (tour.repo / ".cmf" / "objects").rglob("*.yaml")}
        assert len(on_disk) == 3
        assert tour.records_in("HEAD") == on_disk, "the commit does not hold the records"
        assert "train" in git(tour.repo, "log", "-1", "--format=%s")

    def push(out: str) -> None:
        assert git(tour.repo, "rev-parse", "HEAD").strip() == git(tour.origin, "rev-parse", "main").strip()
        assert len(tour.records_in(git(tour.origin, "rev-parse", "main").strip())) == 3
        ids = {r["id"] for r in tour.runs()}
        assert {r["id"] for r in tour.runs("--global")} == ids  # the global view has them
        (model,) = [o for o in tour.by_stage()["train"]["outputs"] if o["path"] == "model.pkl"]
        digest = model["hash"].removeprefix("blake3:")
        assert (tour.store / "blake3" / digest[:2] / digest[2:]).read_bytes() == (tour.repo / "model.pkl").read_bytes()
        assert "data       store: pushed" in out, out

    def pull(out: str) -> None:
        assert {r["id"] for r in tour.runs()} == {r["id"] for r in tour.runs("--global")}
        # The same line at another site, on a branch of its own that has none of the
        # records yet, brings the pipeline there from the global view.
        fresh = tmp_path / "elsewhere"
        git(tmp_path, "clone", "-q", tour.origin.as_uri(), str(fresh))
        root = git(fresh, "rev-list", "--max-parents=0", "HEAD").strip()
        git(fresh, "switch", "-q", "-c", "lab-b", root)
        tour.cmfgit("init", "--site", "lab-b", cwd=fresh)
        tour.cmfgit("remote", "add", "store", "../cmf-data", "--default", cwd=fresh)  # this branch predates it
        assert tour.cmfgit("log", "--json", cwd=fresh).strip() == "[]"
        (line,) = [t for t in lines if t.startswith("cmfgit pull --pipeline")]
        again = subprocess.run(["bash", "-c", line], cwd=fresh, env=tour.env, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        brought = json.loads(tour.cmfgit("log", "--json", cwd=fresh))
        assert {(r["pipeline"], r["stage"]) for r in brought} == {("wine", "prepare"), ("wine", "train")}
        assert {r["tags"].get("status") for r in brought} == {"production", None}
        assert (fresh / "model.pkl").read_bytes() == (tour.repo / "model.pkl").read_bytes()  # --with-data

    def artifact_pull(out: str) -> None:
        # The tagged run's artifacts (model.pkl, metrics.json, its input), from the data remote.
        (model,) = [o for o in tour.by_stage()["train"]["outputs"] if o["path"] == "model.pkl"]
        digest = model["hash"].removeprefix("blake3:")
        assert (tour.repo / "model.pkl").read_bytes() == (tour.store / "blake3" / digest[:2] / digest[2:]).read_bytes()
        assert "pulled" in out or "fetched" in out or "placed" in out, out

    checks: list[tuple[str, Callable[[str], None]]] = [
        ("cd my-pipeline", cd),
        ("cmfgit init --site lab-a", init),
        ("cmfgit log-run -s prepare", prepare),
        ("cmfgit log-run -s train", train),
        ("cmfgit log --where", log_where),
        ("cmfgit log ", log),
        ("cmfgit show", show),
        ("cmfgit lineage model.pkl", lineage),
        ("cmfgit diff", diff),
        ("cmfgit compare", compare),
        ("cmfgit site build", site_build),
        ("cmfgit tag", tag),
        ("cmfgit fsck", fsck),
        ("cmfgit status", status),
        ("cmfgit remote add", remote),
        ('git add .cmf && git commit -m "train"', commit),
        ("cmfgit push", push),
        ("cmfgit pull --pipeline wine --with-data", pull),
        ("cmfgit artifact pull --tag status=production", artifact_pull),
    ]
    lines = tour_lines()
    assert len(lines) == len(checks), lines
    for line in lines:
        proc = tour.run(line)
        check = next((fn for start, fn in checks if (line + " ").startswith(start)), None)
        assert check is not None, f"no check for the tour line {line!r}"
        assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, (line, proc.stderr)
        check(proc.stdout)
