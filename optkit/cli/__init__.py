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

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point with the exit-code contract."""
    try:
        app(standalone_mode=False)
    except (BadInput, InputError, Refused) as e:
        print(f"error: {e}", file=sys.stderr)  # plain: one line per problem, never wrapped
        sys.exit(2)
    except FieldError as e:  # raised outside any file (an option's value)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # usage errors (unknown option, missing argument) are bad input too
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(2)
        print(f"internal error: {e.__class__.__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
