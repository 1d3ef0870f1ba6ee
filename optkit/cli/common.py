"""What every command shares: the app, the consoles, the exit-code exception, the
options that several commands take, and reading instance files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from optkit.io import InputError, read_instance

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Optimal plans, proven bounds and graded heuristics for LLM inference allocation.",
)
out = Console()
err = Console(stderr=True)


class BadInput(Exception):
    """Raised inside a command for exit code 2."""


def fail(msg: str) -> NoReturn:
    raise BadInput(msg)


FilesArg = Annotated[
    list[Path], typer.Argument(help="Instance files (JSON, BPP or P||Cmax format).")
]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="json, bpp or pcmax (default: detect).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON Lines instead of a table.")]


def read_all(files: list[Path], fmt: str | None) -> list[Any]:
    """Read every file before any work: one bad file stops the run with exit 2."""
    insts, errors = [], []
    for f in files:
        try:
            insts.append(read_instance(f, fmt))
        except InputError as e:
            errors.append(str(e))
    if errors:
        fail("\n".join(errors))
    return insts


def fmt_num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)
