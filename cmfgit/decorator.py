"""``@cmfgit.step``: a Python function as a recorded execution, built on :func:`cmfgit.run`.

::

    @cmfgit.step(pipeline="wine", inputs=("data",), outputs=("model_path",), returns="metrics")
    def train(data: str, model_path: str, lr: float = 0.01, *, epochs: int = 5) -> dict[str, float]:
        ...
        return {"rmse": 0.71}

    train("data/train.csv", "model.pkl", lr=0.1)   # one run: stage "train", params lr and epochs

Each call is one run. The arguments named in ``inputs`` are paths hashed before
the call, those in ``outputs`` paths hashed after it; every other argument is a
param. ``returns`` says what the return value is: ``"metrics"`` (a mapping) or
``"output"`` (a path, or a list of paths). An exception records a failed run
and propagates, as in ``with cmfgit.run(...)``.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, cast, overload

from cmfgit.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
Returns = Literal["metrics", "output"] | None
Declared = Iterable[str] | Mapping[str, str | None]

_NAMED = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@overload
def step(func: F, /) -> F: ...


@overload
def step(
    func: None = None,
    /,
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    inputs: Declared = (),
    outputs: Declared = (),
    params: Iterable[str] | None = None,
    returns: Returns = None,
    output_type: str | None = None,
    execution_type: str | None = None,
    repo: str | os.PathLike[str] | None = None,
) -> Callable[[F], F]: ...


def step(
    func: F | None = None,
    /,
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    inputs: Declared = (),
    outputs: Declared = (),
    params: Iterable[str] | None = None,
    returns: Returns = None,
    output_type: str | None = None,
    execution_type: str | None = None,
    repo: str | os.PathLike[str] | None = None,
) -> F | Callable[[F], F]:
    """Record every call of the decorated function as one run.

    ``inputs``/``outputs``: names of the function's parameters that hold paths
    (a path, a list of paths, or ``None`` for none); a mapping gives each its
    artifact type (``{"model_path": "model"}``). ``params``: the arguments to
    record as params (default: every other argument whose value a record can
    hold; the others, a DataFrame or a model object, are left out; named here,
    such a value is a ``UsageError``). ``stage`` defaults to the function's name.
    ``returns="metrics"``: the returned mapping is the run's metrics;
    ``returns="output"``: the returned path(s) are outputs (of ``output_type``).
    A declaration that does not fit the function is a ``UsageError`` at once.
    """

    def decorate(fn: F) -> F:
        recorded = _Step(fn, pipeline, stage, inputs, outputs, params, returns, output_type, execution_type, repo)
        return cast(F, recorded.wrap())

    if func is not None:
        if not callable(func):
            raise UsageError(f"cmfgit.step: decorates a function, not {type(func).__name__}")
        return decorate(func)
    return decorate


def _declared(names: Declared, what: str) -> dict[str, str | None]:
    if isinstance(names, str):  # inputs="data": one name, not the letters d, a, t, a
        return {names: None}
    if isinstance(names, Mapping):
        return {str(k): (None if v is None else str(v)) for k, v in names.items()}
    try:
        return {str(n): None for n in names}
    except TypeError:
        raise UsageError(f"cmfgit.step: {what} must be names of parameters, not {type(names).__name__}") from None


class _Step:
    def __init__(
        self,
        fn: Callable[..., Any],
        pipeline: str | None,
        stage: str | None,
        inputs: Declared,
        outputs: Declared,
        params: Iterable[str] | None,
        returns: Returns,
        output_type: str | None,
        execution_type: str | None,
        repo: str | os.PathLike[str] | None,
    ) -> None:
        name = getattr(fn, "__name__", type(fn).__name__)
        where = f"cmfgit.step on {name}()"
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise UsageError(f"{where}: async functions are not supported (decorate a plain function)")
        if returns not in (None, "metrics", "output"):
            raise UsageError(f"{where}: returns must be 'metrics', 'output' or None, not {returns!r}")
        if output_type is not None and returns != "output":
            raise UsageError(f"{where}: output_type is the type of returned outputs: it needs returns='output'")
        try:
            self.signature = inspect.signature(fn)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: cannot read the function's parameters") from None
        args = self.signature.parameters
        self.inputs = _declared(inputs, "inputs")
        self.outputs = _declared(outputs, "outputs")
        self.params = None if params is None else list(_declared(params, "params"))
        for what, names in (("input", self.inputs), ("output", self.outputs), ("param", self.params or ())):
            for arg in names:
                if arg not in args:
                    known = ", ".join(args) or "none"
                    raise UsageError(f"{where}: {what} {arg!r} is not one of its parameters ({known})")
                if what != "param" and args[arg].kind not in _NAMED:
                    raise UsageError(f"{where}: {what} {arg!r} must be a named parameter, not *{arg} or **{arg}")
        both = [n for n in self.inputs if n in self.outputs]
        if both:
            raise UsageError(f"{where}: {both[0]!r} is declared both an input and an output")
        paths = set(self.inputs) | set(self.outputs)
        clash = [n for n in self.params or () if n in paths]
        if clash:
            raise UsageError(f"{where}: {clash[0]!r} is a path (input or output), not a param")
        self.fn = fn
        self.name = name
        self.pipeline = pipeline
        self.stage = stage or name
        self.returns = returns
        self.output_type = output_type
        self.execution_type = execution_type
        self.repo = repo

    def wrap(self) -> Callable[..., Any]:
        fn = self.fn

        @functools.wraps(fn)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            return self.call(args, kwargs)

        return recorded

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from cmfgit.api import run

        bound = self.signature.bind(*args, **kwargs)  # a wrong call is the TypeError it always was
        bound.apply_defaults()
        values = bound.arguments
        params = self._params(values)
        ins = [(p, k) for a, k in self.inputs.items() for p in _paths(values[a], f"input {a!r}", self.name)]
        outs = [(p, k) for a, k in self.outputs.items() for p in _paths(values[a], f"output {a!r}", self.name)]
        with run(
            pipeline=self.pipeline,
            stage=self.stage,
            params=params,
            execution_type=self.execution_type,
            repo=self.repo,
        ) as r:
            for path, kind in ins:
                r.log_input(path, type=kind)
            for path, kind in outs:  # declared now, hashed when the run ends
                r.log_output(path, type=kind)
            result = self.fn(*bound.args, **bound.kwargs)
            if self.returns == "metrics":
                if not isinstance(result, Mapping):
                    raise UsageError(
                        f"{self.name}() returned {type(result).__name__}, not a mapping of metrics (returns='metrics')"
                    )
                r.log_metrics(dict(result))
            elif self.returns == "output":
                for path in _paths(result, "its return value", self.name):
                    r.log_output(path, type=self.output_type)
        return result

    def _params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        from cmfgit.recorder import flatten

        if self.params is not None:
            return flatten({n: values[n] for n in self.params if n in values})  # a bad value: UsageError
        params: dict[str, Any] = {}
        kinds = self.signature.parameters
        for arg, value in values.items():
            if arg in self.inputs or arg in self.outputs:
                continue
            items = value.items() if kinds[arg].kind is inspect.Parameter.VAR_KEYWORD else [(arg, value)]
            for key, item in items:
                try:
                    params.update(flatten({key: item}))
                except UsageError:
                    continue  # not a value a record holds (a DataFrame, a model): left out
        return params


def _paths(value: Any, what: str, name: str) -> list[str | os.PathLike[str]]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in value):
        return list(value)
    raise UsageError(f"{name}() {what}: a path or a list of paths, not {type(value).__name__}")
