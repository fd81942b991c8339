"""``civicvault principal set-login|set-password|invite``: what a person signs in to the pages with.

Registered on the ``principal`` group by ``vault.cli.main``, which also uses
``read_password`` for ``principal add --password-stdin``. A password is
never taken from the command line (the process list and shell histories
show it): it is read from standard input or asked for twice with hidden
input. docs/operations.md, "Accounts and sign-in", is the guide.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

if TYPE_CHECKING:
    from vault.runtime import Vault

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
# The policy's longest password is 128 characters; what stdin may hold beyond that is refused unread.
_MAX_STDIN_CHARACTERS = 4 * 128 + 2


def read_password(from_stdin: bool) -> str:
    """The new password: standard input's first line (``--password-stdin``), or asked twice, hidden."""
    if not from_stdin:
        return str(click.prompt("New password", hide_input=True, confirmation_prompt=True, err=True))
    text = sys.stdin.read(_MAX_STDIN_CHARACTERS + 1)
    if len(text) > _MAX_STDIN_CHARACTERS:
        raise click.ClickException("The password on standard input is far too long (at most 128 characters).")
    lines = text.splitlines()
    if len(lines) > 1 and any(line for line in lines[1:]):
        raise click.ClickException("Standard input must hold the password alone, on one line.")
    return lines[0] if lines else ""


def check_base_url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """An http(s) URL with a host and no query or fragment, without its trailing slash."""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise click.BadParameter("give the pages' base URL, such as https://vault.example.org")
    return value.rstrip("/")


def register(
    principal: click.Group, home_option: Decorator, open_vault: Callable[[click.Context, Path | None], Vault]
) -> None:
    """Add the sign-in commands to the ``principal`` group; their libraries load when they run."""

    @principal.command("set-login")
    @click.argument("principal_id")
    @click.argument("login")
    @home_option
    @click.pass_context
    def principal_set_login(ctx: click.Context, principal_id: str, login: str, home: Path | None) -> None:
        """Give a principal a login for the pages (or a new one)."""
        from vault.identity import logins

        vault = open_vault(ctx, home)
        try:
            with vault.transaction() as session:
                shown = logins.set_login(session, vault.keys, principal_id, login)
        finally:
            vault.close()
        click.echo(f"login of {principal_id}: {shown}")

    @principal.command("set-password")
    @click.argument("principal_id")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
    @home_option
    @click.pass_context
    def principal_set_password(ctx: click.Context, principal_id: str, password_stdin: bool, home: Path | None) -> None:
        """Set a principal's password (asked twice, hidden); signs them out of every browser."""
        from vault.identity import passwords

        password = read_password(password_stdin)
        vault = open_vault(ctx, home)
        try:
            with vault.transaction() as session:
                passwords.set_password(session, vault.keys, principal_id, password, now=vault.now())
        finally:
            vault.close()
        click.echo(f"password set for {principal_id}; their browser sessions, if any, are signed out")

    @principal.command("reset-totp")
    @click.argument("principal_id")
    @home_option
    @click.pass_context
    def principal_reset_totp(ctx: click.Context, principal_id: str, home: Path | None) -> None:
        """Forget a principal's two-step secret (a lost phone) and sign them out; they enrol again at sign-in."""
        from vault.identity import totp

        vault = open_vault(ctx, home)
        try:
            with vault.transaction() as session:
                totp.reset(session, principal_id, now=vault.now())
        finally:
            vault.close()
        click.echo(f"two-step sign-in reset for {principal_id}; they enrol a new authenticator at their next sign-in")
        click.echo("Check who is asking first: whoever signs in next with the password enrols.", err=True)

    @principal.command("invite")
    @click.argument("principal_id")
    @click.option(
        "--base-url",
        default=DEFAULT_BASE_URL,
        show_default=True,
        callback=check_base_url,
        help="Where the pages are served; the link is BASE/invite/<token>.",
    )
    @home_option
    @click.pass_context
    def principal_invite(ctx: click.Context, principal_id: str, base_url: str, home: Path | None) -> None:
        """Print a one-time, expiring link with which the person sets their own password."""
        from vault.core.clock import rfc3339
        from vault.identity import invitations

        vault = open_vault(ctx, home)
        try:
            with vault.transaction() as session:
                link = invitations.create(session, vault.keys, principal_id, now=vault.now())
        finally:
            vault.close()
        click.echo(f"link:    {base_url}/invite/{link.token}")
        click.echo(f"expires: {rfc3339(link.expires_at)}")
        click.echo("The link works once and replaces any earlier one; send it to that person alone.", err=True)
