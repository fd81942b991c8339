"""The ``civicvault`` command line.

Every command takes ``--home DIR``; user mistakes end with one sentence on
stderr and a non-zero exit, never a traceback.

This module imports click and nothing heavy: each command imports the
services it needs (SQLAlchemy, py-ecc, web3, gunicorn) when it runs, so that
``civicvault --help`` or a mistyped option answers at once.
tests/vault/cli/test_startup.py keeps it so.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vault.cli.anchor import register as _register_anchor
from vault.cli.attest import register as _register_attest
from vault.cli.credentials import read_password
from vault.cli.credentials import register as _register_credentials
from vault.cli.issuer import register as _register_issuer
from vault.cli.keys import register as _register_key_commands
from vault.cli.sequencer import register as _register_sequencer
from vault.core.errors import VaultError
from vault.core.vocabulary import ROLES

if TYPE_CHECKING:
    from vault.core.config import Settings
    from vault.runtime import Vault

DEMO_TOKENS_FILE = "demo-tokens.json"

F = TypeVar("F", bound=Callable[..., Any])


def _database_failure(exc: Exception) -> str | None:
    """One sentence for a database error, None for anything else.

    A SQLAlchemy error exists only once SQLAlchemy is imported: other
    failures are told apart without importing it.
    """
    if "sqlalchemy.exc" not in sys.modules:
        return None
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from vault.storage.db import describe_db_error

    if isinstance(exc, OperationalError):
        return f"The database failed: {describe_db_error(exc)}."
    if isinstance(exc, SQLAlchemyError):
        return f"The database refused the operation ({type(exc).__name__})."
    return None


class VaultGroup(click.Group):
    """Turns expected failures into one clear sentence and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VaultError as exc:
            raise click.ClickException(exc.detail) from None
        except Exception as exc:
            sentence = _database_failure(exc)
            if sentence is None:
                raise
            raise click.ClickException(sentence) from None


def _home_option(func: F) -> F:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        expose_value=True,
        help="Data home (default: $CIVICVAULT_HOME or ./civicvault-data).",
    )(func)


def _settings(ctx: click.Context, home: Path | None) -> Settings:
    from vault.core.config import Settings

    return Settings.from_env(home or ctx.find_root().params.get("home"))


def _open(ctx: click.Context, home: Path | None) -> Vault:
    from vault.runtime import Vault

    return Vault.open(_settings(ctx, home))


@click.group(cls=VaultGroup)
@_home_option
@click.version_option(package_name="civicvault")
def cli(home: Path | None) -> None:
    """CivicVault: residents' encrypted records, consent and access trail."""


@cli.command()
@_home_option
@click.pass_context
def init(ctx: click.Context, home: Path | None) -> None:
    """Create the data home, master key and schema (idempotent)."""
    from vault.runtime import init_home

    settings = _settings(ctx, home)
    report = init_home(settings)
    click.echo(f"home: {settings.home}{' (created)' if report.home_created else ''}")
    if report.ledger_key_created:
        click.echo(f"ledger key: {settings.ledger_key_file} (created, mode 0600; signs checkpoints)")
    if report.attestation_key_created:
        click.echo(f"attestation key: {settings.attestation_key_file} (created, mode 0600; signs attestations)")
    if report.key_created:
        click.echo(f"master key: {settings.key_file} (created, mode 0600; back it up: without it nothing can be read)")
    for note in report.notes:
        click.echo(note)
    click.echo("schema: up to date")


@cli.group()
def principal() -> None:
    """Create and list principals; manage their tokens, logins, passwords and invitations."""


@principal.command("add")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", required=True)
@click.option("--login", default=None, help="What the person signs in to the pages with (often an e-mail address).")
@click.option("--password-stdin", is_flag=True, help="Read a password for --login from standard input (one line).")
@click.option("--json", "as_json", is_flag=True, help="Print {id, role, name, token} (and login) as JSON.")
@_home_option
@click.pass_context
def principal_add(
    ctx: click.Context,
    role: str,
    name: str,
    login: str | None,
    password_stdin: bool,
    as_json: bool,
    home: Path | None,
) -> None:
    """Create a principal and print its token (shown only once)."""
    from vault.core.clock import utcnow
    from vault.identity import principals

    if password_stdin and login is None:
        raise click.UsageError("--password-stdin needs --login: a password is for signing in with a login.")
    password = read_password(True) if password_stdin else None
    vault = _open(ctx, home)
    with vault.transaction() as session:
        info, token = principals.create_principal(session, vault.keys, role=role, name=name, now=utcnow())
        if login is not None:
            from vault.identity import logins, passwords

            login = logins.set_login(session, vault.keys, info.id, login)
            if password is not None:
                passwords.set_password(session, vault.keys, info.id, password, now=utcnow())
    if as_json:
        body = {"id": info.id, "role": info.role, "name": info.name, "token": token}
        click.echo(json.dumps(body if login is None else {**body, "login": login}))
    else:
        click.echo(f"id:    {info.id}\nrole:  {info.role}\nname:  {info.name}\ntoken: {token}")
        if login is not None:
            click.echo(f"login: {login}{'' if password is not None else ' (no password yet: invite or set-password)'}")
        click.echo("The token is shown only this once; store it now.", err=True)


@principal.command("list")
@click.option("--role", type=click.Choice(ROLES), default=None)
@click.option("--json", "as_json", is_flag=True)
@_home_option
@click.pass_context
def principal_list(ctx: click.Context, role: str | None, as_json: bool, home: Path | None) -> None:
    """List principals."""
    from vault.core.clock import rfc3339
    from vault.identity import logins, principals

    vault = _open(ctx, home)
    with vault.transaction() as session:
        rows = [
            (p, principals.live_token_count(session, p.id), logins.get_login(session, vault.keys, p.id))
            for p in principals.list_principals(session, vault.keys, role=role)
        ]
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": p.id,
                        "role": p.role,
                        "name": p.name,
                        "login": login,
                        "created_at": rfc3339(p.created_at),
                        "live_tokens": n,
                    }
                    for p, n, login in rows
                ]
            )
        )
        return
    for p, n, login in rows:
        shown = f"  login:{login}" if login is not None else ""
        click.echo(f"{p.id}  {p.role:<10}  {rfc3339(p.created_at)}  tokens:{n}{shown}  {p.name}")


@principal.command("revoke-token")
@click.argument("principal_id")
@_home_option
@click.pass_context
def principal_revoke_token(ctx: click.Context, principal_id: str, home: Path | None) -> None:
    """Revoke every live token of a principal."""
    from vault.core.clock import utcnow
    from vault.identity import principals

    vault = _open(ctx, home)
    with vault.transaction() as session:
        count = principals.revoke_tokens(session, principal_id, now=utcnow())
    click.echo(f"revoked {count} token(s) of {principal_id}")


@principal.command("token")
@click.argument("principal_id")
@_home_option
@click.pass_context
def principal_token(ctx: click.Context, principal_id: str, home: Path | None) -> None:
    """Issue a new token for a principal (shown only once)."""
    from vault.core.clock import utcnow
    from vault.identity import principals

    vault = _open(ctx, home)
    with vault.transaction() as session:
        token = principals.issue_token(session, principal_id, now=utcnow())
    click.echo(token)


def _write_demo_tokens(settings: Settings, people: list[dict[str, str]]) -> Path:
    """Save demo tokens, logins, passwords and TOTP secrets (added to any saved before), owner-readable only."""
    path = settings.home / DEMO_TOKENS_FILE
    if path.exists():
        people = json.loads(path.read_text(encoding="utf-8")) + people
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(people, handle, indent=2)
    return path


def _print_people(people: list[dict[str, str]]) -> None:
    for person in people:
        click.echo(f"  {person['role']:<10} {person['name']:<32} id={person['id']}")
        click.echo(f"             token={person['token']}")
        if "login" in person:  # demo sets saved before sign-in existed have none
            click.echo(f"             login={person['login']} password={person['password']}")
        if "totp_secret" in person:
            click.echo(f"             TOTP secret (add it to an authenticator app)={person['totp_secret']}")
        if "issuer_key_id" in person:
            click.echo(f"             issuer key={person['issuer_key_id']} (private key saved with the demo tokens)")


@cli.command("demo")
@click.option("--if-new", is_flag=True, help="Load only into an empty vault; otherwise print the saved demo tokens.")
@_home_option
@click.pass_context
def demo_command(ctx: click.Context, if_new: bool, home: Path | None) -> None:
    """Load a realistic demo data set and print its tokens."""
    from vault.cli import demo
    from vault.core.clock import utcnow
    from vault.keys import attestation_key
    from vault.runtime import Vault

    settings = _settings(ctx, home)
    vault = Vault.open(settings)
    # The landlord's attestation in the story needs the vault's key (made by `civicvault init`).
    signing_key = (
        attestation_key.read(settings.attestation_key_file) if settings.attestation_key_file.exists() else None
    )
    with vault.transaction() as session:
        loaded = not demo.has_data(session)
        if loaded or not if_new:
            people, story = demo.load(
                session,
                vault.keys,
                now=utcnow(),
                limits=vault.limits,
                attestation_key=signing_key,
                attestation_valid_days=settings.attestation_valid_days,
            )
    if loaded or not if_new:
        path = _write_demo_tokens(settings, people)
        click.echo("Demo data loaded. The consent story:")
        for line in story:
            click.echo(f"  - {line}")
        click.echo(f"Tokens, logins and passwords (also saved, for the demo only, in {path}):")
        _print_people(people)
        return
    path = settings.home / DEMO_TOKENS_FILE
    if path.exists():
        click.echo(f"This vault already has data. Demo tokens from {path}:")
        _print_people(json.loads(path.read_text(encoding="utf-8")))
    else:
        click.echo("This vault already has data and no saved demo tokens; use 'civicvault principal add'.")


@cli.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes that check the entries in parallel (default: the number of CPUs, at most 8).",
)
@click.option(
    "--against-checkpoint",
    "held_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint kept outside the database (a witness's state.json, or a signed checkpoint note): "
    "fail if the ledger is behind it or does not extend it. Repeatable.",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Verify incrementally from the size and root saved in FILE by the last verify, and save the new ones "
    "there; a missing FILE means a full verify (docs/ledger-format.md, section 9).",
)
@_home_option
@click.pass_context
def verify(
    ctx: click.Context, workers: int | None, held_files: tuple[Path, ...], state_file: Path | None, home: Path | None
) -> None:
    """Check the whole ledger and its links to the data (or, with --state, what is new); name the first bad entry."""
    from vault.cli.anchor import anchor_check_for, describe_check
    from vault.keys import ledger_key
    from vault.ledger import ledger
    from vault.runtime import Vault
    from vault.verification import incremental
    from vault.verification.verify import check_against, held_checkpoint
    from vault.verification.verify import verify as verify_ledger

    settings = _settings(ctx, home)
    public_key = ledger_key.read(settings.ledger_key_file).public_key
    held = [
        held_checkpoint(path.read_bytes().decode("utf-8", "replace"), public_key=public_key, name=str(path))
        for path in held_files
    ]
    state = None
    if state_file is not None and state_file.exists():
        try:
            text = state_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{state_file} cannot be read ({exc}).") from None
        state = incremental.read_state(text, origin=settings.ledger_origin, name=str(state_file))
    vault = Vault.open(settings)
    if state_file is not None and state is not None:
        with vault.read_transaction() as session:
            new = max(ledger.size(session) - state.tree_size, 0)
            with click.progressbar(length=new, label="verifying", file=sys.stderr, show_pos=True) as bar:
                since = incremental.verify_since(
                    session,
                    state,
                    public_key=public_key,
                    progress=bar.update,
                    pending_bound=settings.sequencer.pending_bound_seconds,
                )
            for checkpoint in held:
                check_against(session, checkpoint, size=since.size)
        _save_state(state_file, settings.ledger_origin, since.size, since.root)
        click.echo(
            f"ledger intact (incremental): {since.checked} new entries checked ({since.since} to {since.size}), "
            f"consistent with the verified state of size {since.since}, {since.nodes} interior nodes, "
            f"{since.checkpoints} new signed checkpoints, root {since.root}"
        )
        if since.erased:
            click.echo(
                f"{since.erased} entries erased with their subject (payload destroyed, leaf kept): not tampering"
            )
        for checkpoint in held:
            click.echo(f"extends {checkpoint.source} (size {checkpoint.size})")
        return
    anchors = anchor_check_for(settings)
    with vault.read_transaction() as session:
        size = ledger.size(session)
        with click.progressbar(length=size, label="verifying", file=sys.stderr, show_pos=True) as bar:
            report = verify_ledger(
                session,
                public_key=public_key,
                progress=bar.update,
                anchors=anchors,
                workers=workers or min(os.cpu_count() or 1, 8),
                pending_bound=settings.sequencer.pending_bound_seconds,
            )
        for checkpoint in held:
            check_against(session, checkpoint, size=report.size)
    click.echo(
        f"ledger intact: {report.size} entries, {report.nodes} interior nodes, {report.checkpoints} signed "
        f"checkpoints, root {report.root}"
    )
    click.echo(f"anchors: {describe_check(report.anchors)}")
    if report.erased:
        click.echo(f"{report.erased} entries erased with their subject (payload destroyed, leaf kept): not tampering")
    if report.pending:
        click.echo(f"{report.pending} event(s) committed and waiting for the sequencer, each checked")
    for checkpoint in held:
        click.echo(f"extends {checkpoint.source} (size {checkpoint.size})")
    if state_file is not None:
        _save_state(state_file, settings.ledger_origin, report.size, report.root)
        click.echo(f"saved the verified state (size {report.size}) to {state_file}")


def _save_state(path: Path, origin: str, size: int, root: str) -> None:
    """Write the verify state file (vault.verification.incremental); a file that cannot be written is one sentence."""
    from vault.core.clock import utcnow
    from vault.verification import incremental

    try:
        incremental.write_state(path, incremental.state_after(origin=origin, size=size, root=root, now=utcnow()))
    except OSError as exc:
        raise click.ClickException(f"The ledger verified, but {path} cannot be written ({exc.strerror}).") from None


@cli.command("replay-erasures")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print {erased, receipts} as JSON.")
@_home_option
@click.pass_context
def replay_erasures_command(ctx: click.Context, yes: bool, as_json: bool, home: Path | None) -> None:
    """After restoring a database backup: erase again every resident whose secret is gone."""
    from dataclasses import asdict

    from vault.core.clock import rfc3339
    from vault.keys.key_rotation import residents_without_secret
    from vault.rights.erasure import replay_erasures

    vault = _open(ctx, home)
    try:
        missing = residents_without_secret(vault, limit=sys.maxsize)
        if missing and not yes:
            click.echo("Residents whose secret is gone (erased after this database copy was taken):", err=True)
            for subject_id in missing:
                click.echo(f"  {subject_id}", err=True)
            click.confirm(f"Erase these {len(missing)} resident(s) again?", abort=True, err=True)
        done = replay_erasures(vault)
    finally:
        vault.close()
    receipts = [{"subject_id": subject_id, **asdict(r), "erased_at": rfc3339(r.erased_at)} for subject_id, r in done]
    if as_json:
        click.echo(json.dumps({"erased": len(done), "receipts": receipts}, indent=2))
        return
    if not done:
        click.echo("Nothing to replay: every resident not erased has their secret.")
        return
    for receipt in receipts:
        click.echo(f"erased again: {receipt['subject_id']} (ledger entry {receipt['leaf_index']})")
    click.echo("Their receipts (--json) hold new nonces, stored nowhere else: give each to its resident.", err=True)


@cli.command("checkpoint")
@click.option("--show-key", is_flag=True, help="Print the ledger's public key (hex) and sign nothing.")
@_home_option
@click.pass_context
def checkpoint_command(ctx: click.Context, show_key: bool, home: Path | None) -> None:
    """Sign a checkpoint of the ledger now and print it."""
    from vault.core.clock import utcnow
    from vault.keys import ledger_key
    from vault.ledger import checkpoints
    from vault.runtime import Vault

    settings = _settings(ctx, home)
    key = ledger_key.read(settings.ledger_key_file)
    if show_key:
        click.echo(key.public_key.hex())
        return
    vault = Vault.open(settings)
    with vault.transaction() as session:
        signed = checkpoints.sign_now(session, key=key, origin=settings.ledger_origin, now=utcnow())
    click.echo(signed.note, nl=False)


@cli.group()
def audit() -> None:
    """Export a resident's audit bundle, verify one offline."""


@audit.command("export")
@click.option("--subject", "subject_id", required=True, help="The resident's id")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bundle (JSON)",
)
@_home_option
@click.pass_context
def audit_export(ctx: click.Context, subject_id: str, out: Path, home: Path | None) -> None:
    """Write a self-contained bundle of a resident's events with inclusion proofs."""
    from vault.verification.bundles import export

    vault = _open(ctx, home)
    with vault.read_transaction() as session:
        bundle = export(session, subject_id=subject_id)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(bundle, handle, indent=1, ensure_ascii=False)
    click.echo(
        f"{len(bundle['events'])} events proven against checkpoint size {bundle['checkpoint'].split(chr(10))[1]}; "
        f"{bundle['pending']} newer events await the next checkpoint; written to {out}"
    )


@audit.command("verify-bundle")
@click.argument("bundle_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--log-key", required=True, help="The vault's ledger public key (hex), pinned out of band")
def audit_verify_bundle(bundle_file: Path, log_key: str) -> None:
    """Verify a bundle offline, with public keys only."""
    from vault.verification.bundles import BundleError, verify_bundle

    try:
        key = bytes.fromhex(log_key)
        bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
    except ValueError:
        raise click.ClickException("The bundle is not JSON, or --log-key is not hex.") from None
    try:
        checkpoint, count = verify_bundle(bundle, log_key=key)
    except BundleError as exc:
        raise click.ClickException(f"The bundle does not verify: {exc}.") from None
    click.echo(
        f"bundle verified: {count} events of {bundle['subject_id']} are in the log signed at size {checkpoint.size}"
    )


WITNESS_TOKEN_ENV = "CIVICVAULT_WITNESS_TOKEN"


def _witness_token(token: str | None, token_file: Path | None) -> str:
    """The witness's bearer token, from exactly one of: the environment, a file, or (deprecated) ``--token``.

    A token on the command line is visible to every user of the machine
    (``ps``, ``/proc/PID/cmdline``) and lands in shell histories: ``--token``
    still works, for scripts written against it, with a warning.
    """
    from_env = os.environ.get(WITNESS_TOKEN_ENV) or None
    given = [
        name
        for name, value in (("--token", token), ("--token-file", token_file), (WITNESS_TOKEN_ENV, from_env))
        if value is not None
    ]
    if len(given) > 1:
        raise click.ClickException(f"Give the witness token one way only, not through {' and '.join(given)}.")
    if token_file is not None:
        try:
            value = token_file.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise click.ClickException(f"Cannot read the witness token from {token_file}: it is not text.") from None
        except OSError as exc:
            why = (exc.strerror or type(exc).__name__).lower()
            raise click.ClickException(f"Cannot read the witness token from {token_file}: {why}.") from None
        if token_file.stat().st_mode & 0o077:
            click.echo(
                f"Warning: {token_file} can be read by other users; make it readable by its owner only (chmod 600).",
                err=True,
            )
        if not value:
            raise click.ClickException(f"{token_file} is empty: it should hold the witness principal's token.")
        return value
    if token is not None:
        click.echo(
            f"Warning: --token is visible to every user of this machine in the process list; set {WITNESS_TOKEN_ENV} "
            "or use --token-file instead.",
            err=True,
        )
        return token
    if from_env is not None:
        return from_env
    raise click.ClickException(f"No witness token: set {WITNESS_TOKEN_ENV} or give --token-file FILE.")


@cli.command()
@click.option("--url", required=True, help="The vault's base URL, e.g. http://127.0.0.1:8080")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"A file (mode 0600) holding this witness principal's bearer token; or set {WITNESS_TOKEN_ENV}.",
)
@click.option(
    "--token",
    default=None,
    help=f"Deprecated: visible in the process list. Use {WITNESS_TOKEN_ENV} or --token-file.",
)
@click.option("--log-key", required=True, help="The vault's ledger public key (hex), pinned out of band")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("civicvault-witness"),
    show_default=True,
    help="The witness's own key and state",
)
@click.option(
    "--interval", type=click.FloatRange(min=1), default=60.0, show_default=True, help="Seconds between rounds"
)
@click.option("--once", is_flag=True, help="Do one round and exit (3 when the checkpoint is refused)")
def witness(
    url: str,
    token_file: Path | None,
    token: str | None,
    log_key: str,
    state_dir: Path,
    interval: float,
    once: bool,
) -> None:
    """Run a witness that checks and cosigns the vault's checkpoints.

    The witness principal's token comes from CIVICVAULT_WITNESS_TOKEN or --token-file, never the command line.
    """
    import time

    from vault.witness.client import Refused, WitnessClient, WitnessError

    bearer = _witness_token(token, token_file)
    try:
        pinned = bytes.fromhex(log_key)
    except ValueError:
        raise click.ClickException(
            "--log-key must be the hex public key that 'civicvault checkpoint --show-key' prints."
        ) from None
    try:
        client = WitnessClient(url=url, token=bearer, log_key=pinned, state_dir=state_dir)
    except WitnessError as exc:
        raise click.ClickException(str(exc)) from None
    while True:
        try:
            done = client.round()
            click.echo(f"cosigned size {done.tree_size} root {done.root_hash} ({done.cosigners} cosigner(s))")
        except Refused as exc:
            click.echo(f"REFUSED: {exc}. Not cosigning; state kept.", err=True)
            if once:
                sys.exit(3)
        except WitnessError as exc:
            if once:
                raise click.ClickException(str(exc)) from None
            click.echo(f"witness round failed: {exc}", err=True)
        if once:
            return
        time.sleep(interval)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--threads",
    default=32,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker: requests served at once by each (a slow client holds one for a bounded time).",
)
@_home_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int, home: Path | None) -> None:
    """Serve the API with gunicorn.

    Threaded workers, with deadlines for slow clients (docs/operations.md, "Serving and durability").
    """
    from vault.cli.listen import display, listen

    settings = _settings(ctx, home)
    # Bind first: a taken port is one sentence now, not gunicorn retrying for seconds after the vault opened.
    listener = listen(host, port)
    try:
        from vault.keys.key_rotation import residents_without_secret
        from vault.runtime import Vault

        vault = Vault.open(settings)  # fail here, clearly, rather than in every worker
        try:
            # A database restored from before an erasure: those residents' data no longer opens, and
            # their tokens would still work. Serve only once the erasures are replayed.
            unerased = residents_without_secret(vault, limit=1)
            if not unerased:
                _purge_sign_ins(vault)  # ended browser sessions and dead invitation links
        finally:
            vault.close()
        if unerased:
            raise click.ClickException(
                "Some residents have no subject secret (a database restored from before their erasure?): "
                "run 'civicvault replay-erasures' first (docs/operations.md, \"Restoring\")."
            )
        from vault.cli.server import request_timeouts, run

        request_timeouts()
    except BaseException:
        listener.close()
        raise
    click.echo(f"CivicVault on http://{display(host, port)}/  (web app; API /api/v1; /docs; /openapi.json)")
    run(settings, listener=listener, workers=workers, threads=threads)


@cli.group()
def maintenance() -> None:
    """Housekeeping an operator runs now and then (docs/operations.md)."""


@maintenance.command("vacuum-secrets")
@_home_option
@click.pass_context
def maintenance_vacuum_secrets(ctx: click.Context, home: Path | None) -> None:
    """Rewrite the subject-secret store so that erased residents' secrets leave no trace in its files."""
    from vault.keys.subject_secrets import SecretStore

    store = SecretStore.open(_settings(ctx, home).secrets_database_url)
    try:
        done = store.vacuum()
    finally:
        store.close()
    click.echo(f"subject-secret store: {done}")


@maintenance.command("purge-sessions")
@_home_option
@click.pass_context
def maintenance_purge_sessions(ctx: click.Context, home: Path | None) -> None:
    """Delete ended browser sessions and used or expired invitation links (each `serve` start does it too)."""
    vault = _open(ctx, home)
    try:
        sessions, links = _purge_sign_ins(vault)
    finally:
        vault.close()
    click.echo(f"deleted {sessions} ended sessions and {links} used or expired invitations")


def _purge_sign_ins(vault: Vault) -> tuple[int, int]:
    from vault.identity import invitations, web_sessions

    with vault.transaction() as session:
        now = vault.now()
        sessions = web_sessions.purge_ended(session, now=now, policy=vault.settings.web_sessions)
        links = invitations.purge_ended(session, now=now)
    return sessions, links


# Logins, passwords and invitations for the pages (vault/identity).
_register_credentials(principal, _home_option, _open)
# Anchoring on an EVM chain (vault/anchoring), key management and erasure.
_register_anchor(cli, home_option=_home_option, settings_of=_settings)
_register_key_commands(cli, _home_option, _settings)
_register_sequencer(cli, _home_option, _settings)
# Issuers' signing keys and record signatures (vault/identity/issuer_keys.py, docs/attestations.md).
_register_issuer(cli, _home_option, _settings)
_register_attest(cli, _home_option, _settings)


def main() -> None:
    # The database, its WAL and any file the vault writes are the owner's only.
    os.umask(0o077)
    cli(prog_name="civicvault")
