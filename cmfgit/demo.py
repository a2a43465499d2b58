"""``cmfgit demo``: a real pipeline at two sites, a central repository, a local view.

It writes small stage scripts (pure Python, no numpy) into fresh git
repositories, runs each through ``cmfgit log-run`` exactly as a user would,
pushes from both sites with ``cmfgit push``, and pulls a local view of one
pipeline into a third clone with ``cmfgit pull``, then shows its lineage.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from cmfgit.errors import CmfgitError
from cmfgit.reading import executions
from cmfgit.repo import open_repo

PREPARE = '''\
"""prepare: generate a small wine-quality-like dataset and split it."""
import json, random, sys, os
params = json.load(open("params.json"))["prepare"]
rnd = random.Random(params["seed"])
os.makedirs("data/prepared", exist_ok=True)
rows = [l.strip().split(",") for l in open("data/raw/wine.csv")][1:]
train, test = [], []
for r in rows:
    (test if rnd.random() < params["split"] else train).append(r)
for name, part in (("train", train), ("test", test)):
    with open(f"data/prepared/{name}.csv", "w") as f:
        f.write("alcohol,acidity,quality\\n")
        f.writelines(",".join(r) + "\\n" for r in part)
print(f"prepare: {len(train)} train rows, {len(test)} test rows")
'''

TRAIN = '''\
"""train: fit a linear model by gradient descent; write the model and metrics."""
import json, sys
lr, epochs = float(sys.argv[1]), int(sys.argv[2])
rows = [[float(x) for x in l.split(",")] for l in open("data/prepared/train.csv").readlines()[1:]]
w = [0.0, 0.0, 0.0]
for _ in range(epochs):
    g = [0.0, 0.0, 0.0]
    for a, c, q in rows:
        err = w[0] + w[1] * a + w[2] * c - q
        g = [g[0] + err, g[1] + err * a, g[2] + err * c]
    w = [wi - lr * gi / len(rows) for wi, gi in zip(w, g)]
mse = sum((w[0] + w[1] * a + w[2] * c - q) ** 2 for a, c, q in rows) / len(rows)
json.dump({"weights": w}, open("model.json", "w"))
json.dump({"train_mse": round(mse, 6)}, open("train_metrics.json", "w"))
print(f"train: lr={lr} epochs={epochs} mse={mse:.4f}")
'''

EVALUATE = '''\
"""evaluate: score the model on the held-out rows."""
import json
w = json.load(open("model.json"))["weights"]
rows = [[float(x) for x in l.split(",")] for l in open("data/prepared/test.csv").readlines()[1:]]
mse = sum((w[0] + w[1] * a + w[2] * c - q) ** 2 for a, c, q in rows) / len(rows)
json.dump({"test_mse": round(mse, 6), "rows": len(rows)}, open("eval_metrics.json", "w"))
print(f"evaluate: test mse={mse:.4f}")
'''


MONITOR = '''\
"""collect: an edge box's sensor readings (a pipeline of its own)."""
import random
rnd = random.Random(3)
with open("readings.csv", "w") as f:
    f.write("t,temperature\\n")
    f.writelines(f"{t},{round(rnd.gauss(12, 1.5), 2)}\\n" for t in range(24))
print("collect: 24 readings")
'''


def _raw_data(seed: int = 1001) -> str:
    import random

    rnd = random.Random(seed)
    lines = ["alcohol,acidity,quality"]
    for _ in range(60):
        a, c = round(rnd.uniform(8, 14), 2), round(rnd.uniform(0.1, 1.0), 3)
        lines.append(f"{a},{c},{round(0.5 * a - 2.0 * c + rnd.gauss(0, 0.3), 3)}")
    return "\n".join(lines) + "\n"


class _Shell:
    """Runs and echoes commands, like a user at a terminal."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.env.setdefault("GIT_AUTHOR_NAME", "cmfgit demo")
        self.env.setdefault("GIT_AUTHOR_EMAIL", "demo@example.invalid")
        self.env.setdefault("GIT_COMMITTER_NAME", "cmfgit demo")
        self.env.setdefault("GIT_COMMITTER_EMAIL", "demo@example.invalid")
        if not sys.stdout.isatty():
            self.env.setdefault("COLUMNS", "120")  # tables as wide as on a terminal

    def run(self, cwd: Path, *args: str, show: bool = True, quiet: bool = False) -> str:
        shown = " ".join(shlex.quote(a) for a in args).replace(shlex.quote(sys.executable) + " -m cmfgit", "cmfgit")
        if show:
            print(f"\n[{cwd.name}]$ {shown}", flush=True)
        proc = subprocess.run(args, cwd=cwd, env=self.env, capture_output=quiet, text=True)
        if proc.returncode != 0:
            detail = (proc.stderr or "").strip().splitlines()[-1:] if quiet else []
            raise CmfgitError(f"demo step failed ({proc.returncode}): {shown} {' '.join(detail)}")
        return proc.stdout or ""

    def cmfgit(self, cwd: Path, *args: str) -> str:
        return self.run(cwd, sys.executable, "-m", "cmfgit", *args)


def run_demo(directory: Path | None) -> Path:
    """Two sites and a central repository; a third clone pulls a local view.

    ::

        central.git        bare: the central remote (git is the only server)
        data-store/        the data remote: artifact bytes by content hash
        lab/   site lab    branch site/lab:  prepare, train (two learning rates)
        edge/  site edge   branch site/edge: pulls lab's candidate model and its data, evaluates it;
                           its own edge-monitor pipeline
        analyst/           main (code only): pulls the wine-quality view, its data and its lineage
    """
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="cmfgit-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    if any(base.iterdir()):
        raise CmfgitError(f"{base} is not empty: give --dir an empty or new directory")
    sh = _Shell()
    py = sys.executable
    print(f"cmfgit demo in {base}")

    # The central repository and the pipeline's code, pushed to main by the lab.
    sh.run(base, "git", "init", "-q", "--bare", "-b", "main", "central.git")
    sh.run(base, "mkdir", "data-store")  # the data remote: a shared directory here; s3://, ssh://, ... elsewhere
    sh.run(base, "git", "init", "-q", "-b", "main", "lab")
    lab = base / "lab"
    sh.run(lab, "git", "remote", "add", "origin", "../central.git")
    _write_pipeline(lab)
    sh.cmfgit(lab, "init", "--site", "lab", "--pipeline", "wine-quality")
    # The data remote every clone uses (its name and URL are committed; credentials never are).
    sh.cmfgit(lab, "remote", "add", "store", "../data-store", "--default")
    sh.run(lab, "git", "add", "-A")
    sh.run(lab, "git", "commit", "-q", "-m", "wine-quality pipeline")
    sh.run(lab, "git", "push", "-q", "-u", "origin", "main")

    # Site lab: prepare the data and train twice, on its own branch.
    sh.run(lab, "git", "checkout", "-q", "-b", "site/lab")
    sh.cmfgit(lab, *PREPARE_RUN, "--", py, "prepare.py")
    for lr in ("0.001", "0.005"):
        sh.cmfgit(lab, *_train_run(lr), "--", py, "train.py", lr, "20")
    # The better of the two runs becomes the candidate: a tag, itself a small record.
    best = executions(open_repo(lab), stage="train", limit=1, sort="metrics.train_mse")[0][0]
    sh.cmfgit(lab, "tag", best[:12], "status=candidate")
    # Publish: the pending records are committed and pushed with the branch, the global
    # view is updated, and the bytes of every recorded artifact go to the data remote.
    sh.cmfgit(lab, "push")

    # Site edge: deploys lab's model, evaluates it, and runs a pipeline of its own.
    sh.run(base, "git", "clone", "-q", "central.git", "edge")
    edge = base / "edge"
    sh.cmfgit(edge, "init", "--site", "edge")
    sh.run(edge, "git", "checkout", "-q", "-b", "site/edge", "origin/site/lab")
    (edge / "monitor.py").write_text(MONITOR)
    sh.run(edge, "git", "add", "monitor.py")
    sh.run(edge, "git", "commit", "-q", "-m", "edge monitor")
    # The candidate model and the data upstream of it, byte for byte, from the data remote.
    sh.cmfgit(edge, "artifact", "pull", best[:12], "--with-lineage")
    sh.cmfgit(edge, "status")
    sh.cmfgit(edge, *EVALUATE_RUN, "--", py, "evaluate.py")
    sh.cmfgit(edge, "log-run", "-P", "edge-monitor", "-s", "collect", "-o", "readings.csv", "--", py, "monitor.py")
    sh.cmfgit(edge, "push")

    # An analyst's clone of main (code only) pulls a local view of one pipeline.
    sh.run(base, "git", "clone", "-q", "central.git", "analyst")
    analyst = base / "analyst"
    # (configures the fresh clone too; --with-data also places the pipeline's artifacts)
    sh.cmfgit(analyst, "pull", "--pipeline", "wine-quality", "--with-data")
    sh.cmfgit(analyst, "log")
    evaluate = executions(open_repo(analyst), stage="evaluate")[0][0]
    sh.cmfgit(analyst, "lineage", evaluate[:12])
    sh.run(base, "git", "--git-dir=central.git", "log", "--oneline", "-3", "cmf/global")
    print(
        f"\ndone: central repository {base / 'central.git'}, data remote {base / 'data-store'},"
        f" sites {lab} and {edge}, local view {analyst}"
    )
    return base


def _write_pipeline(repo: Path) -> None:
    (repo / "data/raw").mkdir(parents=True)
    (repo / "data/raw/wine.csv").write_text(_raw_data())
    (repo / "params.json").write_text('{"prepare": {"split": 0.25, "seed": 7}}\n')
    (repo / "prepare.py").write_text(PREPARE)
    (repo / "train.py").write_text(TRAIN)
    (repo / "evaluate.py").write_text(EVALUATE)
    # Outputs are data, not code: ignored, so runs record a clean code version.
    (repo / ".gitignore").write_text("data/prepared/\nmodel.json\n*_metrics.json\nreadings.csv\n")


PREPARE_RUN = (
    "log-run",
    "-s",
    "prepare",
    "--params-file",
    "params.json:prepare",
    "-i",
    "data/raw/wine.csv",
    "-o",
    "data/prepared/train.csv",
    "-o",
    "data/prepared/test.csv",
)
EVALUATE_RUN = (
    "log-run",
    "-s",
    "evaluate",
    "-i",
    "model.json",
    "--type",
    "model",
    "-i",
    "data/prepared/test.csv",
    "-m",
    "eval_metrics.json",
)


def _train_run(lr: str) -> tuple[str, ...]:
    return (
        "log-run",
        "-s",
        "train",
        "-p",
        f"lr={lr}",
        "-p",
        "epochs=20",
        "-i",
        "data/prepared/train.csv",
        "-o",
        "model.json",
        "--type",
        "model",
        "-m",
        "train_metrics.json",
    )
