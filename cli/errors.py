"""Exit codes and the one way every ``autopilot`` command fails.

Scripts and CI branch on exit codes, so each kind of failure has its own, documented in
``docs/cli.md``. A command raises :class:`CliError` with a sentence the user can act on;
:func:`friendly` prints it as one red line (plus a hint) and exits with its code. Anything
unexpected is printed the same way, never as a traceback, unless ``AUTOPILOT_DEBUG=1``.
The process itself ends through :func:`leave`, so that its exit code is always one of these.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from enum import IntEnum
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Set to see tracebacks instead of one-line errors.
DEBUG_ENV = "AUTOPILOT_DEBUG"


class Exit(IntEnum):
    """Exit codes of every ``autopilot`` command."""

    OK = 0
    #: A command was refused, a watched rollout failed, or something unexpected went wrong.
    FAILED = 1
    #: Invalid input: a usage error, an invalid spec (the field is named), a bad name.
    INVALID = 2
    #: ``watch``: the machine settled in a state that waits (e.g. for a human).
    WAITING = 3
    #: The workflow (or Deployment) named does not exist.
    UNKNOWN_TARGET = 4
    #: No Temporal server reachable.
    NO_TEMPORAL = 5
    #: Kubernetes is not configured or not reachable.
    NO_KUBERNETES = 6
    #: Interrupted with Ctrl-C.
    INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can act on: what went wrong, and what to do about it."""

    def __init__(self, message: str, code: Exit = Exit.FAILED, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


def error_console() -> Console:
    """The console errors go to (stderr, so ``-o json`` output stays parseable)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def report(error: CliError) -> None:
    """Print ``error`` the way every command does."""
    console = error_console()
    console.print(f"[bold red]error:[/] {error.message}", markup=True)
    if error.hint:
        console.print(f"[dim]hint:[/] {error.hint}")


def friendly(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn expected and unexpected failures into one line and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except CliError as error:
            report(error)
            raise typer.Exit(int(error.code)) from None
        except KeyboardInterrupt:
            error_console().print("[yellow]interrupted[/]")
            raise typer.Exit(int(Exit.INTERRUPTED)) from None
        except BrokenPipeError:
            # The reader went away (e.g. '| head'): stop quietly, and say the output was cut
            # (exit 1), as Rich's tables and Typer's help do for the same reason.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(int(Exit.FAILED)) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            report(
                CliError(
                    f"{type(error).__name__}: {error}",
                    hint=f"this looks like a bug; {DEBUG_ENV}=1 shows the traceback",
                )
            )
            raise typer.Exit(int(Exit.FAILED)) from None

    return wrapper


def run(coroutine: Coroutine[Any, Any, _R]) -> _R:
    """Run one command's async body to completion (commands are sync for Typer)."""
    import asyncio  # here, not at the top: ``--help`` and ``describe`` never need it

    return asyncio.run(coroutine)


def documented(code: object) -> Exit:
    """The documented exit code for what a command ended with (``SystemExit.code``).

    ``None`` is success, as for Python; anything not in :class:`Exit` (a string, a stray
    number) is reported as a failure, so scripts only ever see the codes of ``docs/cli.md``.
    """
    if code is None:
        return Exit.OK
    if not isinstance(code, int):
        print(code, file=sys.stderr)  # what Python prints for ``sys.exit("message")``
        return Exit.FAILED
    try:
        return Exit(code)
    except ValueError:
        return Exit.FAILED


def leave(code: Exit) -> NoReturn:
    """End the process with ``code`` once the command's own cleanup has run.

    Why not a plain ``sys.exit``: the Temporal SDK's core keeps Rust threads that call into
    Python; when one does while the interpreter tears itself down, the process aborts
    (``Fatal Python error: PyGILState_Release``, exit 134 or 139) after the command printed
    its result, in a few percent of runs (temporalio/sdk-python#300, open). So everything
    Python does before its teardown is done here, in its order (threading's exit hooks and
    the join of non-daemon threads, then ``atexit`` callbacks such as logging's flush), the
    output is flushed, and the process ends without the teardown. Commands that start
    processes (``worker``, ``demo``) stop them in their own ``finally`` blocks, before this.
    """
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter calls first
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # The reader went away ('| head') or the stream is closed: nothing is left to keep.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(int(code))
