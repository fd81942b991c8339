"""Periodic anchoring in a server worker: never on a request path, backing off when the node is down.

``Anchorer.round()`` does one round (``service.anchor_if_due``, under the
database lease that lets one worker at a time send) and returns how long to
wait before the next: the normal pause after a round that succeeded or had
nothing to do, and an exponential back-off (5 s, 10 s, 20 s, ... capped at
10 minutes) while the node cannot be reached or refuses. ``run`` loops in a
daemon thread until ``stop`` is set. Requests never wait for any of it: they
do not share a transaction, a lock or a thread with the anchorer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vault.anchoring import service
from vault.anchoring.chain import AnchorError, ChainUnavailable
from vault.anchoring.settings import AnchorSettings, Signer
from vault.core.errors import VaultError

if TYPE_CHECKING:
    from vault.anchoring.chain import Chain
    from vault.runtime import Vault

log = logging.getLogger("civicvault.anchoring")

BACKOFF_FIRST = 5.0
BACKOFF_CAP = 600.0


@dataclass
class Anchorer:
    vault: Vault
    settings: AnchorSettings
    signer: Signer
    holder: str
    chain: Chain | None = None  # built on first use; tests may give one
    pause: float = 15.0
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def _chain(self) -> Chain:
        if self.chain is None:
            from vault.anchoring.chain import Chain

            self.chain = Chain(
                self.settings.require_rpc(),
                contract=self.settings.require_contract(),
                timeout=self.settings.timeout,
                confirmations=self.settings.confirmations,
            )
        return self.chain

    def backoff(self) -> float:
        return min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (self.failures - 1))

    def round(self) -> float:
        """One round; the seconds to wait before the next."""
        try:
            outcome = service.anchor_if_due(
                self.vault,
                chain=self._chain(),
                signer=self.signer,
                every=self.settings.every,
                minutes=self.settings.minutes,
                holder=self.holder,
                expected_chain_id=self.settings.chain_id,
                lease_seconds=3 * self.settings.timeout + 60,
            )
        except (ChainUnavailable, AnchorError) as exc:
            self.failures += 1
            wait = self.backoff()
            log.warning("anchoring failed (%s); retrying in %.0f s", exc.detail, wait)
            return wait
        except VaultError as exc:  # an integrity or configuration problem: keep saying so, slowly
            self.failures += 1
            wait = self.backoff()
            log.error("anchoring stopped: %s; retrying in %.0f s", exc.detail, wait)
            return wait
        except (
            Exception
        ) as exc:  # keep the worker serving; never print the exception's arguments (they could hold anything)
            self.failures += 1
            wait = self.backoff()
            log.error("anchoring failed unexpectedly (%s); retrying in %.0f s", type(exc).__name__, wait)
            return wait
        self.failures = 0
        if outcome is not None and outcome.sent:
            log.info(
                "anchored checkpoint of size %d in block %d (tx 0x%s, gas %d)",
                outcome.anchor.tree_size,
                outcome.anchor.block_number,
                outcome.anchor.transaction_hash,
                outcome.anchor.gas_used,
            )
        return self.pause

    def run(self) -> None:
        while not self.stop.is_set():
            self.stop.wait(self.round())

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="civicvault-anchorer", daemon=True)
        thread.start()
        return thread


def start_in_worker(vault: Vault, settings: AnchorSettings, *, holder: str) -> Anchorer | None:
    """Start the background anchorer when periodic anchoring is configured; None when it is not."""
    if not settings.background:
        return None
    anchorer = Anchorer(vault=vault, settings=settings, signer=settings.signer(), holder=holder)
    settings.require_contract()
    anchorer.start()
    return anchorer
