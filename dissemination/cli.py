"""The `dissemination` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="Campaigns as code: check, plan, render, publish and report on programme dissemination.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class State:
    root: Path = Path(".")


@app.callback()
def main_options(
    root: Annotated[
        Path,
        typer.Option("--root", envvar="DISSEMINATION_ROOT", help="Content root (campaigns/, knowledge/, ...).",
                     file_okay=False),
    ] = Path("."),
) -> None:
    State.root = root


def _print_problems(result) -> None:  # type: ignore[no-untyped-def]
    for problem in result.problems.errors:
        out.print(str(problem), markup=False)
    for problem in result.problems.warnings:
        out.print(str(problem), markup=False, style="yellow")


@app.command()
def check() -> None:
    """Validate every content file and every reference between them; list all problems at once."""
    from dissemination.check import run_check

    result = run_check(State.root)
    _print_problems(result)
    errors, warnings = len(result.problems.errors), len(result.problems.warnings)
    if errors:
        files = len({p.path for p in result.problems.errors})
        out.print(f"[bold red]{errors} error(s)[/] in {files} file(s), {warnings} warning(s)")
        raise typer.Exit(1)
    out.print(result.summary(), markup=False)
    out.print(f"[bold green]OK[/]: no errors, {warnings} warning(s)")


@app.command()
def preview(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the static preview site to.",
                                          file_okay=False)] = Path("preview"),
) -> None:
    """Render every planned post and newsletter into a static site (open DIR/index.html)."""
    from dissemination.check import run_check
    from dissemination.render.preview import build_preview

    result = run_check(State.root)
    if result.problems.errors:
        _print_problems(result)
        errors = len(result.problems.errors)
        out.print(f"[bold red]{errors} error(s)[/]: fix them first; nothing was written")
        raise typer.Exit(1)
    for problem in result.problems.warnings:
        out.print(str(problem), markup=False, style="yellow")
    summary = build_preview(result, out_dir)
    out.print(f"wrote {summary.posts} planned posts ({summary.newsletters} newsletters) to {summary.index}",
              markup=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug of ours, not a content error: say so, briefly
        if os.environ.get("DISSEMINATION_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print("this is a bug in dissemination; rerun with DISSEMINATION_DEBUG=1 for the traceback")
        sys.exit(3)
