"""``civicvault keys rotate|retire|status`` and ``civicvault erase``: the operator's key commands.

Registered on the main group by ``vault.cli``; docs/operations.md is the
operator's guide to them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from vault.core.config import Settings
    from vault.keys.key_rotation import RetireReport
    from vault.runtime import Vault

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _open(settings: Settings) -> Vault:
    from vault.runtime import Vault

    return Vault.open(settings)


def register(
    cli: click.Group,
    home_option: Decorator,
    settings_of: Callable[[click.Context, Path | None], Settings],
) -> None:
    """Add ``keys`` and ``erase`` to ``cli``; their libraries load when they run, not now."""

    @cli.group()
    def keys() -> None:
        """Master key rotation and retirement; key status."""

    @keys.command("status")
    @click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
    @home_option
    @click.pass_context
    def keys_status(ctx: click.Context, as_json: bool, home: Path | None) -> None:
        """Master key versions and what each one still protects."""
        from vault.keys.key_status import status as key_status

        vault = _open(settings_of(ctx, home))
        try:
            status = key_status(vault).as_dict()
        finally:
            vault.close()
        if as_json:
            click.echo(json.dumps(status))
            return
        click.echo(f"master keyring: {status['source']}, current version {status['current_version']}")
        for row in status["versions"]:
            mark = "" if row["in_keyring"] else "  MISSING FROM THE KEYRING"
            click.echo(
                f"  version {row['version']}: {row['subject_keys']} subject key(s), {row['names']} name(s), "
                f"{row['sign_in_credentials']} sign-in credential(s){mark}"
            )
        if status["unbound_subject_keys"] or status["unbound_resident_names"]:
            click.echo(
                f"  not yet bound to a subject secret: {status['unbound_subject_keys']} subject key(s), "
                f"{status['unbound_resident_names']} resident name(s); 'civicvault keys rotate' binds them"
            )
        click.echo(
            f"subject keys: {status['subject_key_versions']} version(s), most used {status['subject_key_most_uses']} "
            f"of {status['subject_key_max_uses']} seals; {status['subject_secrets']} subject secret(s)"
        )
        if status["residents_without_secret"]:
            click.echo(
                "residents whose secret is gone (erased after this database copy was taken, or an interrupted "
                "erasure); finish them with 'civicvault replay-erasures':"
            )
            for subject_id in status["residents_without_secret"]:
                click.echo(f"  {subject_id}")

    @keys.command("rotate")
    @click.option(
        "--retire", "then_retire", is_flag=True, help="Retire the old versions at the end if nothing uses them."
    )
    @home_option
    @click.pass_context
    def keys_rotate(ctx: click.Context, then_retire: bool, home: Path | None) -> None:
        """New master key version; re-wrap subject keys, names and sign-in credentials in batches (resumable)."""
        from vault.keys.key_rotation import plan, retire, rotate, total_work

        vault = _open(settings_of(ctx, home))
        try:
            target, new = plan(vault)
            label = f"re-wrapping to new version {target}" if new else f"resuming: re-wrapping to version {target}"
            with click.progressbar(
                length=total_work(vault, target), label=label, file=sys.stderr, show_pos=True
            ) as bar:
                report = rotate(vault, progress=bar.update)
            click.echo(
                f"master key version {report.version}{' (new)' if report.new_version else ' (resumed)'}: "
                f"{report.subject_keys} subject key(s) re-wrapped, {report.names} name(s) re-sealed"
            )
            if report.skipped:
                click.echo(
                    f"{report.skipped} subject key(s) belong to residents whose secret is gone (an interrupted "
                    "erasure?): "
                    "run 'civicvault replay-erasures' for them.",
                    err=True,
                )
            if report.remaining:
                raise click.ClickException(
                    f"{report.remaining} item(s) are still under an old version; run 'civicvault keys rotate' again."
                )
            if then_retire:
                _print_retired(retire(vault), vault.keys.from_key_file)
            else:
                click.echo("Old versions stay in the keyring until 'civicvault keys retire' (see docs/operations.md).")
        finally:
            vault.close()

    @keys.command("retire")
    @home_option
    @click.pass_context
    def keys_retire(ctx: click.Context, home: Path | None) -> None:
        """Remove old master key versions that nothing uses any more."""
        from vault.keys.key_rotation import retire

        vault = _open(settings_of(ctx, home))
        try:
            _print_retired(retire(vault), vault.keys.from_key_file)
        finally:
            vault.close()

    def _print_retired(report: RetireReport, from_file: bool) -> None:
        if report.retired and from_file:
            click.echo(
                f"retired master key version(s) {list(report.retired)}; the key file now ends at version "
                f"{report.current}"
            )
        elif report.retired:
            click.echo(
                f"nothing uses master key version(s) {list(report.retired)} any more: remove them from "
                "CIVICVAULT_MASTER_KEY on every host"
            )
        else:
            click.echo("no old master key version to retire")
        if report.in_use:
            raise click.ClickException(
                f"version(s) {list(report.in_use)} are still in use and were kept: run 'civicvault keys rotate' first."
            )

    @cli.command("erase")
    @click.option("--subject", "subject_id", required=True, help="The resident's id")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @home_option
    @click.pass_context
    def erase_command(ctx: click.Context, subject_id: str, yes: bool, home: Path | None) -> None:
        """Erase a resident by crypto-shredding (on a verified Art. 17 request)."""
        from vault.core.clock import rfc3339
        from vault.rights.erasure import erase

        vault = _open(settings_of(ctx, home))
        try:
            if not yes:
                click.confirm(
                    f"Erase resident {subject_id} for good? Nothing of theirs can be recovered afterwards", abort=True
                )
            receipt = erase(vault, None, subject_id)
        finally:
            vault.close()
        body = asdict(receipt)
        body["erased_at"] = rfc3339(receipt.erased_at)
        click.echo(json.dumps(body, indent=2))
        click.echo("Give this receipt to the resident: its nonce is stored nowhere else.", err=True)
