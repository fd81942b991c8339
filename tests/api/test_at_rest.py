"""Nothing personal is stored in plaintext: not in the SQLite file, not in its WAL."""

import secrets
from pathlib import Path

import pytest
from sqlalchemy import select

from vault.storage.models import RecordVersion


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("inspects the SQLite file itself")
    return Path(database_url.removeprefix("sqlite:///"))


def forms(marker: str) -> list[bytes]:
    """The marker as it could appear on disk: UTF-8, UTF-16 either way, hex."""
    return [marker.encode(), marker.encode("utf-16-le"), marker.encode("utf-16-be"), marker.encode().hex().encode()]


def scan(path: Path, markers: list[str]) -> list[str]:
    data = path.read_bytes() if path.exists() else b""
    return [m for m in markers if any(form in data for form in forms(m))]


def test_markers_never_reach_the_database_file_or_its_wal(client, make_actor, vault_, sqlite_only):
    name_marker = f"NAMEMARK{secrets.token_hex(4)}"
    resident = make_actor("resident", name_marker)
    markers = [name_marker]
    for i in range(30):
        content_marker = f"CONTENTMARK{i}{secrets.token_hex(4)}"
        title_marker = f"TITLEMARK{i}{secrets.token_hex(4)}"
        markers += [content_marker, title_marker]
        response = client.post(
            f"/api/v1/subjects/{resident.id}/records",
            json={
                "category": "health.notes",
                "title": title_marker,
                "content": {"note": content_marker, "nested": {"list": [content_marker, "Ünïcode " + content_marker]}},
            },
            headers=resident.auth,
        )
        assert response.status_code == 201
        record_id = response.get_json()["id"]
        update_marker = f"UPDATEMARK{i}{secrets.token_hex(4)}"
        markers.append(update_marker)
        client.put(f"/api/v1/records/{record_id}", json={"content": {"note": update_marker}}, headers=resident.auth)

    wal = sqlite_only.with_name(sqlite_only.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0, "the test must see the WAL before it is checkpointed"
    # The markers are there to be found when read through the API ...
    listing = client.get(f"/api/v1/subjects/{resident.id}/records", headers=resident.auth).get_json()
    assert {item["title"] for item in listing["items"]} <= set(markers)
    # ... and absent from every byte on disk, before and after the WAL is folded in.
    assert scan(sqlite_only, markers) == []
    assert scan(wal, markers) == []
    with vault_.transaction() as session:
        assert len(session.scalars(select(RecordVersion)).all()) == 60
    vault_.engine.dispose()
    assert scan(sqlite_only, markers) == []
    assert scan(wal, markers) == []


def test_the_scan_would_find_a_plaintext_marker(sqlite_only, vault_):
    """Guard against a scan that can never fail: a marker written in clear is found."""
    from sqlalchemy import text

    marker = f"CLEARMARK{secrets.token_hex(4)}"
    with vault_.engine.begin() as connection:
        connection.execute(text("CREATE TABLE leak (v TEXT)"))
        connection.execute(text("INSERT INTO leak VALUES (:v)"), {"v": marker})
    wal = sqlite_only.with_name(sqlite_only.name + "-wal")
    assert scan(wal, [marker]) == [marker] or scan(sqlite_only, [marker]) == [marker]
