"""log-run's fast option reader agrees with its argparse parser.

``logrun.fast_options`` reads well-formed options without importing argparse
(start-up time, DESIGN §10) and steps aside for anything else. Whenever it
answers, argparse must give the same namespace.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmfgit import logrun
from cmfgit.errors import UsageError

OPTIONS = [
    "-P", "--pipeline", "-s", "--stage", "--execution-type", "-i", "--input", "-o", "--output", "-t", "--type",
    "-p", "--param", "--params-file", "-m", "--metrics-file", "--commit", "-q", "--quiet",
]  # fmt: skip
ODD = ["-h", "--help", "--pipe", "--stag", "-qs", "-Pp", "-sx", "--commit=1", "--quiet=", "--stage=", "-", "-1",
       "--bogus", "--param=a=1", "--type=model", "--input=x", "-pa=1", "x", "--params-file=f.yaml:a"]  # fmt: skip
VALUES = ["train", "data/x.csv", "lr=0.01", "a b", "", "-x", "model", "=", "é", "--", "p.yaml:key"]

tokens = st.lists(st.one_of(st.sampled_from(OPTIONS), st.sampled_from(ODD), st.sampled_from(VALUES)), max_size=10)


def _argparse(options: list[str]) -> dict[str, object] | None:
    try:
        return vars(logrun.build_parser().parse_args(options))
    except (UsageError, SystemExit):
        return None


@settings(max_examples=400, deadline=None)
@given(tokens)
def test_fast_options_agree_with_argparse(options: list[str]) -> None:
    fast = logrun.fast_options(options)
    if fast is not None:
        assert vars(fast) == _argparse(options)


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["-s", "train", "-p", "lr=0.01", "-p", "epochs=5", "-i", "data/x.csv", "-o", "model.pkl", "--type", "model"],
        ["--stage=train", "--param=lr=0.1", "-m", "metrics.json", "--commit", "-q"],
        ["-P", "wine", "--execution-type", "fit", "--params-file", "params.yaml:train", "-o", "out", "-t", "dataset"],
    ],
)
def test_common_command_lines_take_the_fast_path(options: list[str]) -> None:
    fast = logrun.fast_options(options)
    assert fast is not None
    assert vars(fast) == _argparse(options)


@pytest.mark.parametrize("options", [["--help"], ["--bogus"], ["--type", "model"], ["-s"], ["-p", "-1"], ["x"]])
def test_anything_else_is_left_to_argparse(options: list[str]) -> None:
    assert logrun.fast_options(options) is None
