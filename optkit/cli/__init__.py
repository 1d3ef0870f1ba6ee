"""The ``optkit`` command line: parses, calls the registry (``optkit.problems``) or the
cost model, prints rows that library objects build, and maps exceptions to exit codes
here, in one place.

Exit codes: 0 success (whatever the status), 2 bad input or a refusal (a message on
stderr naming the file and the field, or the limit and what to do), 1 internal error
(a bug), 130 interrupted.
"""

from __future__ import annotations

import sys

import typer

from optkit.cli import commands, costmodel, generate  # noqa: F401 (register the commands)
from optkit.cli.common import BadInput, app
from optkit.io import FieldError, InputError, Refused

__all__ = ["app", "main", "run"]


def run(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: sys.argv) and return the exit code;
    every exception is mapped here, and nothing else maps them."""
    try:
        code = app(args=argv, standalone_mode=False)  # an Exit in a command: its code
    except (BadInput, InputError, Refused, FieldError) as e:
        print(f"error: {e}", file=sys.stderr)  # plain: one line per problem, never wrapped
        return 2
    except typer.Exit as e:
        code = e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    except Exception as e:  # usage errors (unknown option, missing argument) are bad input too
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            return 2
        print(f"internal error: {e.__class__.__name__}: {e}", file=sys.stderr)
        return 1
    code = code if isinstance(code, int) else 0
    if code == 130:
        print("interrupted: the results written so far are complete", file=sys.stderr)
    return code


def main() -> None:
    """Console entry point with the exit-code contract."""
    sys.exit(run())
