"""``civicvault issuer key|list|revoke|sign``: issuers' Ed25519 keys and the signatures of the records they issue.

``issuer key`` is an operator's command, like ``principal add``: it makes a
key pair, writes the private key (PKCS#8 PEM, mode 0600) to a file for the
issuer, and registers the public key for the principal directly through the
vault's services, with the same proof of possession the API asks for. With
``--no-register`` it registers nothing and prints the body of
``POST /api/v1/issuer-keys`` instead, for an issuer who registers with its own
token. ``issuer sign`` runs wherever the private key is: it prints the
``signature`` object of a record write, computed with the vault's own
canonical form (``vault.records.provenance.statement``), so the command line
and the server cannot disagree (docs/attestations.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from crypto.issuer import IssuerKey
    from vault.core.config import Settings
    from vault.runtime import Vault

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
MAX_CONTENT_FILE = 1024 * 1024


def _write_private(path: Path, pem: bytes) -> None:
    """Create ``path`` readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{path} exists already: choose another file for the new key.") from None
    except OSError as exc:
        raise click.ClickException(f"Cannot create {path} ({exc.strerror}).") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _read_key(path: Path) -> IssuerKey:
    from crypto.errors import KeyringError
    from crypto.issuer import IssuerKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"Cannot read {path} ({exc.strerror}).") from None
    try:
        return IssuerKey.from_pem(data)
    except KeyringError:
        raise click.ClickException(f"{path} is not an Ed25519 private key in PKCS#8 PEM.") from None


def _read_content(path: Path) -> bytes:
    """The content file's canonical bytes, as the vault seals and signs them (vault.core.content)."""
    from vault.core.content import encode_content

    try:
        if path.stat().st_size > MAX_CONTENT_FILE:
            raise click.ClickException(f"{path} is larger than a record's content may be.")
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.ClickException(f"Cannot read {path} ({exc.strerror}).") from None
    except (UnicodeDecodeError, ValueError):
        raise click.ClickException(f"{path} is not JSON.") from None
    return encode_content(content)


def register(
    cli: click.Group, home_option: Decorator, settings_of: Callable[[click.Context, Path | None], Settings]
) -> None:
    """Add ``issuer`` to ``cli``; its libraries load when a command runs."""

    def _open(ctx: click.Context, home: Path | None) -> Vault:
        from vault.runtime import Vault

        return Vault.open(settings_of(ctx, home))

    @cli.group()
    def issuer() -> None:
        """Issuers' signing keys (clinics, landlords, agencies) and record signatures."""

    @issuer.command("key")
    @click.option("--principal", "principal_id", required=True, help="The issuer's principal id (p-...).")
    @click.option(
        "--out",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Where to write the new private key (PKCS#8 PEM, mode 0600); never overwritten.",
    )
    @click.option(
        "--no-register",
        is_flag=True,
        help="Register nothing: print the body of POST /api/v1/issuer-keys for the issuer to send with its token.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the registered key as JSON.")
    @home_option
    @click.pass_context
    def issuer_key(
        ctx: click.Context, principal_id: str, out: Path, no_register: bool, as_json: bool, home: Path | None
    ) -> None:
        """Make a key pair, write the private key to --out, and register the public key for the principal.

        Run it again for a new key (rotation): the old key stays valid for what
        it signed, and signs new records until revoked (civicvault issuer revoke).
        """
        from crypto.issuer import IssuerKey

        if not _id_shaped(principal_id):
            raise click.ClickException(f"{principal_id!r} is not a principal id.")
        key = IssuerKey.generate()
        proof = key.prove_possession(principal_id)
        if no_register:
            _write_private(out, key.to_pem())
            body = {"public_key": key.public_key.hex(), "proof_of_possession": proof.hex()}
            click.echo(json.dumps(body))
            click.echo(f"Private key in {out} (mode 0600). POST the body above to /api/v1/issuer-keys.", err=True)
            return
        from vault.core.caller import Caller
        from vault.core.clock import rfc3339, utcnow
        from vault.identity import issuer_keys, principals

        vault = _open(ctx, home)
        try:
            with vault.transaction() as session:
                holder = principals.get_principal(session, vault.keys, principal_id)
                # The file first: a key registered without its private key anywhere would be of no use.
                _write_private(out, key.to_pem())
                try:
                    view = issuer_keys.register_key(
                        session,
                        vault.keys,
                        Caller(id=holder.id, role=holder.role),
                        public_key=key.public_key,
                        proof=proof,
                        now=utcnow(),
                        by_operator=True,
                    )
                except BaseException:
                    out.unlink(missing_ok=True)
                    raise
        finally:
            vault.close()
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "key_id": view.id,
                        "issuer_id": view.principal_id,
                        "public_key": view.public_key.hex(),
                        "private_key_file": str(out),
                        "created_at": rfc3339(view.created_at),
                    }
                )
            )
            return
        click.echo(f"key id:      {view.id}\nissuer:      {view.principal_id} ({view.principal_name})")
        click.echo(f"public key:  {view.public_key.hex()}\nprivate key: {out} (mode 0600; give it to the issuer only)")

    @issuer.command("list")
    @click.option("--principal", "principal_id", required=True, help="The issuer's principal id (p-...).")
    @click.option("--json", "as_json", is_flag=True)
    @home_option
    @click.pass_context
    def issuer_list(ctx: click.Context, principal_id: str, as_json: bool, home: Path | None) -> None:
        """An issuer's keys, newest first, revoked ones included."""
        from vault.core.caller import Caller
        from vault.core.clock import rfc3339
        from vault.identity import issuer_keys, principals

        vault = _open(ctx, home)
        try:
            with vault.read_transaction() as session:
                holder = principals.get_principal(session, vault.keys, principal_id)
                views = issuer_keys.list_keys(session, vault.keys, Caller(id=holder.id, role=holder.role))
        finally:
            vault.close()
        rows = [
            {
                "key_id": v.id,
                "public_key": v.public_key.hex(),
                "status": v.status,
                "created_at": rfc3339(v.created_at),
                "revoked_at": None if v.revoked_at is None else rfc3339(v.revoked_at),
            }
            for v in views
        ]
        if as_json:
            click.echo(json.dumps(rows))
            return
        for row in rows:
            revoked = f"  revoked {row['revoked_at']}" if row["revoked_at"] else ""
            click.echo(f"{row['key_id']}  {row['status']:<8} {row['created_at']}{revoked}  {row['public_key']}")

    @issuer.command("revoke")
    @click.argument("key_id")
    @home_option
    @click.pass_context
    def issuer_revoke(ctx: click.Context, key_id: str, home: Path | None) -> None:
        """Revoke an issuer key (a lost or stolen one): it signs nothing new; what it signed still shows it."""
        from vault.core.clock import rfc3339, utcnow
        from vault.identity import issuer_keys

        vault = _open(ctx, home)
        try:
            with vault.transaction() as session:
                view = issuer_keys.revoke_key(session, vault.keys, None, key_id, now=utcnow())
        finally:
            vault.close()
        assert view.revoked_at is not None
        click.echo(f"revoked {view.id} of {view.principal_id} at {rfc3339(view.revoked_at)}")

    @issuer.command("sign")
    @click.option(
        "--key",
        "key_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The issuer's private key (PKCS#8 PEM).",
    )
    @click.option("--subject", "subject_id", required=True, help="The resident the record is about (p-...).")
    @click.option("--category", required=True, help="The record's category, e.g. tenancy.income.")
    @click.option(
        "--content",
        "content_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The record's content: a file holding the JSON object the request will send.",
    )
    @click.option("--issued-at", default=None, help="YYYY-MM-DDTHH:MM:SSZ (default: now).")
    @click.option("--key-id", default=None, help="The key's id (default: looked up in the vault by its public key).")
    @click.option("--issuer", "issuer_id", default=None, help="The issuer's id (default: the key's holder).")
    @home_option
    @click.pass_context
    def issuer_sign(
        ctx: click.Context,
        key_file: Path,
        subject_id: str,
        category: str,
        content_file: Path,
        issued_at: str | None,
        key_id: str | None,
        issuer_id: str | None,
        home: Path | None,
    ) -> None:
        """Print the `signature` object ({key_id, issued_at, value}) for a record write.

        Add it to the body of POST /api/v1/subjects/{id}/records (or PUT
        /api/v1/records/{id}) with the same subject, category and content. With
        --key-id and --issuer it needs no vault: it runs wherever the key is.
        """
        from crypto.issuer import format_issued_at, parse_issued_at, sign_record
        from vault.core.clock import utcnow
        from vault.core.vocabulary import check_category
        from vault.records.provenance import statement

        key = _read_key(key_file)
        check_category(category)
        body = _read_content(content_file)
        if issued_at is None:
            issued_at = format_issued_at(utcnow())
        else:
            try:
                parse_issued_at(issued_at)
            except ValueError:
                raise click.ClickException("--issued-at must be UTC to the second: YYYY-MM-DDTHH:MM:SSZ.") from None
        if key_id is None or issuer_id is None:
            from vault.identity import issuer_keys

            vault = _open(ctx, home)
            try:
                with vault.read_transaction() as session:
                    found = issuer_keys.find_by_public_key(session, vault.keys, key.public_key)
            finally:
                vault.close()
            if found is None:
                raise click.ClickException("This key is not registered in the vault (civicvault issuer key).")
            if key_id is not None and key_id != found.id:
                raise click.ClickException(f"This private key is registered as {found.id}, not {key_id}.")
            key_id, issuer_id = found.id, issuer_id or found.principal_id
        try:
            signed = statement(
                subject_id=subject_id,
                category=category,
                body=body,
                issued_at=issued_at,
                issuer_id=issuer_id,
                key_id=key_id,
            )
            value = sign_record(key, signed)
        except ValueError:
            raise click.ClickException("--subject, --issuer and --key-id must be ids (p-..., k-...).") from None
        click.echo(json.dumps({"key_id": key_id, "issued_at": issued_at, "value": value.hex()}))


def _id_shaped(value: str) -> bool:
    from vault.core.ids import is_well_formed_id

    return is_well_formed_id(value)
