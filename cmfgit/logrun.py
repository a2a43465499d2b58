"""``cmfgit log-run``: run a command and record it as one execution.

This is a hot command, so it parses its own arguments and never imports
typer or rich (rich only appears if hashing is slow on a TTY). Help, errors
and unusual command lines go through the click command that ``cli/records.py``
declares with the same options (``HELP``), so they read like every other command's.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from cmfgit import canonical, envinfo
from cmfgit.config import load_config
from cmfgit.errors import CmfgitError, CommandNotFound, PathError, UsageError
from cmfgit.recorder import Recorder, flatten
from cmfgit.repo import open_repo

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    import argparse
    from typing import Any, NoReturn

_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$")
_INTERPRETERS = re.compile(r"^(python[0-9.]*|pypy[0-9.]*|bash|sh|zsh|Rscript|node|julia|ruby|perl)$")
_INLINE_CODE = frozenset({"-c", "-e", "--eval"})  # python/sh -c, node/perl/ruby/Rscript/julia -e
_OPTION_WITH_VALUE = frozenset({"-W", "-X", "--check-hash-based-pycs"})  # python options taking a value
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_SI_KERNEL = 0x80  # si_code of a signal sent by the kernel, e.g. Ctrl-C on a TTY

USAGE = "cmfgit log-run [OPTIONS] -- COMMAND [ARGS...]"
DESCRIPTION = """\
Run COMMAND and record it as one execution of a pipeline stage.

Inputs are hashed before COMMAND runs, outputs after it ends. The record is
written even when COMMAND fails, and cmfgit exits with COMMAND's exit code.
The short id of the new execution is printed on stderr.
"""
# The help of each option, for build_parser() and for the click command in cli/records.py
# (tests/test_terminal.py checks that the two declare the same options).
HELP = {
    "pipeline": "pipeline name (default: .cmf/config.yaml, else the repo's name)",
    "stage": "stage name (default: .cmf/config.yaml, else from COMMAND: 'python train.py' -> train)",
    "execution_type": "execution type (default: the stage name)",
    "input": "an input file or directory; repeatable",
    "output": "an output file or directory; repeatable",
    "type": "type of the preceding -i/-o: dataset, model, metrics, ... (default: model by extension, else dataset)",
    "param": "a parameter, typed as int, float, bool or string; repeatable",
    "params_file": "parameters from a YAML or JSON file, or from one key of it; repeatable",
    "metrics_file": "a YAML or JSON file of metrics, read after COMMAND ends; repeatable",
    "commit": "commit the new record (only it: your staged changes stay staged)",
    "quiet": "print nothing but errors",
}
EPILOG = """\
examples:
  cmfgit log-run -s prepare -i data/raw.csv -o data/train.csv -- python prepare.py
  cmfgit log-run -s train -p lr=0.01 -p epochs=5 -i data/train.csv \\
      -o model.pkl --type model -m metrics.json -- python train.py
"""


def typed_value(raw: str) -> Any:
    """'5' -> 5, '0.1' -> 0.1, 'true' -> True; anything else stays a string.

    Strings with leading zeros ('0777', '007') stay strings: they are codes,
    not numbers.
    """
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT.match(raw):
        return int(raw)
    if _FLOAT.match(raw) and not re.match(r"^[+-]?0[0-9]", raw):
        return float(raw)
    return raw


def parse_param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"bad --param '{text}': expected KEY=VALUE, for example -p lr=0.01")
    return key.strip(), typed_value(raw)


def read_structured(path: Path, shown: str) -> Any:
    """A YAML or JSON file (JSON by extension, so 1e-05 stays a float), within the
    bounds of user input (canonical.MAX_INPUT_*: size, nesting, values)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(canonical.MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise PathError(shown, "does not exist") from None
    except OSError as exc:
        raise PathError(shown, exc.strerror or str(exc)) from None
    if len(raw) > canonical.MAX_INPUT_BYTES:
        mib = canonical.MAX_INPUT_BYTES // (1024 * 1024)
        raise PathError(shown, f"is larger than {mib} MiB: not read as params or metrics")
    if path.suffix.lower() == ".json":
        try:
            import json  # only for .json files: it costs start-up time

            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PathError(shown, f"is not valid JSON: {exc}") from None
        except RecursionError:
            raise PathError(shown, canonical.too_deep()) from None
    else:
        doc = canonical.load(raw, shown)
    canonical.check_input(doc, shown)
    return doc


def read_params_file(spec: str, cwd: Path) -> dict[str, Any]:
    """``FILE`` or ``FILE:KEY`` (KEY may be dotted: train.optimizer)."""
    file, key = spec, None
    if not (cwd / spec).exists() and ":" in spec:
        file, key = spec.rsplit(":", 1)
    doc = read_structured(cwd / file, file)
    if key:
        for part in key.split("."):
            if not isinstance(doc, dict) or part not in doc:
                raise UsageError(f"--params-file {spec}: no key '{key}' in {file}")
            doc = doc[part]
    if not isinstance(doc, dict):
        raise UsageError(f"--params-file {spec}: expected a mapping of parameters")
    canonical.check_data(doc, file)
    return flatten(doc)


def which(command: str) -> str | None:
    """shutil.which on POSIX, without importing shutil (~5 ms of start-up)."""

    def runnable(path: str) -> bool:
        return os.path.exists(path) and os.access(path, os.X_OK) and not os.path.isdir(path)

    if os.path.dirname(command):
        return command if runnable(command) else None
    search = os.environ.get("PATH")
    if search is None:
        try:
            search = os.confstr("CS_PATH") or os.defpath
        except (AttributeError, ValueError):
            search = os.defpath
    seen: set[str] = set()
    for directory in search.split(os.pathsep):
        if directory not in seen:
            seen.add(directory)
            candidate = os.path.join(directory, command)
            if runnable(candidate):
                return candidate
    return None


def infer_stage(command: list[str]) -> str:
    """A stage name from the command.

    'python train.py' -> 'train', 'python -m pkg.train' -> 'train',
    './prepare.sh' -> 'prepare', and inline code ('python -c ...',
    'node -e ...') -> the interpreter's name ('python', 'node').
    """
    program = os.path.basename(command[0])
    if not _INTERPRETERS.match(program):
        return os.path.splitext(program)[0] or "run"
    interpreter = re.sub(r"[0-9.]+$", "", program) or program
    args = command[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _INLINE_CODE:
            return interpreter
        if arg == "-m" and i + 1 < len(args):
            return args[i + 1].rsplit(".", 1)[-1] or interpreter
        if arg in _OPTION_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return os.path.splitext(os.path.basename(arg))[0] or interpreter
    return interpreter


def _terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without importing shutil."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 80
    except (AttributeError, ValueError, OSError):
        return 80


def build_parser() -> argparse.ArgumentParser:
    """The full parser, for the unusual forms that :func:`fast_options` leaves
    (after click has read the command line for help and usage errors).

    argparse (with gettext and locale) costs log-run ~5 ms of start-up, so it
    is imported here: well-formed options take :func:`fast_options` instead.
    """
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise UsageError(f"{message} (see 'cmfgit log-run --help')")

    class _Formatter(argparse.RawDescriptionHelpFormatter):
        """argparse builds a formatter for every add_argument, and the default
        one imports shutil (~5 ms of log-run's start-up) to find the width."""

        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=_terminal_columns() - 2)

    class _ArtifactAction(argparse.Action):
        """-i/-o append to one ordered list, so --type can refer to the last one."""

        def __call__(
            self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, option: str | None = None
        ) -> None:
            ns.artifacts.append([self.const, value, None])

    class _TypeAction(argparse.Action):
        def __call__(
            self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, option: str | None = None
        ) -> None:
            if not ns.artifacts:
                raise UsageError("--type must follow an --input or --output, e.g. -o model.pkl --type model")
            if ns.artifacts[-1][2] is not None:
                raise UsageError(f"--type given twice for {ns.artifacts[-1][1]}")
            ns.artifacts[-1][2] = value

    p = _Parser(
        prog="cmfgit log-run",
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_Formatter,
        add_help=True,
    )
    p.add_argument("-P", "--pipeline", help=HELP["pipeline"])
    p.add_argument("-s", "--stage", help=HELP["stage"])
    p.add_argument("--execution-type", metavar="NAME", help=HELP["execution_type"])
    p.add_argument(
        "-i",
        "--input",
        action=_ArtifactAction,
        const="input",
        metavar="PATH",
        help=HELP["input"],
    )
    p.add_argument(
        "-o",
        "--output",
        action=_ArtifactAction,
        const="output",
        metavar="PATH",
        help=HELP["output"],
    )
    p.add_argument(
        "-t",
        "--type",
        action=_TypeAction,
        metavar="TYPE",
        help=HELP["type"],
    )
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=HELP["param"],
    )
    p.add_argument(
        "--params-file",
        action="append",
        default=[],
        metavar="FILE[:KEY]",
        help=HELP["params_file"],
    )
    p.add_argument(
        "-m",
        "--metrics-file",
        action="append",
        default=[],
        metavar="FILE",
        help=HELP["metrics_file"],
    )
    p.add_argument("--commit", action="store_true", help=HELP["commit"])
    p.add_argument("-q", "--quiet", action="store_true", help=HELP["quiet"])
    p.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(artifacts=[])
    return p


# The options of build_parser(), for fast_options().
_VALUE_OPTIONS = {
    "-P": "pipeline",
    "--pipeline": "pipeline",
    "-s": "stage",
    "--stage": "stage",
    "--execution-type": "execution_type",
    "-i": "input",
    "--input": "input",
    "-o": "output",
    "--output": "output",
    "-t": "type",
    "--type": "type",
    "-p": "param",
    "--param": "param",
    "--params-file": "params_file",
    "-m": "metrics_file",
    "--metrics-file": "metrics_file",
}
_FLAG_OPTIONS = {"--commit": "commit", "-q": "quiet", "--quiet": "quiet"}
_REPEATED = frozenset({"param", "params_file", "metrics_file"})


def fast_options(options: list[str]) -> SimpleNamespace | None:
    """``options`` as ``build_parser().parse_args`` reads them, without argparse.

    Only the plain forms are taken (``-x VALUE``, ``--long VALUE``,
    ``--long=VALUE``, flags); anything else (help, a mistake, an abbreviated
    option, a value starting with '-') is None, and argparse then parses it
    with its own messages. ``tests/test_logrun_options.py`` checks that the
    two agree.
    """
    ns = SimpleNamespace(
        pipeline=None,
        stage=None,
        execution_type=None,
        input=None,  # argparse's defaults for the -i/-o/--type actions, which fill artifacts
        output=None,
        type=None,
        artifacts=[],
        param=[],
        params_file=[],
        metrics_file=[],
        commit=False,
        quiet=False,
        command=[],
    )
    i, count = 0, len(options)
    while i < count:
        token = options[i]
        i += 1
        flag = _FLAG_OPTIONS.get(token)
        if flag is not None:
            setattr(ns, flag, True)
            continue
        if token.startswith("--") and "=" in token:
            token, value = token.split("=", 1)
        elif token in _VALUE_OPTIONS and i < count:
            value = options[i]
            i += 1
        else:
            return None
        dest = _VALUE_OPTIONS.get(token)
        if dest is None or not value or value.startswith("-"):
            return None
        if dest in ("input", "output"):
            ns.artifacts.append([dest, value, None])
        elif dest == "type":
            if not ns.artifacts or ns.artifacts[-1][2] is not None:
                return None  # argparse says what is wrong
            ns.artifacts[-1][2] = value
        elif dest in _REPEATED:
            getattr(ns, dest).append(value)
        else:
            setattr(ns, dest, value)
    return ns


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


_PYTHON = re.compile(r"^python[0-9.]*$")


class InterpreterProbe:
    """The version and ``sys.path`` of the Python a command runs under, when it is
    not cmfgit's own (``log-run -- python train.py`` from a project's venv while
    cmfgit lives elsewhere, e.g. pipx): the record's env must describe the
    command's environment. The interpreter is asked (``envinfo.PROBE``) while the
    command runs, so a long command pays nothing; it is asked every time because
    what ``python`` means can change with the directory (pyenv) or the venv."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    @classmethod
    def start(cls, executable: str) -> InterpreterProbe | None:
        if not _PYTHON.match(os.path.basename(executable)):
            found = _shebang_python(executable)  # ./train.py with '#!/usr/bin/env python3'
            if found is None:
                return None
            executable = found
        mine, theirs = os.path.abspath(sys.executable), os.path.abspath(executable)
        if os.path.dirname(mine) == os.path.dirname(theirs) and os.path.realpath(mine) == os.path.realpath(theirs):
            return None  # cmfgit's own interpreter: the record's env is already right
        try:
            proc = subprocess.Popen(
                [executable, "-c", envinfo.PROBE],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            return None
        return cls(proc)

    def result(self) -> tuple[str, tuple[str, ...]] | None:
        """(version, sys.path), or None when the interpreter did not answer (the
        record then describes cmfgit's own, as before)."""
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return None
        return envinfo.parse_probe(out) if self.proc.returncode == 0 else None


def _shebang_python(path: str) -> str | None:
    """The Python interpreter a script's '#!' line names, if it names one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]  # env -S python3 -u
        found = which(words[0]) if words else None
    else:
        found = words[0] if words else None
    return found if found and _PYTHON.match(os.path.basename(found)) else None


def run_child(command: list[str]) -> int:
    """Run ``command`` with inherited stdio; forward signals; return its status.

    Ctrl-C on a terminal already reaches the child (same process group), so
    only signals sent to cmfgit itself (``kill``) are forwarded; the kernel's
    si_code tells the two apart.
    """
    waited = {*_FORWARDED, signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    try:
        try:
            proc = subprocess.Popen(command, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, old_mask))
        except FileNotFoundError:
            raise CommandNotFound(command[0]) from None
        except PermissionError:
            raise CmfgitError(f"permission denied: {command[0]}") from None
        while proc.poll() is None:
            info = signal.sigtimedwait(waited, 1.0)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_signo == signal.SIGINT and info.si_code == _SI_KERNEL:
                continue  # typed on the terminal: the child got it too
            try:
                proc.send_signal(info.si_signo)
            except ProcessLookupError:
                pass
        code = proc.returncode
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return 128 - code if code < 0 else code


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def main(argv: list[str]) -> int:
    options, command = _split_command(argv)
    args: Any = fast_options(options)
    if args is None:
        # Help, a mistake, or an unusual form: click reads it as it reads every
        # other command (its help and errors, "did you mean"), then argparse,
        # which keeps -i/-o/--type in order. Only here are typer and click imported.
        from cmfgit.cli import check_command_line

        if not check_command_line("log-run", options):  # what follows '--' is COMMAND's
            return 0
        args = build_parser().parse_args(options)
    if args.command:
        if command:
            raise UsageError(f"unexpected argument '{args.command[0]}' before '--'")
        command = args.command
    if not command:
        raise UsageError("missing COMMAND: cmfgit log-run [OPTIONS] -- COMMAND [ARGS...]")

    cwd = Path.cwd()
    repo = open_repo(cwd)
    params: dict[str, Any] = {}
    for spec in args.params_file:
        params.update(read_params_file(spec, cwd))
    params.update(parse_param(p) for p in args.param)
    canonical.check_data(params, "params")
    executable = which(command[0])
    if executable is None:
        raise CommandNotFound(command[0])

    config = load_config(repo)
    rec = Recorder(
        repo,
        pipeline=args.pipeline,
        stage=args.stage or config.stage or infer_stage(command),
        execution_type=args.execution_type,
        params=params,
        command=command,
        cwd=cwd,
        config=config,
        executable=executable,
    )
    # Everything that can be refused is checked before COMMAND runs.
    outputs = [a for a in args.artifacts if a[0] == "output"]
    for direction, path, art_type in args.artifacts:
        if direction == "input":
            rec.add_input(path, art_type)
    for _, path, art_type in outputs:
        rec.declare_output(path, art_type)
    metrics_paths = [cwd / m for m in args.metrics_file]
    rec.start()

    probe = InterpreterProbe.start(executable)
    code = run_child(command)
    if probe is not None:
        rec.interpreter = probe.result()

    for shown, path in zip(args.metrics_file, metrics_paths):
        _read_metrics(rec, shown, path)
    rid = rec.finish(code, None if code == 0 else f"exit code {code}")
    for warning in rec.warnings:
        _say(False, f"cmfgit: warning: {warning}")
    _say(args.quiet, f"cmfgit: recorded {rid[:12]} ({rec.pipeline}/{rec.stage}, exit {code})")
    if args.commit:
        _commit(rec, rid, args.quiet)
    return code


def _read_metrics(rec: Recorder, shown: str, path: Path) -> None:
    try:
        doc = read_structured(path, shown)
    except CmfgitError as exc:
        rec.warnings.append(f"metrics not read: {exc}")
        return
    if not isinstance(doc, dict):
        rec.warnings.append(f"metrics not read: {shown} is not a mapping of names to numbers")
        return
    rec.add_metrics(doc, shown)
    try:
        rel = rec.repo.relpath(path)
    except PathError:
        return  # metrics from outside the repository are kept, the file is not an artifact
    if all(a.path != rel for a in rec.outputs):
        rec.declare_output(path, "metrics")


def _commit(rec: Recorder, rid: str, quiet: bool) -> None:
    from cmfgit.commit import commit_metadata
    from cmfgit.store import Store

    path = Store(rec.repo.objects_dir).loose_path(rid)
    rel = path.relative_to(rec.repo.root).as_posix()
    try:
        commit = commit_metadata(rec.repo, f"cmfgit: record {rid[:12]} {rec.pipeline}/{rec.stage}", [rel])
    except CmfgitError as exc:
        print(f"cmfgit: warning: not committed: {exc}", file=sys.stderr)
        return
    if commit:
        _say(quiet, f"cmfgit: committed {commit[:12]}")
    _maybe_gc(rec)


def _maybe_gc(rec: Recorder) -> None:
    """Past gc.threshold loose records, pack them (the packs are committed
    with the next commit or push). Only after --commit: runs stay cheap."""
    from cmfgit.gc import maybe_gc

    try:
        maybe_gc(rec.repo, rec.config)
    except CmfgitError as exc:
        print(f"cmfgit: warning: gc: {exc}", file=sys.stderr)
