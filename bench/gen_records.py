"""Generate N synthetic execution records with realistic lineage.

    python bench/gen_records.py REPO N [--layout loose|packed] [--seed S] [--sites K]

Writes canonical records straight into ``REPO/.cmf/objects`` (loose files or
packs at ``pack/<site>/<yyyy-mm>.yaml``), without git and without log-run, so a
million records take minutes, not hours. The shape mimics real use:

- pipelines of 3 to 5 stages (prep -> [featurize] -> train -> evaluate -> [report]);
- a pool of shared raw datasets, each consumed by several pipelines' first
  stage, and by some evaluate stages as an extra test set;
- hyper-parameter sweeps: each data version is trained many times with a grid
  of learning rates, batch sizes, epochs and seeds; every trained model is
  evaluated, so ``metrics.acc`` exists on evaluate runs and ``metrics.loss`` on
  train runs;
- several sites, and two years of start times, so packs split by site and month.

Every record is valid (``cmfgit fsck`` passes) and its id is the blake3 of
its canonical bytes. The same seed gives the same records.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from blake3 import blake3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmfgit import canonical, pack  # noqa: E402

STAGES_3 = ["prep", "train", "evaluate"]
STAGES_4 = ["prep", "featurize", "train", "evaluate"]
STAGES_5 = ["prep", "featurize", "train", "evaluate", "report"]
LRS = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001]
BATCHES = [16, 32, 64, 128, 256]
OPTIMIZERS = ["adam", "sgd", "adamw"]
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=730)


def _hash(label: str) -> str:
    return "blake3:" + blake3(label.encode()).hexdigest()


def _art(path: str, label: str, type_: str, size: int, **props: Any) -> dict[str, Any]:
    return {"path": path, "hash": _hash(label), "size": size, "type": type_, "kind": "file", "props": props}


class Generator:
    def __init__(self, n: int, seed: int = 1, sites: int = 4) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.sites = [f"site{i}" for i in range(sites)]
        n_pipelines = max(3, min(60, n // 15000 + 3))
        n_shared = max(4, n_pipelines)
        self.shared = [
            _art(f"data/raw/ds{i}.csv", f"raw-{seed}-{i}", "dataset", 10_000 + i * 977) for i in range(n_shared)
        ]
        self.pipelines: list[dict[str, Any]] = []
        for p in range(n_pipelines):
            stages = [STAGES_3, STAGES_4, STAGES_5][p % 3]
            k = 1 + p % 3
            uses = sorted({(p * 7 + j * 3) % n_shared for j in range(k)})
            self.pipelines.append(
                {"name": f"pipe{p:02d}", "stages": stages, "site": self.sites[p % sites], "shared": uses, "gen": 0}
            )
        self.count = 0
        self.step = SPAN / max(n, 1)
        self.clock = START

    # -- one record -----------------------------------------------------------

    def _record(
        self,
        pipe: dict[str, Any],
        stage: str,
        params: dict[str, Any],
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        metrics: dict[str, Any],
        commit: str,
    ) -> dict[str, Any]:
        rng = self.rng
        self.clock += self.step * (0.5 + rng.random())
        started = self.clock
        ended = started + timedelta(seconds=rng.randint(1, 3600))
        self.count += 1
        return {
            "schema": "cmfgit/execution/1",
            "uuid": f"{rng.getrandbits(128):032x}",
            "pipeline": pipe["name"],
            "stage": stage,
            "type": stage,
            "command": ["python", f"src/{stage}.py"],
            "params": params,
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "ended_at": ended.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "exit_code": 0 if rng.random() > 0.02 else 1,
            "site": pipe["site"],
            "host": f"{pipe['site']}-node{rng.randint(1, 8)}",
            "user": rng.choice(["ana", "bo", "chen", "dev"]),
            "git": {"branch": "main", "commit": commit, "dirty": False, "remote": None, "tree": commit[::-1]},
            "env": {"platform": "Linux-6.1-x86_64", "python": "3.11.7"},
            "inputs": inputs,
            "outputs": outputs,
            "metrics": metrics,
        }

    # -- one generation of a pipeline: a data version and a sweep on it ----------

    def _generation(self, pipe: dict[str, Any]) -> Iterator[dict[str, Any]]:
        rng = self.rng
        pipe["gen"] += 1
        tag = f"{pipe['name']}-g{pipe['gen']}"
        commit = blake3(tag.encode()).hexdigest()[:40]
        stages = pipe["stages"]
        raw = [self.shared[i] for i in pipe["shared"]]
        train_set = _art(f"data/{pipe['name']}/train.csv", tag + "-train", "dataset", rng.randint(10**5, 10**7))
        test_set = _art(f"data/{pipe['name']}/test.csv", tag + "-test", "dataset", rng.randint(10**4, 10**6))
        yield self._record(
            pipe,
            "prep",
            {"seed": pipe["gen"], "split": 0.2},
            raw,
            [train_set, test_set],
            {"rows": rng.randint(10**3, 10**6)},
            commit,
        )
        features = train_set
        if "featurize" in stages:
            features = _art(f"data/{pipe['name']}/features.npy", tag + "-feat", "dataset", rng.randint(10**5, 10**7))
            method = rng.choice(["pca", "tfidf", "raw"])
            yield self._record(
                pipe,
                "featurize",
                {"method": method, "n_features": rng.choice([64, 128, 256])},
                [train_set],
                [features],
                {},
                commit,
            )
        sweep = rng.randint(8, 40)
        evaluated: list[tuple[float, dict[str, Any]]] = []
        for run in range(sweep):
            if self.count >= self.n:
                return
            lr, batch = rng.choice(LRS), rng.choice(BATCHES)
            params = {
                "lr": lr,
                "batch_size": batch,
                "epochs": rng.randint(1, 50),
                "optimizer": rng.choice(OPTIMIZERS),
                "seed": run,
                "model.depth": rng.randint(2, 12),
            }
            quality = max(0.0, min(1.0, 0.6 + 0.3 * rng.random() - abs(lr - 0.003) * 2))
            model = _art(
                f"models/{pipe['name']}/model.pkl",
                f"{tag}-m{run}",
                "model",
                rng.randint(10**4, 10**8),
                framework="sklearn",
            )
            yield self._record(
                pipe,
                "train",
                params,
                [features],
                [model],
                {"loss": round(1.5 * (1 - quality) + rng.random() * 0.1, 6)},
                commit,
            )
            if self.count >= self.n:
                return
            report = _art(f"metrics/{pipe['name']}/eval.json", f"{tag}-e{run}", "metrics", rng.randint(100, 2000))
            inputs = [model, test_set]
            if rng.random() < 0.3:
                inputs.append(self.shared[rng.randrange(len(self.shared))])  # an extra shared test set
            acc = round(quality, 6)
            yield self._record(
                pipe,
                "evaluate",
                {"threshold": 0.5},
                inputs,
                [report],
                {"acc": acc, "f1": round(acc * 0.97, 6), "auc": round(min(1.0, acc + 0.05), 6)},
                commit,
            )
            evaluated.append((acc, model))
        if "report" in stages and evaluated and self.count < self.n:
            best = max(evaluated, key=lambda item: item[0])[1]
            card = _art(f"reports/{pipe['name']}/card.md", tag + "-card", "other", rng.randint(1000, 5000))
            yield self._record(
                pipe, "report", {"format": "md"}, [best], [card], {"best_acc": max(a for a, _ in evaluated)}, commit
            )

    def records(self) -> Iterator[dict[str, Any]]:
        weights = [1 + (i % 5) for i in range(len(self.pipelines))]
        while self.count < self.n:
            pipe = self.rng.choices(self.pipelines, weights)[0]
            for record in self._generation(pipe):
                yield record
                if self.count >= self.n:
                    return


def iter_canonical(n: int, seed: int = 1, sites: int = 4) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """(id, canonical bytes, record) of ``n`` synthetic records, oldest first."""
    for record in Generator(n, seed, sites).records():
        data, rid = canonical.encode(record)
        yield rid, data, record


def write(repo: Path, n: int, layout: str = "packed", seed: int = 1, sites: int = 4) -> int:
    """Write ``n`` records into ``repo/.cmf/objects``; returns how many were new."""
    objects = repo / ".cmf" / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    written = 0
    buffers: dict[tuple[str, str], dict[str, bytes]] = {}

    def flush(key: tuple[str, str]) -> None:
        site, month = key
        path = objects / "pack" / site / f"{month}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        records = buffers.pop(key)
        if path.exists():
            records = pack.merge_into(pack.parse(path.read_bytes(), str(path), verify=False), records.items())
        path.write_bytes(pack.serialize(records))

    current: dict[str, str] = {}
    for rid, data, record in iter_canonical(n, seed, sites):
        written += 1
        if layout == "loose":
            path = objects / rid[:2] / f"{rid[2:]}.yaml"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:
                path.parent.mkdir(exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                written -= 1
                continue
            os.write(fd, data)
            os.close(fd)
            continue
        site, month = record["site"], record["started_at"][:7]
        if current.get(site) not in (None, month):
            flush((site, current[site]))  # time moves forward: that month is complete
        current[site] = month
        buffers.setdefault((site, month), {})[rid] = data
    for key in list(buffers):
        flush(key)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("n", type=int)
    parser.add_argument("--layout", choices=["loose", "packed"], default="packed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sites", type=int, default=4)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    written = write(args.repo, args.n, args.layout, args.seed, args.sites)
    took = time.perf_counter() - start
    print(f"wrote {written} records ({args.layout}) to {args.repo} in {took:.1f}s ({written / took:.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
