"""``civicvault attest``: the vault's attestation key, and offline verification of an attestation.

``attest key --show`` prints the vault's did:key. ``attest verify FILE``
checks a credential (or a saved API answer holding one under
``credential``) as docs/attestations.md ("Verifying") says: the proof by
the key, the issuer being the key, the validity window, and the requester
when ``--requester`` is given. With ``--key`` it needs nothing but the file:
no database, no home. It prints one line and exits 0, or one sentence and
exits 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from vault.core.config import Settings

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
MAX_FILE_BYTES = 1024 * 1024


def _moment(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.ClickException(
            f"--at must be an RFC 3339 time such as 2026-12-01T10:00:00Z, not {value!r}."
        ) from None
    if moment.tzinfo is None:
        raise click.ClickException("--at needs a time zone (Z or +01:00).")
    return moment.astimezone(UTC)


def _credential(path: Path) -> Any:
    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            raw = path.read_bytes()
    except OSError as error:
        raise click.ClickException(f"Cannot read {path}: {error.strerror}.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise click.ClickException(f"{path} is larger than an attestation can be.")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise click.ClickException(f"{path} is not JSON.") from None
    if isinstance(document, dict) and "proof" not in document and isinstance(document.get("credential"), dict):
        return document["credential"]  # an answer of POST /api/v1/subjects/{id}/attestations, saved as is
    return document


def register(
    cli: click.Group, home_option: Decorator, settings_of: Callable[[click.Context, Path | None], Settings]
) -> None:
    """Add ``attest`` to ``cli``; its libraries load when it runs, not now."""

    @cli.group("attest")
    def attest() -> None:
        """The vault's attestation key; verify an attestation offline."""

    @attest.command("key")
    @click.option("--show", is_flag=True, required=True, help="Print the vault's attestation key as a did:key.")
    @home_option
    @click.pass_context
    def key_command(ctx: click.Context, show: bool, home: Path | None) -> None:
        """Print the did:key that signs this vault's attestations."""
        from vault.keys import attestation_key

        click.echo(attestation_key.read(settings_of(ctx, home).attestation_key_file).did)

    @attest.command("verify")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
    @click.option("--key", "key", default=None, help="The vault's did:key (default: this home's attestation key).")
    @click.option("--requester", default=None, help="Check that it was issued to this principal id.")
    @click.option("--at", "at", default=None, help="Check validity at this RFC 3339 time (default: now).")
    @home_option
    @click.pass_context
    def verify_command(
        ctx: click.Context, file: Path, key: str | None, requester: str | None, at: str | None, home: Path | None
    ) -> None:
        """Check an attestation's proof, issuer, validity and requester, offline."""
        from vault.attestations.credential import InvalidAttestation, verify

        moment = _moment(at)
        credential = _credential(file)
        if key is None:
            from vault.keys import attestation_key

            key = attestation_key.read(settings_of(ctx, home).attestation_key_file).did
        try:
            claims = verify(credential, key=key, at=moment, requester=requester)
        except InvalidAttestation as error:
            raise click.ClickException(f"Not a valid attestation: {error}.") from None
        click.echo(f"valid: {claims.line()}")
