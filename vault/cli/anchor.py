"""``civicvault anchor key|deploy|now|status``, and the chain reader ``civicvault verify`` uses.

Registered on the main command group by ``vault.cli.main``. The sending key is
never printed: ``anchor key`` shows the account's address only. web3 and
SQLAlchemy are imported by the commands that use them, not with this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vault.anchoring.settings import (
    AnchorSettings,
    ContractRecord,
    create_key_file,
    read_contract_record,
    write_contract_record,
)
from vault.core.errors import ConfigError, Conflict

if TYPE_CHECKING:
    from vault.anchoring.chain import Chain
    from vault.anchoring.check import AnchorCheck, AnchorReport
    from vault.core.config import Settings

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _web3_missing() -> ConfigError:
    return ConfigError(
        "Anchoring needs the Ethereum client: install CivicVault with the 'ethereum' extra (pip install '.[ethereum]')."
    )


def _chain(anchor_settings: AnchorSettings, *, contract: str | None) -> Chain:
    try:
        from vault.anchoring.chain import Chain
    except ImportError:
        raise _web3_missing() from None
    return Chain(
        anchor_settings.require_rpc(),
        contract=contract,
        timeout=anchor_settings.timeout,
        confirmations=anchor_settings.confirmations,
    )


def anchor_check_for(settings: Settings) -> AnchorCheck:
    """The chain reader for ``verify``: the configured node, or none (anchors are then checked locally only)."""
    from vault.anchoring.check import AnchorCheck

    anchor_settings = AnchorSettings.from_env(settings.home)
    if anchor_settings.rpc_url is None:
        return AnchorCheck(origin=settings.ledger_origin)
    configured = (anchor_settings.contract, anchor_settings.contract_block) if anchor_settings.contract else None
    return AnchorCheck(
        chain_for=lambda address: _chain(anchor_settings, contract=address),
        configured=configured,
        origin=settings.ledger_origin,
    )


def describe_check(report: AnchorReport | None) -> str:
    if report is None or (report.anchors == 0 and not report.on_chain):
        return "no anchors"
    where = "checked on chain" if report.on_chain else "checked locally only (CIVICVAULT_ANCHOR_RPC_URL is not set)"
    return f"{report.anchors} anchor{'' if report.anchors == 1 else 's'} {where}"


def register(
    cli: click.Group,
    *,
    home_option: Decorator,
    settings_of: Callable[[click.Context, Path | None], Settings],
) -> None:
    """Add the ``anchor`` group to ``cli``."""

    @cli.group()
    def anchor() -> None:
        """Anchor ledger checkpoints on an Ethereum-compatible chain (docs/anchoring.md)."""

    @anchor.command("key")
    @home_option
    @click.pass_context
    def anchor_key(ctx: click.Context, home: Path | None) -> None:
        """Create the anchoring key file (0600) if missing and print its account's address."""
        settings = settings_of(ctx, home)
        try:
            path, address, created = create_key_file(settings.home)
        except ImportError:
            raise _web3_missing() from None
        click.echo(f"account: {address}")
        click.echo(f"key file: {path}{' (created, mode 0600)' if created else ''}")
        if created:
            click.echo(
                "Fund this account on the chain you anchor to (on a zero-gas-price network, permit it to send).",
                err=True,
            )

    @anchor.command("deploy")
    @click.option(
        "--replace",
        is_flag=True,
        help="Deploy a new contract although one is recorded (anchors on the old one stay checkable).",
    )
    @home_option
    @click.pass_context
    def anchor_deploy(ctx: click.Context, replace: bool, home: Path | None) -> None:
        """Deploy the anchor contract and record its address in the home."""
        from vault.anchoring import service

        settings = settings_of(ctx, home)
        anchor_settings = AnchorSettings.from_env(settings.home)
        existing = read_contract_record(settings.home)
        if existing is not None and not replace:
            raise Conflict(
                f"An anchor contract is already recorded ({existing.address}); pass --replace to deploy another."
            )
        chain = _chain(anchor_settings, contract=None)
        signer = anchor_settings.signer()
        chain_id = service.check_chain_id(chain, anchor_settings.chain_id)
        sent = chain.deploy(signer)
        if not sent.contract:  # Chain.deploy already refuses this; the record needs an address
            from vault.anchoring.chain import AnchorError

            raise AnchorError("The deployment was mined but created no contract.")
        path = write_contract_record(
            settings.home,
            ContractRecord(
                address=sent.contract,
                chain_id=chain_id,
                block_number=sent.block_number,
                tx_hash="0x" + sent.tx_hash.hex(),
            ),
        )
        click.echo(
            f"contract: {sent.contract}\nchain: {chain_id}\nblock: {sent.block_number}\ntx: 0x{sent.tx_hash.hex()}\n"
            f"gas: {sent.gas_used}\nrecorded in: {path}"
        )

    @anchor.command("now")
    @home_option
    @click.pass_context
    def anchor_now(ctx: click.Context, home: Path | None) -> None:
        """Anchor the latest signed checkpoint on chain."""
        import os
        import socket

        from vault.anchoring import service
        from vault.runtime import Vault

        settings = settings_of(ctx, home)
        anchor_settings = AnchorSettings.from_env(settings.home)
        anchor_settings.require_rpc()
        chain = _chain(anchor_settings, contract=anchor_settings.require_contract())
        signer = anchor_settings.signer()
        vault = Vault.open(settings)
        holder = f"{socket.gethostname()}:{os.getpid()}:cli"
        if not service.take_lease(vault, holder=holder, now=vault.now(), seconds=3 * anchor_settings.timeout + 60):
            raise Conflict("Another worker is anchoring right now; try again in a minute.")
        try:
            outcome = service.anchor_latest(
                vault, chain=chain, signer=signer, expected_chain_id=anchor_settings.chain_id
            )
        finally:
            service.release_lease(vault, holder=holder)
        verb = "anchored" if outcome.sent else "already on chain"
        click.echo(f"{verb}: {service.describe(outcome.anchor)}")

    @anchor.command("status")
    @click.option("--json", "as_json", is_flag=True, help="Print the anchors as JSON.")
    @click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
    @home_option
    @click.pass_context
    def anchor_status(ctx: click.Context, as_json: bool, limit: int, home: Path | None) -> None:
        """List the latest anchors with their blocks (and confirmations, when the node answers)."""
        from vault.anchoring import service
        from vault.core.clock import rfc3339
        from vault.runtime import Vault

        settings = settings_of(ctx, home)
        anchor_settings = AnchorSettings.from_env(settings.home)
        vault = Vault.open(settings)
        with vault.read_transaction() as session:
            anchors = service.list_anchors(session, limit=limit)
        head = None
        if anchor_settings.rpc_url is not None and anchors:
            from vault.anchoring.chain import ChainUnavailable

            try:
                head = _chain(anchor_settings, contract=None).block_number()
            except ChainUnavailable:
                head = None
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {
                            "origin": a.origin,
                            "tree_size": a.tree_size,
                            "root_hash": a.root_hash,
                            "chain_id": a.chain_id,
                            "contract": a.contract,
                            "transaction_hash": "0x" + a.transaction_hash,
                            "block_number": a.block_number,
                            "gas_used": a.gas_used,
                            "anchored_at": rfc3339(a.anchored_at),
                            "confirmations": None if head is None else max(0, head - a.block_number),
                        }
                        for a in anchors
                    ]
                )
            )
            return
        if anchor_settings.rpc_url is None:
            node = "not configured"
        else:
            node = "unreachable" if anchors and head is None else "configured"
        click.echo(f"contract: {anchor_settings.contract or '(none: run anchor deploy)'}  node: {node}")
        if not anchors:
            click.echo("nothing anchored yet")
        for a in anchors:
            confirmations = "" if head is None else f"  confirmations {max(0, head - a.block_number)}"
            click.echo(service.describe(a) + confirmations)
