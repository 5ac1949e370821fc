"""``mosu audit events`` and ``mosu audit report dataset|user|grants|denials``: the audit log's list and
reports from the command line, on the server (the local operator's rights, as ``mosu user add``).

They call the same actions as the API (:mod:`catalog.actions.audit`) and print the answer: JSON
(the action's result), or the rows as CSV or JSON lines (``--format``), to standard output or a
file (``--output``). :func:`add_commands` puts them on the ``mosu audit`` group, which also holds
``verify``, ``checkpoint`` and the export.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

FORMAT = click.option("--format", "fmt", type=click.Choice(["json", "csv", "jsonl"]), default="json",
                      show_default=True, help="JSON (the action's answer), or the rows as CSV or JSON lines.")
OUTPUT = click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="Write to this file instead of standard output.")
SINCE = click.option("--since", default=None, help="From this ISO 8601 date or time (inclusive; UTC unless given).")
UNTIL = click.option("--until", default=None, help="Up to this ISO 8601 date or time (exclusive).")


def _data_dir_option() -> Callable[[Any], Any]:
    return click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Data directory (default ./.mosu, or MOSU_DATA_DIR).")


def run(action: str, params: dict[str, Any], fmt: str, output: Path | None, data_dir: Path | None) -> None:
    """Call ``action`` as the site and write its answer; a refused call is a one-line error, exit 1."""
    from catalog.access.context import Actor, Context
    from catalog.actions import call
    from catalog.core.errors import MosuError
    from catalog.core.settings import Settings
    from catalog.platform import Platform

    platform = Platform.open(Settings.from_env(data_dir=data_dir))
    try:
        ctx = Context(platform=platform, actor=Actor.site())
        result = call(ctx, action, {k: v for k, v in {**params, "format": fmt}.items() if v is not None and v != []})
    except MosuError as exc:
        click.echo(f"mosu: error: {exc.message}", err=True)
        sys.exit(1)
    finally:
        platform.close()
    body = (json.dumps(result, indent=2, ensure_ascii=False) + "\n").encode() if fmt == "json" else \
        b"".join(result.chunks)
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        output.write_bytes(body)
        click.echo(f"wrote {output}", err=True)


def add_commands(audit: click.Group) -> None:
    """Add ``events`` and the ``report`` group to ``mosu audit``."""

    @audit.command("events")
    @click.option("--dataset", default=None, help="Dataset name or id.")
    @click.option("--resource", default=None, help="Resource id.")
    @click.option("--user", default=None, help="User name or id (the actor).")
    @click.option("--organization", default=None, help="Organization name or id.")
    @click.option("--event", multiple=True, help="Event name (repeat for several).")
    @click.option("--outcome", type=click.Choice(["ok", "refused", "failed"]), default=None)
    @SINCE
    @UNTIL
    @click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
    @click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
    @FORMAT
    @OUTPUT
    @_data_dir_option()
    def events(fmt: str, output: Path | None, data_dir: Path | None, event: tuple[str, ...], **filters: Any) -> None:
        """List audit events, newest first (audit_event_list)."""
        run("audit_event_list", {**filters, "event": list(event)}, fmt, output, data_dir)

    @audit.group("report")
    def report() -> None:
        """Reports for compliance officers: a dataset's readers, a user's reads, grants, refusals."""

    @report.command("dataset")
    @click.argument("dataset")
    @SINCE
    @UNTIL
    @FORMAT
    @OUTPUT
    @_data_dir_option()
    def dataset(dataset: str, since: str | None, until: str | None, fmt: str, output: Path | None,
                data_dir: Path | None) -> None:
        """Who read DATASET (name or id), how often, how many rows, under which grants (audit_report_dataset)."""
        run("audit_report_dataset", {"id": dataset, "since": since, "until": until}, fmt, output, data_dir)

    @report.command("user")
    @click.argument("user")
    @SINCE
    @UNTIL
    @FORMAT
    @OUTPUT
    @_data_dir_option()
    def user(user: str, since: str | None, until: str | None, fmt: str, output: Path | None,
             data_dir: Path | None) -> None:
        """Everything USER (name or id) read, and was refused (audit_report_user)."""
        run("audit_report_user", {"id": user, "since": since, "until": until}, fmt, output, data_dir)

    @report.command("grants")
    @click.option("--state", multiple=True, type=click.Choice(["active", "expiring", "expired", "revoked"]),
                  help="Only grants in this state (repeat for several).")
    @click.option("--days", type=click.IntRange(0, 3650), default=30, show_default=True,
                  help="'expiring' means ending within this many days.")
    @click.option("--dataset", default=None, help="Dataset name or id.")
    @click.option("--organization", default=None, help="The datasets' organization.")
    @click.option("--user", default=None, help="The grantee (a user).")
    @FORMAT
    @OUTPUT
    @_data_dir_option()
    def grants(state: tuple[str, ...], fmt: str, output: Path | None, data_dir: Path | None, **params: Any) -> None:
        """Grants by state, with accesses under them and attempts after their end (audit_report_grants)."""
        run("audit_report_grants", {**params, "state": list(state)}, fmt, output, data_dir)

    @report.command("denials")
    @click.option("--dataset", default=None, help="Dataset name or id.")
    @click.option("--user", default=None, help="User name or id.")
    @click.option("--organization", default=None, help="Organization name or id.")
    @click.option("--event", multiple=True, help="Event name (repeat for several).")
    @SINCE
    @UNTIL
    @FORMAT
    @OUTPUT
    @_data_dir_option()
    def denials(fmt: str, output: Path | None, data_dir: Path | None, event: tuple[str, ...], **params: Any) -> None:
        """Refused calls by caller, dataset and event (audit_report_denials)."""
        run("audit_report_denials", {**params, "event": list(event)}, fmt, output, data_dir)
