"""The compliance pages (api/web/compliance.py), test client: what they show, what they log, who sees them."""

import csv
import io
import re

import pytest
from sqlalchemy import select

from tests.api.conftest import add_record
from vault.storage.models import BreakGlassReview, Event

PAGES = (
    "/compliance/",
    "/compliance/trail",
    "/compliance/trail?kind=access.*",
    "/compliance/trail.csv",
    "/compliance/break-glass",
    "/compliance/flags",
    "/compliance/lookup",
    "/compliance/ledger",
)
REASON = "Unconscious on arrival, allergy status needed"


@pytest.fixture
def scene(app, clock, make_actor, person, signed_in):
    """A resident with records, a clinic that declared break-glass and read under it, a signed-in officer."""
    api = app.test_client()
    amina = make_actor("resident", "Amina Yusuf")
    tomasz = make_actor("resident", "Tomasz Nowak")
    clinic = make_actor("clinic", "Riverside Clinic")
    allergies = add_record(api, amina, "health.allergies")
    answer = api.post(f"/api/v1/subjects/{amina.id}/break-glass", json={"reason": REASON}, headers=clinic.auth)
    assert answer.status_code == 201, answer.get_json()
    glass = answer.get_json()["id"]
    assert api.get(f"/api/v1/records/{allergies}?purpose=emergency", headers=clinic.auth).status_code == 200
    # A refusal: the clinic has nothing of Tomasz's.
    assert api.get(f"/api/v1/subjects/{tomasz.id}/records?purpose=treatment", headers=clinic.auth).status_code in (
        403,
        404,
    )
    clock.advance(seconds=1)  # ranges end now, exclusive: the events above are in the past
    officer = person("compliance", "Dana Whitfield")
    client = signed_in(officer)

    class Scene:
        pass

    s = Scene()
    s.api, s.amina, s.tomasz, s.clinic, s.glass, s.record = api, amina, tomasz, clinic, glass, allergies
    s.officer, s.client = officer, client
    return s


def events_of(vault_, kind: str) -> list[Event]:
    with vault_.read_transaction() as session:
        rows = list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.ledger_index)))
        session.expunge_all()
    return rows


def text(answer) -> str:
    return answer.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_the_officer(scene, path):
    answer = scene.client.get(path)
    assert answer.status_code == 200, text(answer)[:800]
    if path.endswith(".csv"):
        assert answer.mimetype == "text/csv"
        return
    body = text(answer)
    assert body.count("<h1") == 1
    assert "style=" not in body and "<script>" not in body


@pytest.mark.parametrize("role", ["resident", "clinic", "landlord", "admin"])
def test_other_roles_get_404_on_every_compliance_page(scene, person, signed_in, role):
    client = signed_in(person(role))
    for path in (*PAGES, f"/compliance/residents/{scene.amina.id}/disclosures"):
        assert client.get(path).status_code == 404, path
    answer = client.post(
        f"/compliance/break-glass/{scene.glass}/acknowledge", data={"note": "x", "csrf_token": client.csrf}
    )
    assert answer.status_code == 404
    answer = client.post("/compliance/lookup", data={"by": "name", "value": "Amina Yusuf", "csrf_token": client.csrf})
    assert answer.status_code == 404


def test_signed_out_goes_to_sign_in(app):
    answer = app.test_client().get("/compliance/trail")
    assert answer.status_code == 302 and "/signin" in answer.headers["Location"]


def test_home_counts_and_charts(scene):
    body = text(scene.client.get("/compliance/"))
    reviews = re.search(r'card-reviews">Break-glass reviews</h2>\s*<p><span class="cv-count">(\d+)', body)
    assert reviews and reviews.group(1) == "1"
    day = re.search(r'<span class="cv-count">(\d+)</span> permitted, <span class="cv-count">(\d+)</span> refused', body)
    assert day and int(day.group(1)) >= 1 and int(day.group(2)) >= 1
    assert body.count('role="img"') >= 2 and "Show the numbers as a table" in body
    # The break-glass flag of the last 7 days is open (not yet acknowledged).
    flags = re.search(r'card-flags">Open flags</h2>\s*<p><span class="cv-count">(\d+)', body)
    assert flags and int(flags.group(1)) >= 1


def test_trail_search_filters_and_is_logged_once_per_search(scene, vault_):
    before = len(events_of(vault_, "trail.searched"))
    body = text(scene.client.get(f"/compliance/trail?actor_id={scene.clinic.id}&outcome=refused"))
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(\d+)</th>", body)
    assert rows, body[:2000]
    with vault_.read_transaction() as session:
        for index in rows:
            event = session.get(Event, int(index))
            assert event.actor_id == scene.clinic.id and event.outcome == "refused"
    assert "Matching events over time, by outcome" in body and "Top 5 actors" in body
    searched = events_of(vault_, "trail.searched")
    assert len(searched) == before + 1 and searched[-1].actor_id == scene.officer.id

    permitted = text(scene.client.get(f"/compliance/trail?actor_id={scene.clinic.id}&outcome=permitted"))
    assert set(re.findall(r"<tr>\s*<th scope=\"row\">(\d+)</th>", permitted)).isdisjoint(rows)


def test_trail_pages_follow_the_cursor(scene, vault_):
    for _ in range(3):
        scene.api.get(f"/api/v1/records/{scene.record}", headers=scene.amina.auth)
    first = text(scene.client.get(f"/compliance/trail?subject_id={scene.amina.id}"))
    total = int(re.search(r"<strong>(\d+)</strong> matching event", first).group(1))
    assert total >= 5
    from api.web import compliance

    if total <= compliance.PAGE_SIZE:
        assert "Next page" not in first
    searched = len(events_of(vault_, "trail.searched"))
    # A later page of the same search (its as_of) is not logged again.
    as_of = re.search(r"as_of=(\d+)", first).group(1)
    again = scene.client.get(f"/compliance/trail?subject_id={scene.amina.id}&as_of={as_of}&after=0")
    assert again.status_code == 200
    assert len(events_of(vault_, "trail.searched")) == searched


@pytest.mark.parametrize(
    "query",
    ["subject_id=%3Cscript%3E", "kind=bogus.kind", "outcome=maybe", "from=yesterday", "from=2026-02-02&to=2026-01-01"],
)
def test_malformed_searches_are_a_400_page(scene, query):
    answer = scene.client.get(f"/compliance/trail?{query}")
    assert answer.status_code == 400
    assert "usa-error-message" in text(answer)


def test_a_hand_made_cursor_is_a_400_page(scene):
    assert scene.client.get("/compliance/trail?kind=access.*&after=-3").status_code == 400


def test_csv_export_has_the_header_and_the_matching_rows(scene, vault_):
    answer = scene.client.get(f"/compliance/trail.csv?subject_id={scene.amina.id}&kind=access.*")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(text(answer))))
    assert rows[0][:5] == ["ledger_index", "leaf_hash", "occurred_at", "kind", "outcome"]
    assert len(rows) >= 3
    with vault_.read_transaction() as session:
        expected = [
            str(e.ledger_index)
            for e in session.scalars(
                select(Event)
                .where(Event.subject_id == scene.amina.id, Event.kind.like("access.%"))
                .order_by(Event.ledger_index)
            )
            if e.ledger_index < int(answer.headers["X-CivicVault-As-Of"])
        ]
    assert [row[0] for row in rows[1:]] == expected
    assert all(row[6] == scene.amina.id for row in rows[1:])
    assert '"format":"csv"' in events_of(vault_, "trail.searched")[-1].data


def test_break_glass_queue_shows_the_declaration_and_what_was_read(scene, vault_):
    body = text(scene.client.get("/compliance/break-glass"))
    assert REASON in body and "Riverside Clinic" in body and scene.amina.id in body
    assert f"What was read under declaration {scene.glass}" in body and "health.allergies" in body
    # Showing the reason is logged, as the API's queue logs it.
    opened = events_of(vault_, "text.opened")
    assert opened and opened[-1].actor_id == scene.officer.id and opened[-1].subject_id == scene.amina.id


def test_acknowledge_needs_csrf(scene, vault_):
    answer = scene.client.post(f"/compliance/break-glass/{scene.glass}/acknowledge", data={"note": "Checked."})
    assert answer.status_code == 403
    with vault_.read_transaction() as session:
        assert session.get(BreakGlassReview, scene.glass) is None


def form_token(body: str, action: str) -> str:
    """The CSRF token inside the form posting to ``action`` (as a browser would send it)."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', body, re.S)
    assert form, action
    token = re.search(r'name="csrf_token" value="([^"]*)"', form.group(1))
    assert token and token.group(1), "the form carries no CSRF token"
    return token.group(1)


def test_acknowledge_records_the_note(scene, vault_):
    note = "Confirmed with the ward: patient <b>unconscious</b> on arrival."
    action = f"/compliance/break-glass/{scene.glass}/acknowledge"
    token = form_token(text(scene.client.get("/compliance/break-glass")), action)
    answer = scene.client.post(action, data={"note": note, "csrf_token": token})
    assert answer.status_code == 303 and "notice=acknowledged" in answer.headers["Location"]
    with vault_.read_transaction() as session:
        review = session.get(BreakGlassReview, scene.glass)
        assert review is not None and review.reviewer_id == scene.officer.id
    acknowledged = events_of(vault_, "break-glass.acknowledged")
    assert acknowledged[-1].actor_id == scene.officer.id and scene.glass in acknowledged[-1].data
    body = text(scene.client.get(answer.headers["Location"]))
    assert "The break-glass access is acknowledged." in body
    assert "Confirmed with the ward: patient &lt;b&gt;unconscious&lt;/b&gt; on arrival." in body
    assert "No emergency access is waiting for review." in body
    # Once only: a second acknowledgement is the API's 409.
    again = scene.client.post(
        f"/compliance/break-glass/{scene.glass}/acknowledge", data={"note": "again", "csrf_token": scene.client.csrf}
    )
    assert again.status_code == 409


def test_acknowledge_without_a_note_is_a_400_page_and_nothing_changes(scene, vault_):
    answer = scene.client.post(
        f"/compliance/break-glass/{scene.glass}/acknowledge", data={"note": "   ", "csrf_token": scene.client.csrf}
    )
    assert answer.status_code == 400 and "An acknowledgement needs a note." in text(answer)
    with vault_.read_transaction() as session:
        assert session.get(BreakGlassReview, scene.glass) is None


def test_acknowledge_an_unknown_declaration_is_404(scene):
    answer = scene.client.post(
        "/compliance/break-glass/b-doesnotexist/acknowledge", data={"note": "x", "csrf_token": scene.client.csrf}
    )
    assert answer.status_code == 404


def test_flags_list_the_break_glass_use_with_a_way_to_review_it(scene):
    body = text(scene.client.get("/compliance/flags"))
    assert "Break-glass use" in body and f"#review-{scene.glass}" in body and "Search these events" in body
    only = text(scene.client.get("/compliance/flags?rule=refusal-burst"))
    assert "Break-glass use</th>" not in only
    assert scene.client.get("/compliance/flags?rule=nonsense").status_code == 400
    assert scene.client.get("/compliance/flags?from=2020-01-01&to=2026-01-01").status_code == 400  # over a year


def look_up(scene, by, value):
    token = form_token(text(scene.client.get("/compliance/lookup")), "/compliance/lookup")
    return scene.client.post("/compliance/lookup", data={"by": by, "value": value, "csrf_token": token})


def test_look_up_by_name_is_ledgered_hit(scene, vault_):
    before = len(events_of(vault_, "resident.looked-up"))
    answer = look_up(scene, "name", "  amina   YUSUF ")
    body = text(answer)
    assert answer.status_code == 200 and scene.amina.id in body
    assert f"/compliance/residents/{scene.amina.id}/disclosures" in body
    found = events_of(vault_, "resident.looked-up")
    assert len(found) == before + 1
    assert found[-1].actor_id == scene.officer.id and found[-1].subject_id == scene.amina.id
    assert "amina" not in found[-1].data.lower() and '"by":"name"' in found[-1].data


def test_look_up_miss_is_ledgered_too(scene, vault_):
    before = len(events_of(vault_, "resident.looked-up"))
    body = text(look_up(scene, "name", "Amina"))  # part of a name finds nothing
    assert "No resident has that name." in body
    found = events_of(vault_, "resident.looked-up")
    assert len(found) == before + 1 and found[-1].subject_id is None and '"found":false' in found[-1].data


def test_look_up_by_login(scene, vault_, person):
    resident = person("resident", "Grace Okafor", login="grace@example.org")
    body = text(look_up(scene, "login", "Grace@Example.org"))
    assert resident.id in body and "Grace Okafor" in body
    assert events_of(vault_, "resident.looked-up")[-1].subject_id == resident.id
    # Another role's login is not a resident: a miss.
    clinic = person("clinic", "Harbour Clinic", login="harbour-clinic")
    body = text(look_up(scene, "login", clinic.login))
    assert clinic.id not in body and "No resident has that login." in body


def test_look_up_shows_in_the_residents_access_log(scene):
    look_up(scene, "name", "Amina Yusuf")
    log = scene.api.get(f"/api/v1/subjects/{scene.amina.id}/access-log", headers=scene.amina.auth).get_json()
    assert log["items"][0]["kind"] == "resident.looked-up" and log["items"][0]["action"] == "look-up"
    assert log["items"][0]["outcome"] == "reviewed"


def test_look_up_needs_csrf_and_a_value(scene, vault_):
    before = len(events_of(vault_, "resident.looked-up"))
    assert scene.client.post("/compliance/lookup", data={"by": "name", "value": "Amina Yusuf"}).status_code == 403
    assert look_up(scene, "name", "  ").status_code == 400
    assert look_up(scene, "shoe-size", "42").status_code == 400
    assert len(events_of(vault_, "resident.looked-up")) == before


def test_disclosure_report_on_screen_and_as_csv(scene):
    body = text(scene.client.get(f"/compliance/residents/{scene.amina.id}/disclosures"))
    assert "Riverside Clinic" in body and scene.record in body
    answer = scene.client.get(f"/compliance/residents/{scene.amina.id}/disclosures?format=csv")
    assert answer.mimetype == "text/csv" and "attachment" in answer.headers["Content-Disposition"]
    assert scene.record in text(answer)


def test_disclosure_report_of_a_non_resident_or_unknown_is_404(scene):
    assert scene.client.get(f"/compliance/residents/{scene.clinic.id}/disclosures").status_code == 404
    assert scene.client.get("/compliance/residents/p-doesnotexist/disclosures").status_code == 404


def test_ledger_page_says_what_there_is(scene, vault_):
    body = text(scene.client.get("/compliance/ledger"))
    assert "No checkpoint has been signed yet." in body
    assert "No checkpoint has been anchored on a chain." in body
    assert "Not recorded" in body
    from crypto.bls import SigningKey
    from vault.ledger import checkpoints
    from vault.ledger import ledger as ledger_module

    with vault_.transaction() as session:
        made = checkpoints.sign_now(session, key=SigningKey(b"\x01" * 32), origin="test.vault", now=vault_.now())
        size = ledger_module.size(session)
    body = text(scene.client.get("/compliance/ledger"))
    assert (
        f"<dd>{made.tree_size}</dd>" in body
        and made.root_hash[:16] in body
        and made.root_hash not in body.replace(f'title="{made.root_hash}"', "")
    )
    assert "present" in body and size >= made.tree_size
