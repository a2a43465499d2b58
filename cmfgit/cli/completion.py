"""``cmfgit completion SHELL``: the shell completion script (typer's, for cmfgit)."""

from __future__ import annotations

from typing import Annotated

import typer

from cmfgit.cli import app
from cmfgit.errors import UsageError

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CMFGIT_COMPLETE"  # click's name for it: _<PROG>_COMPLETE


@app.command()
def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish")],
) -> None:
    """Print the shell completion script (commands, options, values) for bash, zsh or fish.

    \b
    bash:  eval "$(cmfgit completion bash)"     (in ~/.bashrc)
    zsh:   eval "$(cmfgit completion zsh)"      (in ~/.zshrc, after compinit)
    fish:  cmfgit completion fish > ~/.config/fish/completions/cmfgit.fish
    """
    from typer._completion_shared import get_completion_script

    if shell not in SHELLS:
        raise UsageError(f"completion: '{shell}' is not one of {', '.join(SHELLS)}")
    print(get_completion_script(prog_name="cmfgit", complete_var=COMPLETE_VAR, shell=shell).strip())


def init_completion() -> None:
    """Register typer's completion classes (the scripts above speak their protocol)."""
    from typer._completion_classes import completion_init

    completion_init()
