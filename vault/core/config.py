"""Settings from the environment (``CIVICVAULT_*``) and the ``--home`` option.

Nothing is read at import time; ``Settings.from_env`` is called by the CLI and
by whoever builds the Flask app. A missing master key is an error at start-up,
never replaced by a default.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crypto import Keyring
from vault.core.errors import ConfigError
from vault.core.keyfile import keyring_from_env, read_keyring

DEFAULT_HOME = "civicvault-data"
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# AES-GCM with random 96-bit nonces: at most 2^32 encryptions per key (NIST SP
# 800-38D, 8.3). A subject key is replaced after 2^28 seals, a factor of 16
# below the limit (docs/operations.md).
DEFAULT_SUBJECT_KEY_MAX_USES = 2**28


def _positive_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    value = env.get(name) or None
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < minimum:  # not '²' or '١٢'
        raise ConfigError(f"{name} must be a whole number, at least {minimum}.")
    return int(value)


def _origin(value: str) -> str:
    if not value.isprintable() or len(value) > 200 or any(ch.isspace() or ch == "+" for ch in value):
        raise ConfigError("CIVICVAULT_LEDGER_ORIGIN must be at most 200 printable characters, with no spaces or '+'.")
    return value


def _subject_key_max_uses(env: Mapping[str, str]) -> int:
    value = _positive_int(env, "CIVICVAULT_SUBJECT_KEY_MAX_USES", DEFAULT_SUBJECT_KEY_MAX_USES)
    if value > 2**32:
        raise ConfigError("CIVICVAULT_SUBJECT_KEY_MAX_USES must not exceed 2^32, the AES-GCM limit for random nonces.")
    return value


@dataclass(frozen=True)
class ConsentLimits:
    """Bounds on consent; every one is configurable (docs/consent.md)."""

    max_grant_days: int = 365  # CIVICVAULT_MAX_GRANT_DAYS
    default_grant_days: int = 30  # an approved request that names no end
    max_delegation_days: int = 365  # CIVICVAULT_MAX_DELEGATION_DAYS
    break_glass_minutes: int = 240  # CIVICVAULT_BREAK_GLASS_MINUTES


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name) or None
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < 1e6:  # also refuses nan and inf
        raise ConfigError(f"{name} must be a number greater than 0.")
    return number


@dataclass(frozen=True)
class FlagThresholds:
    """When the compliance flags fire (vault.audit_flags, docs/compliance.md)."""

    refusal_count: int = 5  # CIVICVAULT_FLAG_REFUSAL_COUNT: refusals of one principal ...
    refusal_minutes: int = 10  # CIVICVAULT_FLAG_REFUSAL_MINUTES: ... within this many minutes
    volume_window_hours: int = 24  # CIVICVAULT_FLAG_VOLUME_WINDOW_HOURS: the window whose reads are counted
    volume_baseline_windows: int = (
        7  # CIVICVAULT_FLAG_VOLUME_BASELINE_WINDOWS: windows before it that make the usual volume
    )
    volume_factor: float = 5.0  # CIVICVAULT_FLAG_VOLUME_FACTOR: fires above factor x the usual volume ...
    volume_min_reads: int = 20  # CIVICVAULT_FLAG_VOLUME_MIN_READS: ... once the baseline windows hold this many reads
    expiry_hours: int = 24  # CIVICVAULT_FLAG_EXPIRY_HOURS: reads this close to their grant's end

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "FlagThresholds":
        return cls(
            refusal_count=_positive_int(env, "CIVICVAULT_FLAG_REFUSAL_COUNT", cls.refusal_count, minimum=2),
            refusal_minutes=_positive_int(env, "CIVICVAULT_FLAG_REFUSAL_MINUTES", cls.refusal_minutes),
            volume_window_hours=_positive_int(env, "CIVICVAULT_FLAG_VOLUME_WINDOW_HOURS", cls.volume_window_hours),
            volume_baseline_windows=_positive_int(
                env, "CIVICVAULT_FLAG_VOLUME_BASELINE_WINDOWS", cls.volume_baseline_windows
            ),
            volume_factor=_positive_number(env, "CIVICVAULT_FLAG_VOLUME_FACTOR", cls.volume_factor),
            volume_min_reads=_positive_int(env, "CIVICVAULT_FLAG_VOLUME_MIN_READS", cls.volume_min_reads),
            expiry_hours=_positive_int(env, "CIVICVAULT_FLAG_EXPIRY_HOURS", cls.expiry_hours),
        )


# One rate limit as the ``limits`` library writes it ("20/minute", "10 per hour", "100 per 2 hours");
# several are joined with ";" ("10/minute;100/day") and all of them apply.
_RATE = re.compile(r"\s*[1-9][0-9]{0,8}\s*(?:/|per)\s*(?:[1-9][0-9]{0,5}\s*)?(?:second|minute|hour|day)s?\s*", re.ASCII)
_RATE_STORAGE_SCHEMES = ("memory://", "redis://", "rediss://", "redis+unix://", "redis+sentinel://", "redis+cluster://")


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or None
    if value is None:
        return default
    if not all(_RATE.fullmatch(part) for part in value.split(";")):
        raise ConfigError(f"{name} must be a rate such as '20/minute' or '10 per hour;50 per day'.")
    return value.strip()


def _rate_storage(env: Mapping[str, str]) -> str:
    value = env.get("CIVICVAULT_RATE_LIMIT_STORAGE") or None
    if value is None:
        return RateLimits.storage
    if not value.startswith(_RATE_STORAGE_SCHEMES):
        raise ConfigError("CIVICVAULT_RATE_LIMIT_STORAGE must be a redis:// (or rediss://) URL, or memory://.")
    return value


@dataclass(frozen=True)
class RateLimits:
    """Throttling at the HTTP edge (api/limits.py; docs/operations.md, "Rate limits").

    Counts live in ``storage``: Redis, shared by every worker and host that
    names the same server and ``key_prefix``, or the process's memory (each
    worker then counts on its own).
    """

    storage: str = "memory://"  # CIVICVAULT_RATE_LIMIT_STORAGE: redis://host:6379/0, or memory://
    key_prefix: str = "civicvault"  # CIVICVAULT_RATE_LIMIT_PREFIX: keeps vaults that share one Redis apart
    failed_auth: str = "20/minute"  # CIVICVAULT_RATE_LIMIT_FAILED_AUTH: failed authentications per client address
    failed_sign_in: str = "10/hour"  # CIVICVAULT_RATE_LIMIT_FAILED_SIGN_IN: failed sign-ins per login
    break_glass: str = "10/hour"  # CIVICVAULT_RATE_LIMIT_BREAK_GLASS: emergency declarations per clinic
    access_requests: str = "100/hour"  # CIVICVAULT_RATE_LIMIT_ACCESS_REQUESTS: access requests per requester
    erasure: str = "5/hour"  # CIVICVAULT_RATE_LIMIT_ERASURE: erasure attempts per caller
    share_codes: str = "20/hour"  # CIVICVAULT_RATE_LIMIT_SHARE_CODES: share-code redemptions per clinic or landlord
    attestations: str = "100/hour"  # CIVICVAULT_RATE_LIMIT_ATTESTATIONS: attestations asked for per caller

    @property
    def shared(self) -> bool:
        return not self.storage.startswith("memory://")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RateLimits":
        prefix = env.get("CIVICVAULT_RATE_LIMIT_PREFIX") or cls.key_prefix
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", prefix):
            raise ConfigError("CIVICVAULT_RATE_LIMIT_PREFIX must be 1 to 64 letters, digits or '_.:-'.")
        return cls(
            storage=_rate_storage(env),
            key_prefix=prefix,
            failed_auth=_rate(env, "CIVICVAULT_RATE_LIMIT_FAILED_AUTH", cls.failed_auth),
            failed_sign_in=_rate(env, "CIVICVAULT_RATE_LIMIT_FAILED_SIGN_IN", cls.failed_sign_in),
            break_glass=_rate(env, "CIVICVAULT_RATE_LIMIT_BREAK_GLASS", cls.break_glass),
            access_requests=_rate(env, "CIVICVAULT_RATE_LIMIT_ACCESS_REQUESTS", cls.access_requests),
            erasure=_rate(env, "CIVICVAULT_RATE_LIMIT_ERASURE", cls.erasure),
            share_codes=_rate(env, "CIVICVAULT_RATE_LIMIT_SHARE_CODES", cls.share_codes),
            attestations=_rate(env, "CIVICVAULT_RATE_LIMIT_ATTESTATIONS", cls.attestations),
        )


@dataclass(frozen=True)
class SequencerSettings:
    """How events get their ledger index (vault/ledger/sequencer.py; docs/ledger-format.md, "Sequencing")."""

    # CIVICVAULT_SEQUENCER: "server", the serving processes sequence (one at a time, through the
    # database); "external", only ``civicvault sequencer`` does, and servers wait for it.
    mode: str = "server"
    receipt_wait_ms: int = 2000  # CIVICVAULT_LEDGER_RECEIPT_WAIT_MS: how long a response waits for its index
    max_pending: int = 100_000  # CIVICVAULT_LEDGER_MAX_PENDING: beyond this backlog, actions are refused (503)
    pending_bound_seconds: int = 60  # CIVICVAULT_LEDGER_PENDING_BOUND: longer unsequenced is reported
    batch: int = 2000  # CIVICVAULT_SEQUENCER_BATCH: events sequenced per transaction at most

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SequencerSettings":
        mode = (env.get("CIVICVAULT_SEQUENCER") or cls.mode).strip().lower()
        if mode not in ("server", "external"):
            raise ConfigError("CIVICVAULT_SEQUENCER must be 'server' or 'external'.")
        return cls(
            mode=mode,
            receipt_wait_ms=_positive_int(env, "CIVICVAULT_LEDGER_RECEIPT_WAIT_MS", cls.receipt_wait_ms, minimum=0),
            max_pending=_positive_int(env, "CIVICVAULT_LEDGER_MAX_PENDING", cls.max_pending),
            pending_bound_seconds=_positive_int(env, "CIVICVAULT_LEDGER_PENDING_BOUND", cls.pending_bound_seconds),
            batch=_positive_int(env, "CIVICVAULT_SEQUENCER_BATCH", cls.batch),
        )


@dataclass(frozen=True)
class WebSessionSettings:
    """How long a signed-in browser stays signed in (vault/identity/web_sessions.py).

    The idle timeout is the automatic logoff of HIPAA (45 CFR 164.312(a)(2)(iii)):
    a session unused this long ends. The absolute limit ends every session
    this long after sign-in, however busy. The idle timeout may not exceed it.
    """

    idle_minutes: int = 15  # CIVICVAULT_SESSION_IDLE_MINUTES
    max_hours: int = 12  # CIVICVAULT_SESSION_MAX_HOURS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "WebSessionSettings":
        idle = _positive_int(env, "CIVICVAULT_SESSION_IDLE_MINUTES", cls.idle_minutes)
        most = _positive_int(env, "CIVICVAULT_SESSION_MAX_HOURS", cls.max_hours)
        if idle > 24 * 60:
            raise ConfigError("CIVICVAULT_SESSION_IDLE_MINUTES must be at most 1440 (a day).")
        if most > 30 * 24:
            raise ConfigError("CIVICVAULT_SESSION_MAX_HOURS must be at most 720 (30 days).")
        if idle > most * 60:
            raise ConfigError(
                "CIVICVAULT_SESSION_IDLE_MINUTES must not exceed CIVICVAULT_SESSION_MAX_HOURS (in minutes)."
            )
        return cls(idle_minutes=idle, max_hours=most)


DEFAULT_HSTS_SECONDS = 365 * 24 * 3600
DEFAULT_ATTESTATION_VALID_DAYS = 30
MAX_ATTESTATION_VALID_DAYS = 366


def _attestation_valid_days(env: Mapping[str, str]) -> int:
    days = _positive_int(env, "CIVICVAULT_ATTESTATION_VALID_DAYS", DEFAULT_ATTESTATION_VALID_DAYS)
    if days > MAX_ATTESTATION_VALID_DAYS:
        raise ConfigError(f"CIVICVAULT_ATTESTATION_VALID_DAYS must be at most {MAX_ATTESTATION_VALID_DAYS}.")
    return days


def _hsts(env: Mapping[str, str]) -> int | None:
    """CIVICVAULT_HSTS: unset or "off", no header; "on", one year; a whole number, that many seconds."""
    value = (env.get("CIVICVAULT_HSTS") or "off").strip().lower()
    if value == "off":
        return None
    if value == "on":
        return DEFAULT_HSTS_SECONDS
    if value.isascii() and value.isdigit() and int(value) <= 10 * DEFAULT_HSTS_SECONDS:
        return int(value)
    raise ConfigError("CIVICVAULT_HSTS must be 'on', 'off' or a max-age in seconds.")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    master_key: str | None = None  # CIVICVAULT_MASTER_KEY, when set
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    limits: ConsentLimits = ConsentLimits()
    ledger_origin: str = "civicvault"  # CIVICVAULT_LEDGER_ORIGIN: the first line of every checkpoint
    witness_threshold: int = 1  # CIVICVAULT_WITNESS_THRESHOLD: cosignatures a checkpoint needs to count as witnessed
    checkpoint_every: int = 1000  # CIVICVAULT_CHECKPOINT_EVERY: sign once this many entries are new
    checkpoint_seconds: int = (
        300  # CIVICVAULT_CHECKPOINT_SECONDS: or once this old, if anything is new; 0: never in the background
    )
    flags: FlagThresholds = FlagThresholds()  # CIVICVAULT_FLAG_*: compliance flag thresholds
    # Key management (docs/operations.md).
    subject_key_max_uses: int = (
        DEFAULT_SUBJECT_KEY_MAX_USES  # CIVICVAULT_SUBJECT_KEY_MAX_USES: seals per subject key version
    )
    secrets_url: str | None = None  # CIVICVAULT_SECRETS_DATABASE_URL: the erasable subject-secret store
    # The HTTP edge (api/): throttling, TLS and proxies (docs/operations.md, "Rate limits"; docs/api.md).
    rate_limits: RateLimits = RateLimits()  # CIVICVAULT_RATE_LIMIT_*
    hsts_seconds: int | None = None  # CIVICVAULT_HSTS: Strict-Transport-Security max-age; None: not sent
    trusted_proxies: int = 0  # CIVICVAULT_TRUSTED_PROXIES: reverse proxies whose X-Forwarded-For is believed
    sequencer: SequencerSettings = SequencerSettings()  # CIVICVAULT_SEQUENCER, CIVICVAULT_LEDGER_*
    web_sessions: WebSessionSettings = WebSessionSettings()  # CIVICVAULT_SESSION_*: sign-in sessions
    # CIVICVAULT_ATTESTATION_VALID_DAYS: an attestation's validity (validFrom to validUntil), in days
    attestation_valid_days: int = DEFAULT_ATTESTATION_VALID_DAYS

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("CIVICVAULT_HOME") or DEFAULT_HOME).expanduser().absolute()
        url = env.get("CIVICVAULT_DATABASE_URL") or f"sqlite:///{home_path / 'vault.db'}"
        max_grant_days = _positive_int(env, "CIVICVAULT_MAX_GRANT_DAYS", ConsentLimits.max_grant_days)
        limits = ConsentLimits(
            max_grant_days=max_grant_days,
            default_grant_days=min(ConsentLimits.default_grant_days, max_grant_days),
            max_delegation_days=_positive_int(env, "CIVICVAULT_MAX_DELEGATION_DAYS", ConsentLimits.max_delegation_days),
            break_glass_minutes=_positive_int(env, "CIVICVAULT_BREAK_GLASS_MINUTES", ConsentLimits.break_glass_minutes),
        )
        return cls(
            home=home_path,
            database_url=url,
            master_key=env.get("CIVICVAULT_MASTER_KEY") or None,
            max_request_bytes=_positive_int(
                env, "CIVICVAULT_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, minimum=1024
            ),
            limits=limits,
            ledger_origin=_origin(env.get("CIVICVAULT_LEDGER_ORIGIN") or "civicvault"),
            witness_threshold=_positive_int(env, "CIVICVAULT_WITNESS_THRESHOLD", 1),
            checkpoint_every=_positive_int(env, "CIVICVAULT_CHECKPOINT_EVERY", 1000),
            checkpoint_seconds=_positive_int(env, "CIVICVAULT_CHECKPOINT_SECONDS", 300, minimum=0),
            flags=FlagThresholds.from_env(env),
            subject_key_max_uses=_subject_key_max_uses(env),
            secrets_url=env.get("CIVICVAULT_SECRETS_DATABASE_URL") or None,
            rate_limits=RateLimits.from_env(env),
            hsts_seconds=_hsts(env),
            trusted_proxies=_positive_int(env, "CIVICVAULT_TRUSTED_PROXIES", 0, minimum=0),
            sequencer=SequencerSettings.from_env(env),
            web_sessions=WebSessionSettings.from_env(env),
            attestation_valid_days=_attestation_valid_days(env),
        )

    @property
    def secrets_database_url(self) -> str:
        """Where subject secrets live: never inside the main database (docs/operations.md)."""
        return self.secrets_url or f"sqlite:///{self.home / 'subject-secrets.db'}"

    @property
    def key_file(self) -> Path:
        return self.home / "master.key"

    @property
    def ledger_key_file(self) -> Path:
        return self.home / "ledger.key"

    @property
    def attestation_key_file(self) -> Path:
        return self.home / "attestation.key"

    def load_keyring(self) -> Keyring:
        """The master keyring, or ``ConfigError``: no key, no start."""
        if self.master_key is not None:
            return keyring_from_env(self.master_key)
        return read_keyring(self.key_file)
