"""Master key rotation: a new version, re-wrapping in small batches, retiring old versions.

``rotate`` makes the keyring's newest version the only one in use:

1. with the key file, it first adds a new master key version (unless the
   newest version is not yet used everywhere: then an earlier, interrupted
   rotation is resumed instead of starting another);
2. every subject key not wrapped under that version (or still wrapped under
   the master key alone, scheme 1) is unwrapped and wrapped again, bound to
   its resident's secret, in transactions of ``BATCH`` keys, so readers and
   writers only ever wait for one short batch;
3. every principal's sealed name is re-sealed the same way, and with it its
   sign-in credentials: the sealed login (same scheme as the name), the
   login's blind index (recomputed under the new version from the opened
   login) and the sealed TOTP secret;
4. a ``keys.rotated`` event (versions and counts only) goes on the ledger.

Records are never re-encrypted: they are sealed under subject keys, which do
not change. Running servers re-read the key file on their next use of it, so
they seal under the new version as soon as it exists.

``retire`` removes from the key file every old version that no subject key,
no sealed name and no sign-in credential uses any more (``keys.retired`` on the ledger); a version
still in use is never removed. ``usage`` counts what each version holds.

With ``CIVICVAULT_MASTER_KEY`` the keyring cannot be written: the operator
adds the new version to the variable (``1:OLD,2:NEW``) on every host, and
``rotate`` then re-wraps to it; ``retire`` names the versions that may be
removed from the variable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from sqlalchemy import Integer, LargeBinary, String, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

import crypto
from vault.core.content import normalise_login
from vault.core.errors import ConfigError, RecordUnreadable
from vault.core.keyfile import write_keyring
from vault.keys.keys import BOUND, MASTER_ONLY, SYSTEM_ACTOR
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import Principal, SubjectKey

if TYPE_CHECKING:
    from vault.runtime import Vault

BATCH = 200


@dataclass
class Usage:
    """What each master key version holds, and what is not yet bound to a subject secret."""

    subject_keys: Counter = field(default_factory=Counter)  # master version -> wrapped subject keys
    names: Counter = field(default_factory=Counter)  # master version -> sealed principal names
    # master version -> sign-in credentials under it: sealed logins, login blind indices, TOTP secrets
    credentials: Counter = field(default_factory=Counter)
    unbound_subject_keys: int = 0
    unbound_resident_names: int = 0

    def versions_in_use(self) -> set[int]:
        return {v for v, n in (self.subject_keys + self.names + self.credentials).items() if n}

    def pending(self, target: int) -> int:
        """Items a rotation to ``target`` still has to re-seal."""
        old = sum(
            n
            for counter in (self.subject_keys, self.names, self.credentials)
            for v, n in counter.items()
            if v != target
        )
        return old + self.unbound_subject_keys + self.unbound_resident_names


def _name_version(sealed: bytes) -> int:
    try:
        return crypto.envelope_key_id(bytes(sealed))
    except crypto.InvalidEnvelope:
        return 0  # unreadable header: counted under version 0, never retires anything


def usage(session: Session) -> Usage:
    result = Usage()
    for version, scheme, count in session.execute(
        select(SubjectKey.master_key_version, SubjectKey.wrap_scheme, func.count()).group_by(
            SubjectKey.master_key_version, SubjectKey.wrap_scheme
        )
    ):
        result.subject_keys[version] += count
        if scheme != BOUND:
            result.unbound_subject_keys += count
    rows = session.execute(
        select(
            Principal.role,
            Principal.name_scheme,
            Principal.name_sealed,
            Principal.login_sealed,
            Principal.login_index_version,
            Principal.totp_secret_sealed,
        )
        .where(Principal.erased_at.is_(None))
        .execution_options(yield_per=2000)
    )
    for role, scheme, sealed, login_sealed, index_version, totp_sealed in rows:
        result.names[_name_version(sealed)] += 1
        for version in _credential_versions(login_sealed, index_version, totp_sealed):
            result.credentials[version] += 1
        if role == "resident" and scheme != BOUND:
            result.unbound_resident_names += 1
    return result


def _credential_versions(login_sealed: bytes | None, index_version: int | None, totp_sealed: bytes | None) -> list[int]:
    """The master key versions a principal's sign-in credentials need, one entry per credential."""
    versions = [_name_version(login_sealed)] if login_sealed is not None else []
    if index_version is not None:
        versions.append(index_version)
    if totp_sealed is not None:
        versions.append(_name_version(totp_sealed))
    return versions


def residents_without_secret(vault: Vault, *, limit: int = 1000) -> list[str]:
    """Residents not marked erased whose secret is gone: erased after a restored backup was taken,
    or an interrupted erasure. ``civicvault replay-erasures`` finishes them."""
    with vault.read_transaction() as session:
        ids = list(
            session.scalars(
                select(SubjectKey.subject_id)
                .join(Principal, Principal.id == SubjectKey.subject_id)
                .where(SubjectKey.wrap_scheme == BOUND, Principal.erased_at.is_(None))
                .distinct()
            )
        )
    found = vault.keys.secrets.get_many(ids)
    return sorted(i for i in ids if i not in found)[:limit]


@dataclass(frozen=True)
class RotationReport:
    version: int  # the master key version everything is now sealed under
    new_version: bool  # False when an interrupted rotation was resumed
    subject_keys: int  # re-wrapped
    names: int  # re-sealed
    skipped: int  # subject keys whose resident's secret is gone (an interrupted erasure)
    remaining: int  # items still under an old version or unbound afterwards


def _subject_key_batch(
    vault: Vault, target: int, after: tuple[str, int] | None
) -> tuple[int, int, tuple[str, int] | None, int]:
    """Re-wrap up to BATCH subject keys after ``after``; returns (done, skipped, last, seen).

    The batch is read and re-wrapped outside any write transaction; the
    write is one short conditional UPDATE, so the write lock (SQLite) or the
    row locks (PostgreSQL) are held for milliseconds, not for the crypto.
    """
    keys = vault.keys
    wanted = or_(SubjectKey.master_key_version != target, SubjectKey.wrap_scheme != BOUND)
    query = select(SubjectKey).where(wanted).order_by(SubjectKey.subject_id, SubjectKey.version).limit(BATCH)
    if after is not None:
        query = query.where(
            or_(
                SubjectKey.subject_id > after[0], and_(SubjectKey.subject_id == after[0], SubjectKey.version > after[1])
            )
        )
    with vault.read_transaction() as session:
        rows = session.scalars(query).all()
    if not rows:
        return 0, 0, None, 0
    secrets = keys.secrets.get_many(r.subject_id for r in rows)
    ring = keys.keyring
    updates, skipped = [], 0
    for row in rows:
        secret = secrets.get(row.subject_id)
        if secret is None and row.wrap_scheme == MASTER_ONLY:
            secret = secrets[row.subject_id] = keys.secrets.ensure(row.subject_id)  # bind a pre-0005 key
        if secret is None:
            skipped += 1  # bound to a secret that is gone: unreadable, left for the erasure to finish
            continue
        try:
            plain = keys.unwrap(row, secret=secret)
        except RecordUnreadable:
            skipped += 1
            continue
        bound = ring.bound_to(secret, subject_id=row.subject_id)
        updates.append(
            {
                "b_subject": row.subject_id,
                "b_version": row.version,
                "b_old_master": row.master_key_version,
                "b_old_scheme": row.wrap_scheme,
                "b_old_wrapped": row.wrapped,
                "b_wrapped": crypto.wrap_key(bound, plain, subject_id=row.subject_id, version=row.version),
            }
        )
    if updates:
        table = cast(Table, SubjectKey.__table__)
        with vault.transaction() as session:
            # Only a row still as it was read is changed: a key erased or re-wrapped meanwhile stays as it is.
            session.connection().execute(
                update(table)
                .where(
                    table.c.subject_id == bindparam("b_subject"),
                    table.c.version == bindparam("b_version"),
                    table.c.master_key_version == bindparam("b_old_master"),
                    table.c.wrap_scheme == bindparam("b_old_scheme"),
                    table.c.wrapped == bindparam("b_old_wrapped"),
                )
                .values(wrapped=bindparam("b_wrapped"), master_key_version=target, wrap_scheme=BOUND),
                updates,
            )
    last = rows[-1]
    return len(updates), skipped, (last.subject_id, last.version), len(rows)


def _name_batch(vault: Vault, target: int, after: str) -> tuple[int, str | None, int]:
    """Re-seal the names (and sign-in credentials) among the next BATCH principals after ``after``.

    Returns (done, last, seen). A login is re-sealed with its name (same
    scheme) and re-indexed under ``target``; a TOTP secret is re-sealed.
    """
    keys = vault.keys
    with vault.read_transaction() as session:
        rows = session.execute(
            select(
                Principal.id,
                Principal.role,
                Principal.name_scheme,
                Principal.name_sealed,
                Principal.login_sealed,
                Principal.login_index,
                Principal.login_index_version,
                Principal.totp_secret_sealed,
            )
            .where(Principal.erased_at.is_(None), Principal.id > after)
            .order_by(Principal.id)
            .limit(BATCH)
        ).all()
    if not rows:
        return 0, None, 0
    secrets = (
        keys.secrets.get_many(row.id for row in rows if row.role == "resident") if keys.secrets is not None else {}
    )
    updates = []
    for row in rows:
        scheme = row.name_scheme
        new_scheme = BOUND if row.role == "resident" and keys.secrets is not None else scheme
        if scheme == new_scheme and all(
            v == target
            for v in [
                _name_version(row.name_sealed),
                *_credential_versions(row.login_sealed, row.login_index_version, row.totp_secret_sealed),
            ]
        ):
            continue
        try:
            old_secret = secrets.get(row.id) if scheme == BOUND else None
            name = keys.open_name(row.id, bytes(row.name_sealed), scheme=scheme, secret=old_secret)
            login = (
                keys.open_login(row.id, bytes(row.login_sealed), scheme=scheme, secret=old_secret)
                if row.login_sealed is not None
                else None
            )
            totp = keys.open_totp_secret(row.id, row.totp_secret_sealed) if row.totp_secret_sealed is not None else None
            secret = secrets.get(row.id) if new_scheme == BOUND else None
            if new_scheme == BOUND and secret is None:
                secret = secrets[row.id] = keys.secrets.ensure(row.id)  # a pre-0005 resident
        except RecordUnreadable:
            continue  # a resident mid-erasure: nothing to re-seal
        index_version, index = (
            keys.login_index(normalise_login(login), version=target) if login is not None else (None, None)
        )
        updates.append(
            {
                "b_id": row.id,
                "b_old": row.name_sealed,
                "b_old_login": row.login_sealed,
                "b_old_index": row.login_index,
                "b_old_totp": row.totp_secret_sealed,
                "b_scheme": new_scheme,
                "b_sealed": keys.seal_name(row.id, name, scheme=new_scheme, secret=secret),
                "b_login": keys.seal_login(row.id, login, scheme=new_scheme, secret=secret)
                if login is not None
                else None,
                "b_index": index,
                "b_index_version": index_version,
                "b_totp": keys.seal_totp_secret(row.id, totp) if totp is not None else None,
            }
        )
    if updates:
        table = cast(Table, Principal.__table__)
        with vault.transaction() as session:
            # Only a row still as it was read is changed: a login, TOTP secret or name changed meanwhile stays.
            session.connection().execute(
                update(table)
                .where(
                    table.c.id == bindparam("b_id"),
                    table.c.name_sealed == bindparam("b_old"),
                    table.c.login_sealed.is_not_distinct_from(bindparam("b_old_login", type_=LargeBinary())),
                    table.c.login_index.is_not_distinct_from(bindparam("b_old_index", type_=String())),
                    table.c.totp_secret_sealed.is_not_distinct_from(bindparam("b_old_totp", type_=LargeBinary())),
                )
                .values(
                    name_sealed=bindparam("b_sealed"),
                    name_scheme=bindparam("b_scheme"),
                    login_sealed=bindparam("b_login", type_=LargeBinary()),
                    login_index=bindparam("b_index", type_=String()),
                    login_index_version=bindparam("b_index_version", type_=Integer()),
                    totp_secret_sealed=bindparam("b_totp", type_=LargeBinary()),
                ),
                updates,
            )
    return len(updates), rows[-1][0], len(rows)


def plan(vault: Vault) -> tuple[int, bool]:
    """(target version, whether a new version must be added first)."""
    ring = vault.keys.keyring
    with vault.read_transaction() as session:
        pending = usage(session).pending(ring.current_version)
    if pending:
        return ring.current_version, False
    if not vault.keys.from_key_file:
        raise ConfigError(
            "The master keyring comes from CIVICVAULT_MASTER_KEY, which the vault cannot change: add a new version "
            "there (VERSION:base64, comma-separated, e.g. '1:OLD,2:NEW') on every host, then run 'civicvault keys "
            "rotate' again."
        )
    return ring.current_version + 1, True


def total_work(vault: Vault, target: int) -> int:
    with vault.read_transaction() as session:
        keys = (
            session.scalar(
                select(func.count())
                .select_from(SubjectKey)
                .where(or_(SubjectKey.master_key_version != target, SubjectKey.wrap_scheme != BOUND))
            )
            or 0
        )
        names = session.scalar(select(func.count()).select_from(Principal).where(Principal.erased_at.is_(None))) or 0
    return keys + names


def rotate(vault: Vault, *, progress: Callable[[int], None] = lambda n: None) -> RotationReport:
    """Rotate to a new master key version (or resume one); see the module's docstring."""
    target, needs_new = plan(vault)
    if needs_new:
        ring = vault.keys.keyring.rotated()
        write_keyring(vault.settings.key_file, ring, replace=True)
        vault.keys.reload()
        target = ring.current_version
        if vault.keys.keyring.current_version != target:
            raise ConfigError("The new master key version did not reach the key file.")
    rewrapped = skipped = 0
    after: tuple[str, int] | None = None
    while True:
        done, skip, after, seen = _subject_key_batch(vault, target, after)
        if not seen:
            break
        rewrapped, skipped = rewrapped + done, skipped + skip
        progress(seen)
    resealed = 0
    last = ""
    while True:
        done, next_last, seen = _name_batch(vault, target, last)
        if not seen or next_last is None:
            break
        last = next_last
        resealed += done
        progress(seen)
    with vault.transaction() as session:
        remaining = usage(session).pending(target)
        emit(
            session,
            DomainEvent(
                kind="keys.rotated",
                occurred_at=vault.now(),
                actor_id=SYSTEM_ACTOR,
                subject_id=None,
                data={
                    "master_key_version": target,
                    "new_version": needs_new,
                    "subject_keys_rewrapped": rewrapped,
                    "names_resealed": resealed,
                    "remaining": remaining,
                },
            ),
        )
    return RotationReport(
        version=target,
        new_version=needs_new,
        subject_keys=rewrapped,
        names=resealed,
        skipped=skipped,
        remaining=remaining,
    )


@dataclass(frozen=True)
class RetireReport:
    retired: tuple[int, ...]  # removed from the key file (or removable from the environment)
    in_use: tuple[int, ...]  # old versions something still needs
    current: int


def retire(vault: Vault) -> RetireReport:
    """Remove every old master key version nothing uses; never one still in use."""
    ring = vault.keys.keyring
    with vault.read_transaction() as session:
        in_use = usage(session).versions_in_use()
    current = ring.current_version
    old = [v for v in ring.versions if v != current]
    retired = tuple(v for v in old if v not in in_use)
    still = tuple(v for v in old if v in in_use)
    if retired and vault.keys.from_key_file:  # the environment is the operator's to edit
        kept = crypto.Keyring({v: ring.key(v) for v in ring.versions if v not in retired})
        write_keyring(vault.settings.key_file, kept, replace=True)
        vault.keys.reload()
        with vault.transaction() as session:
            emit(
                session,
                DomainEvent(
                    kind="keys.retired",
                    occurred_at=vault.now(),
                    actor_id=SYSTEM_ACTOR,
                    subject_id=None,
                    data={"retired_versions": list(retired), "master_key_version": current},
                ),
            )
    return RetireReport(retired=retired, in_use=still, current=current)
