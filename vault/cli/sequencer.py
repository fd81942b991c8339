"""``civicvault sequencer``: give pending events their ledger indices, apart from the servers.

Registered on the main group by ``vault.cli``. With ``CIVICVAULT_SEQUENCER=external``
the servers only wait for it; with the default (``server``) it may still run
beside them: whoever holds the sequencer lock sequences the next batch
(vault/ledger/sequencer.py, docs/ledger-format.md "Sequencing").
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from vault.core.config import Settings

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def register(
    cli: click.Group,
    home_option: Decorator,
    settings_of: Callable[[click.Context, Path | None], Settings],
) -> None:
    """Add ``sequencer`` to ``cli``; its libraries load when it runs, not now."""

    @cli.command("sequencer")
    @click.option("--once", is_flag=True, help="Sequence everything pending, then exit.")
    @click.option("--status", is_flag=True, help="Print the backlog (pending events, oldest age) and exit.")
    @click.option(
        "--interval-ms",
        type=click.IntRange(1, 60_000),
        default=5,
        show_default=True,
        help="How often to look for pending events when idle.",
    )
    @click.option("--json", "as_json", is_flag=True, help="With --once or --status: print JSON.")
    @home_option
    @click.pass_context
    def sequencer_command(
        ctx: click.Context, once: bool, status: bool, interval_ms: int, as_json: bool, home: Path | None
    ) -> None:
        """Give pending events their ledger indices: in batches, one sequencer at a time, until stopped."""
        from vault.ledger import ledger
        from vault.runtime import Vault

        vault = Vault.open(settings_of(ctx, home))
        try:
            if status:
                with vault.read_transaction() as session:
                    backlog = ledger.pending_backlog(session, now=datetime.now(UTC))
                    size = ledger.size(session)
                found = {
                    "tree_size": size,
                    "pending": backlog.pending,
                    "oldest_pending_seconds": backlog.oldest_seconds,
                }
                if as_json:
                    click.echo(json.dumps(found))
                else:
                    age = "" if backlog.oldest_seconds is None else f", the oldest for {backlog.oldest_seconds:.1f} s"
                    click.echo(f"ledger size {size}; {backlog.pending} event(s) pending{age}")
                return
            if once:
                done = vault.sequencer.drain()
                click.echo(json.dumps({"sequenced": done}) if as_json else f"sequenced {done} event(s)")
                return
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            click.echo(f"sequencing every {interval_ms} ms when idle; Ctrl-C stops", err=True)
            vault.sequencer.run(stop, interval=interval_ms / 1000)
        finally:
            vault.close()
