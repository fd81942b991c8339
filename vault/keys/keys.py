"""The key hierarchy at work: master keyring -> subject keys -> record envelopes.

Each resident gets a random subject key when the principal is created, stored
wrapped under the current master key *bound to the resident's secret* (scheme
2: ``Keyring.bound_to``; the secret lives in the separate store of
``vault.subject_secrets``). Records are sealed under the subject's newest key;
the envelope header names the subject key version, so older versions stay
readable after a rotation. Destroying a subject's secret and keys
(crypto-shredding, ``vault.erasure``) makes every copy of their records
unreadable, old database backups included.

Each seal under a subject key is counted (``subject_keys.uses``) in the
sealing transaction; at ``max_uses`` a new subject key version takes over,
far below the 2^32 random-nonce limit of AES-GCM (NIST SP 800-38D, 8.3).

When the keyring comes from the key file, a change of that file (``civicvault
keys rotate`` / ``retire``) is picked up on the next use, so running servers
follow a rotation without a restart.
"""

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import cast

from sqlalchemy import Table, bindparam, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

import crypto
from vault.core.clock import utcnow
from vault.core.config import DEFAULT_SUBJECT_KEY_MAX_USES
from vault.core.errors import Conflict, RecordUnreadable
from vault.core.keyfile import read_keyring
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import SubjectKey

MASTER_ONLY = 1  # sealed under the master keyring alone (data from before schema 0005)
BOUND = 2  # sealed under the master keyring bound to the subject's secret
# The actor of events the vault itself causes (key rotations).
SYSTEM_ACTOR = "system"
# What the logins' blind index key is derived for (crypto.blind_index_key).
LOGIN_INDEX_PURPOSE = "login"


def _stamp(path: Path | None) -> tuple | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class KeyStore:
    """Seals and opens data for the services; holds the master keyring."""

    def __init__(
        self,
        keyring: crypto.Keyring,
        *,
        secrets=None,
        source: Path | None = None,
        max_uses: int = DEFAULT_SUBJECT_KEY_MAX_USES,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._keyring = keyring
        self._source = source
        self._stamp = _stamp(source)
        self.secrets = secrets  # vault.subject_secrets.SecretStore, or None: no bound sealing
        self.max_uses = max_uses
        self.clock = clock

    @property
    def keyring(self) -> crypto.Keyring:
        """The master keyring, re-read when its key file changed."""
        if self._source is not None:
            stamp = _stamp(self._source)
            if stamp != self._stamp:
                self._keyring = read_keyring(self._source)
                self._stamp = stamp
        return self._keyring

    def reload(self) -> None:
        if self._source is not None:
            self._stamp = None

    @property
    def from_key_file(self) -> bool:
        return self._source is not None

    # -- the keyring a subject's keys and name are sealed under --------------
    def new_scheme(self) -> int:
        return BOUND if self.secrets is not None else MASTER_ONLY

    def subject_keyring(
        self, subject_id: str, scheme: int, *, secret: bytes | None = None, create: bool = False
    ) -> crypto.Keyring:
        ring = self.keyring
        if scheme == MASTER_ONLY:
            return ring
        if scheme != BOUND or self.secrets is None:
            raise RecordUnreadable()
        if secret is None:
            secret = self.secrets.ensure(subject_id) if create else self.secrets.get(subject_id)
        if secret is None:
            raise RecordUnreadable()  # erased: the secret is gone
        return ring.bound_to(secret, subject_id=subject_id)

    # Principal names are sealed under the master keyring (bound for residents).
    def seal_name(
        self, principal_id: str, name: str, *, scheme: int = MASTER_ONLY, secret: bytes | None = None
    ) -> bytes:
        ring = self.subject_keyring(principal_id, scheme, secret=secret, create=True)
        return ring.seal(name.encode("utf-8"), aad=crypto.principal_name_aad(principal_id=principal_id))

    def open_name(
        self, principal_id: str, sealed: bytes, *, scheme: int = MASTER_ONLY, secret: bytes | None = None
    ) -> str:
        ring = self.subject_keyring(principal_id, scheme, secret=secret)
        try:
            plain = ring.unseal(sealed, aad=crypto.principal_name_aad(principal_id=principal_id))
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None
        return plain.decode("utf-8")

    # -- sign-in credentials (vault/identity): logins and TOTP secrets ----------
    # A login is sealed like the name (bound to a resident's secret), and found by a blind index:
    # HMAC-SHA256 of the normalised login under a key derived from a master key version
    # (crypto.blind_index). New indices use the current version; lookups try every version in
    # the keyring, so logins indexed before a rotation are found until it re-indexes them.
    def seal_login(
        self, principal_id: str, login: str, *, scheme: int = MASTER_ONLY, secret: bytes | None = None
    ) -> bytes:
        ring = self.subject_keyring(principal_id, scheme, secret=secret, create=True)
        return ring.seal(login.encode("utf-8"), aad=crypto.principal_login_aad(principal_id=principal_id))

    def open_login(
        self, principal_id: str, sealed: bytes, *, scheme: int = MASTER_ONLY, secret: bytes | None = None
    ) -> str:
        ring = self.subject_keyring(principal_id, scheme, secret=secret)
        try:
            plain = ring.unseal(bytes(sealed), aad=crypto.principal_login_aad(principal_id=principal_id))
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None
        return plain.decode("utf-8")

    def login_index(self, normalised: str, *, version: int | None = None) -> tuple[int, str]:
        """(master key version, hex blind index) of a normalised login, under the current version by default."""
        ring = self.keyring
        version = ring.current_version if version is None else version
        key = crypto.blind_index_key(ring, version, purpose=LOGIN_INDEX_PURPOSE)
        return version, crypto.blind_index(key, normalised.encode("utf-8")).hex()

    def pseudonym(self, subject_id: str, requester_id: str, *, version: int | None = None) -> tuple[int, str]:
        """(master key version, pairwise pseudonym) of a resident for a requester (crypto.pairwise_pseudonym)."""
        ring = self.keyring
        version = ring.current_version if version is None else version
        key = crypto.blind_index_key(ring, version, purpose=crypto.PSEUDONYM_PURPOSE)
        return version, crypto.pairwise_pseudonym(key, subject_id=subject_id, requester_id=requester_id)

    def login_index_candidates(self, normalised: str) -> dict[str, int]:
        """The login's blind index under every master key version in the keyring: index -> version."""
        return {
            index: version
            for version, index in (self.login_index(normalised, version=v) for v in self.keyring.versions)
        }

    def seal_totp_secret(self, principal_id: str, secret: bytes) -> bytes:
        """Seal a TOTP secret under the master keyring alone: it is needed at every sign-in."""
        return self.keyring.seal(secret, aad=crypto.totp_secret_aad(principal_id=principal_id))

    def open_totp_secret(self, principal_id: str, sealed: bytes) -> bytes:
        try:
            return self.keyring.unseal(bytes(sealed), aad=crypto.totp_secret_aad(principal_id=principal_id))
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None

    # -- subject keys ---------------------------------------------------------
    def create_subject_key(
        self, session: Session, subject_id: str, *, now: datetime, version: int | None = None, uses: int = 0
    ) -> SubjectKey:
        if version is None:
            version = 1 + (
                session.scalar(select(func.max(SubjectKey.version)).where(SubjectKey.subject_id == subject_id)) or 0
            )
        scheme = self.new_scheme()
        ring = self.subject_keyring(subject_id, scheme, create=True)
        row = SubjectKey(
            subject_id=subject_id,
            version=version,
            wrapped=crypto.wrap_key(ring, crypto.new_key(), subject_id=subject_id, version=version),
            master_key_version=ring.current_version,
            created_at=now,
            wrap_scheme=scheme,
            uses=uses,
        )
        session.add(row)
        session.flush()
        return row

    def unwrap(self, row: SubjectKey, *, secret: bytes | None = None) -> bytes:
        return self._unwrap(row.subject_id, row.version, row.wrap_scheme, row.wrapped, secret=secret)

    def _unwrap(
        self, subject_id: str, version: int, scheme: int, wrapped: bytes, *, secret: bytes | None = None
    ) -> bytes:
        try:
            ring = self.subject_keyring(subject_id, scheme, secret=secret)
            return crypto.unwrap_key(ring, wrapped, subject_id=subject_id, version=version)
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None

    def _subject_key(self, session: Session, subject_id: str, version: int) -> bytes:
        """The unwrapped key ``version`` of ``subject_id``, unwrapped once per transaction of ``session``.

        A read opens its content and its title under the same key: the key
        row, the subject's secret (a transaction on the secret store) and the
        unwrapping are fetched and done once, and kept in the session only
        until its transaction ends (``_forget_at_transaction_end``).
        """
        memo: dict[tuple[str, int], bytes] = session.info.setdefault(_UNWRAPPED, {})
        key = memo.get((subject_id, version))
        if key is None:
            row = session.connection().execute(_KEY_ROW, {"subject_id": subject_id, "version": version}).first()
            if row is None:
                raise RecordUnreadable()
            key = memo[(subject_id, version)] = self._unwrap(subject_id, version, row.wrap_scheme, row.wrapped)
        return key

    def _take_use(self, session: Session, subject_id: str, uses: int = 1) -> int:
        """Count ``uses`` seals against the newest key version, starting a new version at the limit.

        The conditional UPDATE is the check and the count at once; on
        PostgreSQL its row lock orders concurrent sealers. The usual case is
        one statement (``_TAKE_USES``: the newest version found by a subquery);
        when it matches nothing (the newest version is used up, or the
        resident has no key) the newest version is looked up and, if used
        up, the next one started. Two writers that both find the newest
        version used up both try to insert the next one: the loser's insert
        fails inside a savepoint and it uses the winner's.
        """
        params = {"b_subject_id": subject_id, "b_uses": uses, "b_max_uses": self.max_uses}
        taken = session.connection().execute(_TAKE_USES, params).first()
        if taken is not None:
            return int(taken[0])
        for _ in range(8):
            version = session.scalar(select(func.max(SubjectKey.version)).where(SubjectKey.subject_id == subject_id))
            if version is None:
                raise RecordUnreadable()  # a resident without a key: nothing can be sealed for them
            taken = session.execute(
                update(SubjectKey)
                .where(
                    SubjectKey.subject_id == subject_id,
                    SubjectKey.version == version,
                    SubjectKey.uses + uses <= self.max_uses,
                )
                .values(uses=SubjectKey.uses + uses)
                .returning(SubjectKey.version)
                .execution_options(synchronize_session=False)
            ).first()
            if taken is not None:
                return version
            now = self.clock()
            try:
                with session.begin_nested():
                    row = self.create_subject_key(session, subject_id, now=now, version=version + 1, uses=uses)
            except IntegrityError:
                continue  # another writer started the next version first: use it
            emit(
                session,
                DomainEvent(
                    kind="subject-key.rotated",
                    occurred_at=now,
                    actor_id=SYSTEM_ACTOR,
                    subject_id=subject_id,
                    data={"version": version + 1, "retired_version": version, "uses": self.max_uses},
                ),
            )
            return row.version
        raise Conflict("The subject key is being replaced by another request; try again.")

    def seal_for_subject(self, session: Session, subject_id: str, plaintext: bytes, *, aad: bytes) -> bytes:
        return self.seal_many_for_subject(session, subject_id, [(plaintext, aad)])[0]

    def seal_many_for_subject(self, session: Session, subject_id: str, parts: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Seal each ``(plaintext, aad)`` under the subject's newest key, counted as that many uses at once."""
        version = self._take_use(session, subject_id, len(parts))
        key = self._subject_key(session, subject_id, version)
        return [crypto.seal(key, plaintext, key_id=version, aad=aad) for plaintext, aad in parts]

    def open_for_subject(self, session: Session, subject_id: str, sealed: bytes, *, aad: bytes) -> bytes:
        try:
            version = crypto.envelope_key_id(sealed)
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None
        # The header is not yet authenticated: a forged key id must not reach
        # the database as an out-of-range integer (PostgreSQL INTEGER is 31 bits).
        if not 1 <= version < 2**31:
            raise RecordUnreadable()
        key = self._subject_key(session, subject_id, version)
        try:
            return crypto.unseal(key, sealed, aad=aad)
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None


# The per-transaction memo of unwrapped subject keys, in ``Session.info``.
_UNWRAPPED = "civicvault.unwrapped_subject_keys"

# The key row a seal or an open needs, as one Core statement built once.
_keys = SubjectKey.__table__.c
_KEY_ROW = select(_keys.wrap_scheme, _keys.wrapped).where(
    _keys.subject_id == bindparam("subject_id"), _keys.version == bindparam("version")
)
# A seal's use count on the newest key version, if it has room: one Core statement (``KeyStore._take_use``).
_newest = SubjectKey.__table__.alias("newest")
_TAKE_USES = (
    update(cast(Table, SubjectKey.__table__))
    .where(
        _keys.subject_id == bindparam("b_subject_id"),
        _keys.version
        == select(func.max(_newest.c.version))
        .where(_newest.c.subject_id == bindparam("b_subject_id"))
        .scalar_subquery(),
        _keys.uses + bindparam("b_uses") <= bindparam("b_max_uses"),
    )
    .values(uses=_keys.uses + bindparam("b_uses"))
    .returning(_keys.version)
)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_transaction_end(session: Session, _transaction: SessionTransaction) -> None:
    """Unwrapped keys live no longer than the transaction that unwrapped them.

    The end of a savepoint clears them too: one rolled back may have taken a
    key version with it that another writer then creates with another key.
    """
    session.info.pop(_UNWRAPPED, None)


def seal_text(keys: KeyStore, session: Session, *, kind: str, object_id: str, subject_id: str, text: str) -> bytes:
    """Seal a free-text field under the subject's key."""
    aad = crypto.sealed_text_aad(kind=kind, object_id=object_id, subject_id=subject_id)
    return keys.seal_for_subject(session, subject_id, text.encode("utf-8"), aad=aad)


def open_text(keys: KeyStore, session: Session, *, kind: str, object_id: str, subject_id: str, sealed: bytes) -> str:
    aad = crypto.sealed_text_aad(kind=kind, object_id=object_id, subject_id=subject_id)
    return keys.open_for_subject(session, subject_id, sealed, aad=aad).decode("utf-8")
