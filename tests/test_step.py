"""``@cmfgit.step``: a function call as a recorded run (issue 13, item 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from conftest import cmfgit as cli

import cmfgit
from cmfgit.errors import UsageError
from cmfgit.query import CmfQuery


def b3(data: bytes) -> str:
    return "blake3:" + blake3(data).hexdigest()


def runs(repo: Path, stage: str) -> list[dict[str, Any]]:
    """The records of ``stage``, oldest first."""
    with CmfQuery(repo) as q:
        return [rec for _id, rec in reversed(q.execution_records(stage=stage))]


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    (repo / "data.csv").write_bytes(b"x,y\n1,2\n")
    return repo


class Model:  # not a value a record holds
    pass


def test_params_inputs_outputs_and_metrics_come_from_the_call(in_repo: Path) -> None:
    @cmfgit.step(pipeline="wine", inputs=("data",), outputs={"model_path": "model"}, returns="metrics")
    def train(
        data: str, model_path: Path, lr: float = 0.01, *, epochs: int = 5, opt: Any = None, init: Any = None
    ) -> dict[str, Any]:
        """Fit a model."""
        Path(model_path).write_bytes(b"weights " + Path(data).read_bytes())
        return {"rmse": 0.71, "eval": {"r2": 0.5}}

    assert (train.__name__, train.__doc__) == ("train", "Fit a model.")  # functools.wraps
    result = train("data.csv", Path("model.pkl"), lr=0.1, opt={"name": "adam"}, init=Model())
    assert result == {"rmse": 0.71, "eval": {"r2": 0.5}}  # the caller still gets the return value

    (rec,) = runs(in_repo, "train")
    assert (rec["pipeline"], rec["stage"], rec["exit_code"]) == ("wine", "train", 0)
    # Every other argument, defaults and keyword-only ones included; init (an object) is left out.
    assert rec["params"] == {"lr": 0.1, "epochs": 5, "opt.name": "adam"}
    (inp,) = rec["inputs"]
    assert (inp["path"], inp["hash"], inp["kind"]) == ("data.csv", b3(b"x,y\n1,2\n"), "file")
    (out,) = rec["outputs"]  # hashed after the call: the function wrote it
    assert (out["path"], out["type"]) == ("model.pkl", "model")
    assert out["hash"] == b3((in_repo / "model.pkl").read_bytes()) == b3(b"weights x,y\n1,2\n")
    assert rec["metrics"] == {"rmse": 0.71, "eval.r2": 0.5}

    # The CLI reads the same run back.
    (shown,) = json.loads(cli(in_repo, "log", "--json", "-s", "train").stdout)
    assert shown["params"]["lr"] == 0.1 and shown["metrics"]["rmse"] == 0.71


def test_bare_decorator_and_explicit_params(in_repo: Path) -> None:
    @cmfgit.step
    def prepare(src: str = "data.csv", seed: int = 0) -> None:
        pass

    prepare(seed=3)
    prepare(seed=4)
    assert [r["params"] for r in runs(in_repo, "prepare")] == [
        {"src": "data.csv", "seed": 3},
        {"src": "data.csv", "seed": 4},
    ]
    assert all(r["inputs"] == [] and r["exit_code"] == 0 for r in runs(in_repo, "prepare"))

    @cmfgit.step(stage="fit", params=("lr",), inputs="paths", returns="output", output_type="model")
    def fit(paths: list[str], lr: float, model: Any, **extra: Any) -> str:
        Path("fitted.bin").write_bytes(b"fitted")
        return "fitted.bin"

    assert fit(["data.csv"], 0.5, Model(), verbose=True) == "fitted.bin"
    (rec,) = runs(in_repo, "fit")
    assert rec["params"] == {"lr": 0.5}  # only the ones named
    assert [i["path"] for i in rec["inputs"]] == ["data.csv"]
    (out,) = rec["outputs"]
    assert (out["path"], out["type"], out["hash"]) == ("fitted.bin", "model", b3(b"fitted"))

    @cmfgit.step
    def kw(a: int, **extra: Any) -> None:
        pass

    kw(1, b=2, c=Model())
    assert runs(in_repo, "kw")[0]["params"] == {"a": 1, "b": 2}  # **kwargs are params by their own names

    @cmfgit.step(params=("model",))
    def named(model: Any) -> None:
        pass

    with pytest.raises(UsageError, match="param 'model': a value of type Model cannot be recorded"):
        named(Model())
    assert runs(in_repo, "named") == []  # refused before the run started


def test_an_exception_records_a_failed_run_and_propagates(in_repo: Path) -> None:
    @cmfgit.step(inputs=("data",), outputs=("out",))
    def crash(data: str, out: str, lr: float = 10.0) -> None:
        raise ValueError("loss diverged")

    with pytest.raises(ValueError, match="diverged"):
        crash("data.csv", "never.pt")
    (rec,) = runs(in_repo, "crash")
    assert rec["exit_code"] == 1 and rec["error"] == "ValueError: loss diverged"
    assert rec["params"] == {"lr": 10.0}
    assert rec["inputs"][0]["hash"] == b3(b"x,y\n1,2\n")
    assert rec["outputs"][0]["kind"] == "missing"

    # A wrong call is Python's TypeError, and no run.
    with pytest.raises(TypeError):
        crash("data.csv")  # type: ignore[call-arg]
    assert len(runs(in_repo, "crash")) == 1

    # A return value that is not what was declared is an error, recorded as a failure.
    @cmfgit.step(returns="metrics")
    def scores() -> Any:
        return [0.1]

    with pytest.raises(UsageError, match=r"scores\(\) returned list, not a mapping of metrics"):
        scores()
    assert runs(in_repo, "scores")[0]["exit_code"] == 1


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            {"inputs": ("dataset",)},
            r"cmfgit.step on f\(\): input 'dataset' is not one of its parameters \(data, out, lr\)",
        ),
        ({"outputs": ("model",)}, "output 'model' is not one of its parameters"),
        ({"params": ("epochs",)}, "param 'epochs' is not one of its parameters"),
        ({"inputs": ("data",), "outputs": ("data",)}, "'data' is declared both an input and an output"),
        ({"inputs": ("data",), "params": ("data",)}, "'data' is a path"),
        ({"returns": "model"}, "returns must be 'metrics', 'output' or None"),
        ({"output_type": "model"}, "needs returns='output'"),
    ],
)
def test_a_bad_declaration_is_an_error_at_decoration_time(declaration: dict[str, Any], message: str) -> None:
    def f(data: str, out: str, lr: float = 0.1) -> None:
        pass

    with pytest.raises(UsageError, match=message):
        cmfgit.step(**declaration)(f)


def test_unsupported_functions_and_paths_are_usage_errors(in_repo: Path) -> None:
    async def later() -> None:
        pass

    with pytest.raises(UsageError, match="async functions are not supported"):
        cmfgit.step(later)

    def star(*paths: str) -> None:
        pass

    with pytest.raises(UsageError, match=r"input 'paths' must be a named parameter"):
        cmfgit.step(inputs=("paths",))(star)

    @cmfgit.step(inputs=("data",))
    def read(data: Any) -> None:
        pass

    with pytest.raises(UsageError, match=r"read\(\) input 'data': a path or a list of paths, not int"):
        read(3)
    read(None)  # an optional input left out: no input
    assert [r["inputs"] for r in runs(in_repo, "read")] == [[]]
