"""Each flag rule fires on a crafted scenario and stays silent on normal traffic (pure rules, no database)."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from vault.compliance.audit_flags import Seen, evaluate
from vault.core.config import FlagThresholds, Settings
from vault.core.errors import ConfigError

T = datetime(2026, 11, 20, tzinfo=UTC)
LIMITS = FlagThresholds()
_index = itertools.count()


def read(at, actor="p-clinic", subject="p-res", *, grant="g-1", basis="grant", **data):
    return Seen(
        ledger_index=next(_index),
        occurred_at=at,
        kind="access.permitted",
        actor_id=actor,
        subject_id=subject,
        data={
            "action": "read",
            "basis": basis,
            "grant_id": grant if basis == "grant" else None,
            "purpose": "treatment",
            **data,
        },
    )


def refused(at, actor="p-clinic", subject="p-res", reason="no-grant"):
    return Seen(
        ledger_index=next(_index),
        occurred_at=at,
        kind="access.refused",
        actor_id=actor,
        subject_id=subject,
        data={"action": "read", "reason": reason, "purpose": "treatment"},
    )


def declared(at, declaration="b-1", actor="p-clinic", subject="p-res"):
    return Seen(
        ledger_index=next(_index),
        occurred_at=at,
        kind="break-glass.declared",
        actor_id=actor,
        subject_id=subject,
        data={"break_glass_id": declaration, "flagged": True},
    )


def flags(events, *, since=T, until=T + timedelta(days=1), limits=LIMITS, acknowledged=(), grant_ends=None):
    ends = {"g-1": T + timedelta(days=60)} if grant_ends is None else grant_ends
    return evaluate(events, since=since, until=until, limits=limits, acknowledged=set(acknowledged), grant_ends=ends)


def normal_traffic() -> list[Seen]:
    """Ten days of five clinics reading steadily, with the odd refusal, far from any grant's end."""
    events = []
    start = T - timedelta(days=9)
    for day in range(10):
        for clinic in range(5):
            for n in range(25 + 5 * clinic):  # each clinic its own steady volume, above the minimum count
                events.append(
                    read(
                        start + timedelta(days=day, hours=8, minutes=20 * n + clinic),
                        actor=f"p-c{clinic}",
                        subject=f"p-r{n}",
                    )
                )
            events.append(refused(start + timedelta(days=day, hours=9 + 3 * clinic), actor=f"p-c{clinic}"))
            events.append(
                refused(
                    start + timedelta(days=day, hours=10 + 3 * clinic), actor=f"p-c{clinic}", reason="wrong-purpose"
                )
            )
    events += [
        read(T + timedelta(hours=h), actor="p-resident", subject="p-resident", basis="self") for h in range(23)
    ]  # own records
    return events


def test_normal_traffic_raises_no_flag():
    assert flags(normal_traffic()) == []
    # Every day of the ten, including the first ones with little history.
    assert flags(normal_traffic(), since=T - timedelta(days=9)) == []


def test_break_glass_use_is_flagged_with_its_reads():
    events = [
        declared(T + timedelta(hours=1)),
        read(T + timedelta(hours=1, minutes=5), basis="break-glass", break_glass_id="b-1"),
        read(T + timedelta(hours=2), basis="break-glass", break_glass_id="b-1"),
    ]
    [flag] = flags(normal_traffic() + events)
    assert (flag.rule, flag.principal_id, flag.subject_id, flag.count) == ("break-glass", "p-clinic", "p-res", 3)
    assert flag.detail == {"break_glass_id": "b-1", "reads": 2, "acknowledged": False}
    assert flag.ledger_indices == tuple(e.ledger_index for e in events)
    assert flags(events, acknowledged={"b-1"})[0].detail["acknowledged"] is True
    assert flags(events, since=T + timedelta(hours=3)) == []  # declared before the range


def test_a_burst_of_refusals_is_flagged():
    burst = [refused(T + timedelta(hours=5, minutes=2 * n), subject=f"p-r{n}") for n in range(5)]  # 5 within 8 minutes
    [flag] = flags(normal_traffic() + burst)
    assert (flag.rule, flag.principal_id, flag.count, flag.subject_id) == ("refusal-burst", "p-clinic", 5, None)
    assert flag.detail == {"subjects": 5, "reasons": ["no-grant"], "minutes": 8.0}
    assert flag.first_at == burst[0].occurred_at and flag.last_at == burst[-1].occurred_at


@pytest.mark.parametrize("count, minutes_apart, fires", [(4, 1, False), (5, 3, False), (5, 2.5, True), (12, 1, True)])
def test_refusal_bursts_need_n_within_w_minutes(count, minutes_apart, fires):
    burst = [refused(T + timedelta(hours=5, minutes=minutes_apart * n)) for n in range(count)]
    found = flags(burst)
    assert [f.rule for f in found] == (["refusal-burst"] if fires else [])
    if fires:
        assert found[0].count == count


def test_separate_bursts_are_separate_flags_and_thresholds_are_configurable():
    bursts = [refused(T + timedelta(hours=h, minutes=n)) for h in (2, 6) for n in range(5)]
    assert [f.count for f in flags(bursts)] == [5, 5]
    three = [refused(T + timedelta(hours=3, minutes=n)) for n in range(3)]
    assert flags(three) == []
    assert [f.rule for f in flags(three, limits=FlagThresholds(refusal_count=3))] == ["refusal-burst"]


def _history(per_day: int, days: int, actor="p-clinic") -> list[Seen]:
    return [
        read(T - timedelta(days=d) + timedelta(minutes=30 * n), actor=actor, subject=f"p-r{n}")
        for d in range(1, days + 1)
        for n in range(per_day)
    ]


def test_reads_far_above_the_usual_volume_are_flagged():
    usual = _history(per_day=10, days=7)
    spike = [read(T + timedelta(hours=1, minutes=n), subject=f"p-r{n % 40}") for n in range(60)]
    [flag] = flags(usual + spike)
    assert (flag.rule, flag.principal_id, flag.count, flag.subject_id) == ("read-volume", "p-clinic", 60, None)
    assert flag.detail["usual"] == 10.0 and flag.detail["factor"] == 5.0 and flag.detail["subjects"] == 40
    assert (
        flag.detail["window_start"] == "2026-11-20T00:00:00.000Z"
        and flag.detail["window_end"] == "2026-11-21T00:00:00.000Z"
    )
    # 45 reads is busy but within 5 x 10: silent.
    assert flags(usual + spike[:45]) == []


def test_new_grantees_do_not_fire_until_they_have_a_usual_volume():
    busy_first_day = [read(T + timedelta(minutes=n)) for n in range(200)]
    assert flags(busy_first_day) == []
    # 19 reads of history (below the minimum of 20) is not yet a usual volume; 21 is.
    thin = [read(T - timedelta(days=3) + timedelta(minutes=n)) for n in range(19)]
    assert flags(thin + busy_first_day) == []
    enough = [read(T - timedelta(days=3) + timedelta(minutes=n)) for n in range(21)]
    [flag] = flags(enough + busy_first_day)
    assert (
        flag.rule == "read-volume" and flag.count == 200 and flag.detail["usual"] == 7.0
    )  # 21 reads over the 3 days it existed
    assert flags(enough + busy_first_day, limits=FlagThresholds(volume_min_reads=30)) == []


def test_reads_near_and_after_grant_expiry_are_flagged():
    ends = T + timedelta(hours=20)
    near = [read(T + timedelta(hours=h)) for h in (1, 10, 19)]  # 19, 10 and 1 hours before the end
    after = [refused(T + timedelta(hours=21), reason="expired"), refused(T + timedelta(hours=22), reason="expired")]
    found = flags(near + after, grant_ends={"g-1": ends})
    assert [f.rule for f in found] == ["near-expiry", "after-expiry"]
    assert found[0].count == 3 and found[0].detail == {
        "grant_id": "g-1",
        "expires_at": "2026-11-20T20:00:00.000Z",
        "hours": 24,
    }
    assert found[1].count == 2 and found[1].principal_id == "p-clinic"
    tighter = flags(near, grant_ends={"g-1": ends}, limits=FlagThresholds(expiry_hours=2))
    assert tighter[0].count == 1 and tighter[0].ledger_indices == (near[2].ledger_index,)
    assert flags(near, grant_ends={"g-1": T + timedelta(days=3)}) == []


def test_thresholds_come_from_the_environment(tmp_path):
    env = {
        "CIVICVAULT_FLAG_REFUSAL_COUNT": "3",
        "CIVICVAULT_FLAG_REFUSAL_MINUTES": "30",
        "CIVICVAULT_FLAG_VOLUME_WINDOW_HOURS": "6",
        "CIVICVAULT_FLAG_VOLUME_BASELINE_WINDOWS": "28",
        "CIVICVAULT_FLAG_VOLUME_FACTOR": "2.5",
        "CIVICVAULT_FLAG_VOLUME_MIN_READS": "50",
        "CIVICVAULT_FLAG_EXPIRY_HOURS": "72",
    }
    assert Settings.from_env(tmp_path, environ=env).flags == FlagThresholds(3, 30, 6, 28, 2.5, 50, 72)
    assert Settings.from_env(tmp_path, environ={}).flags == FlagThresholds()
    for name, bad in (
        ("CIVICVAULT_FLAG_REFUSAL_COUNT", "1"),
        ("CIVICVAULT_FLAG_VOLUME_FACTOR", "0"),
        ("CIVICVAULT_FLAG_VOLUME_FACTOR", "nan"),
        ("CIVICVAULT_FLAG_VOLUME_FACTOR", "lots"),
        ("CIVICVAULT_FLAG_EXPIRY_HOURS", "-4"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(tmp_path, environ={name: bad})
