"""``cmfgit demo``: a real pipeline in real git repositories.

It writes three small stage scripts (pure Python, no numpy), runs each
through ``cmfgit log-run`` exactly as a user would, and shows the result.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from cmfgit.errors import CmfgitError

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
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="cmfgit-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    if any(base.iterdir()):
        raise CmfgitError(f"{base} is not empty: give --dir an empty or new directory")
    sh = _Shell()
    repo = base / "wine-quality"
    repo.mkdir()
    print(f"cmfgit demo in {base}")
    sh.run(repo, "git", "init", "-q", "-b", "main")
    (repo / "data/raw").mkdir(parents=True)
    (repo / "data/raw/wine.csv").write_text(_raw_data())
    (repo / "params.json").write_text('{"prepare": {"split": 0.25, "seed": 7}}\n')
    (repo / "prepare.py").write_text(PREPARE)
    (repo / "train.py").write_text(TRAIN)
    (repo / "evaluate.py").write_text(EVALUATE)
    (repo / ".gitignore").write_text("data/prepared/\nmodel.json\n*_metrics.json\n")
    sh.cmfgit(repo, "init", "--site", "lab", "--pipeline", "wine-quality")
    sh.run(repo, "git", "add", "-A")
    sh.run(repo, "git", "commit", "-q", "-m", "wine-quality pipeline")
    py = sys.executable
    sh.cmfgit(
        repo,
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
        "--",
        py,
        "prepare.py",
    )
    for lr in ("0.001", "0.005"):
        sh.cmfgit(
            repo,
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
            "--",
            py,
            "train.py",
            lr,
            "20",
        )
    sh.cmfgit(
        repo,
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
        "--commit",
        "--",
        py,
        "evaluate.py",
    )
    sh.cmfgit(repo, "log")
    last = sh.run(repo, sys.executable, "-m", "cmfgit", "log", "-n", "1", "--json", show=False, quiet=True)
    import json

    sh.cmfgit(repo, "show", json.loads(last)[0]["id"][:12])
    sh.cmfgit(repo, "fsck")
    print(f"\ndone: the demo repository is {repo}")
    return base
