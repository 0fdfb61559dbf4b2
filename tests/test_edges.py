"""Edge cases a review found: each test pins one fix of todo.py (access checked again inside the write, a newer
database refused, ids never given twice, an unknown stored time zone, long numbers in a route, copy-to of no
file, control characters in the calendar, a repeat kept when un-marked, a row gone meanwhile)."""

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from datetime import date

import icalendar
import pytest
from conftest import (
    PASSWORD,
    POSTGRES,
    ROOT,
    csrf_of,
    database_environ,
    login,
    opened,
    post,
    register,
    sqlite_only,
)

import todo

MISSING = 999_999  # a list id no test makes
FIRST_SCHEMA = ROOT / "tests" / "fixtures" / "sqlite-1057d3f.db"  # users.id without AUTOINCREMENT


# --- Helpers --------------------------------------------------------------------------


def rows(database, sql, *values):
    """Return every row a query gives, as tuples, read straight from the database."""
    with opened(database) as db:
        return [tuple(row) for row in db.execute(sql, values).fetchall()]


def change(database, sql, *values):
    """Run one statement on the database from another connection, and commit it."""
    with opened(database) as db, todo.transaction(db):
        db.execute(sql, values)


def user_id(database, username):
    """Return the account's id, read straight from the database."""
    return rows(database, "SELECT id FROM users WHERE username = ?", username)[0][0]


def list_state(database, list_id):
    """Return what a list holds: its counter and its items (no, title, done, due, repeat)."""
    counter = rows(database, "SELECT last_item_no FROM lists WHERE id = ?", list_id)
    items = rows(database, "SELECT no, title, done, due, repeat FROM items WHERE list_id = ? ORDER BY no", list_id)
    return counter, items


@contextmanager
def meanwhile(monkeypatch, database, sql, *values):
    """Within the block, another connection runs sql and commits just as a request opens its first write.

    That moment comes after every access check the request made before its write, and before
    the write itself: what a removal in another browser, at the wrong instant, looks like.
    """
    original, ran = todo.transaction, []

    @contextmanager
    def transaction(db, begin=None):
        if begin is None and not ran:  # a write's transaction, not a read's snapshot
            ran.append(sql)
            with opened(database) as other, original(other):
                other.execute(sql, values)
        with original(db, begin) as inside:
            yield inside

    monkeypatch.setattr(todo, "transaction", transaction)
    yield ran
    monkeypatch.setattr(todo, "transaction", original)


def send(app, path, **fields):
    """POST a form with the session's token, fetched before the block's change is armed."""
    return app.post(path, {"csrf_token": csrf_of(app.get("/")), **fields}, expect_errors=True)


@pytest.fixture
def shared(make_app, database):
    """Return (alice, bob, list id): alice's list Shared, shared with bob, holding #1 'one' and #2 'two' (done)."""
    alice, bob = make_app(), make_app()
    register(alice)
    register(bob, "bob")
    register(make_app(), "carol")
    answer = post(alice, "/lists", name="Shared")
    list_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    assert post(alice, f"/lists/{list_id}/members", username="bob").status_int == 303
    for title in ("one", "two"):
        assert post(bob, f"/lists/{list_id}/items", title=title).status_int == 303
    assert post(bob, f"/lists/{list_id}/items/2/toggle").status_int == 303
    return alice, bob, list_id


# --- 1. Access is checked again inside the write -------------------------------------

MEMBER_CHANGES = {  # what a member may do to a list: path under /lists/<id>, form
    "add": ("/items", {"title": "sneaked in"}),
    "toggle": ("/items/1/toggle", {}),
    "edit": ("/items/1/edit", {"title": "changed"}),
    "delete": ("/items/1/delete", {}),
    "clear-completed": ("/items/clear-completed", {}),
    "toggle-all": ("/items/toggle-all", {}),
}


@pytest.mark.parametrize("action", MEMBER_CHANGES)
def test_a_member_removed_between_the_check_and_the_write_changes_nothing(shared, database, monkeypatch, action):
    """Bob is removed (committed) after his request's first check, before its write: 404, list and counter kept."""
    _, bob, list_id = shared
    before = list_state(database, list_id)
    path, form = MEMBER_CHANGES[action]
    removal = "DELETE FROM members WHERE list_id = ? AND user_id = ?"
    with meanwhile(monkeypatch, database, removal, list_id, user_id(database, "bob")) as ran:
        answer = send(bob, f"/lists/{list_id}{path}", **form)
    assert ran, "the request never opened a write"
    assert answer.status_int == 404, answer.status
    assert todo.NO_SUCH_LIST in answer.text
    assert list_state(database, list_id) == before


LIST_CHANGES = {  # who does it, path under /lists/<id>, form
    **{action: ("bob", path, form) for action, (path, form) in MEMBER_CHANGES.items()},
    "leave": ("bob", "/leave", {}),
    "rename": ("alice", "/rename", {"name": "Renamed"}),
    "share": ("alice", "/members", {"username": "carol"}),
    "remove member": ("alice", "/members/remove", {"username": "bob"}),
    "delete list": ("alice", "/delete", {}),
}


@pytest.mark.parametrize("action", LIST_CHANGES)
def test_a_list_deleted_between_the_check_and_the_write_is_404(shared, database, monkeypatch, action):
    """The list is deleted in another browser after the request's first check, before its write: 404, nothing made."""
    alice, bob, list_id = shared
    who, path, form = LIST_CHANGES[action]
    with meanwhile(monkeypatch, database, "DELETE FROM lists WHERE id = ?", list_id) as ran:
        answer = send({"alice": alice, "bob": bob}[who], f"/lists/{list_id}{path}", **form)
    assert ran, "the request never opened a write"
    assert answer.status_int == 404, answer.status
    assert rows(database, "SELECT count(*) FROM items WHERE list_id = ?", list_id) == [(0,)]
    assert rows(database, "SELECT count(*) FROM members WHERE list_id = ?", list_id) == [(0,)]
    assert rows(database, "SELECT count(*) FROM lists WHERE id = ? OR name = 'Renamed'", list_id) == [(0,)]


# --- 2. A newer database is refused ---------------------------------------------------


def test_a_database_of_a_newer_schema_is_refused_at_start_and_left_as_it_is(make_app, database):
    """schema_version = SCHEMA_VERSION + 1: create_app exits with one line saying 'newer'; the version stays."""
    register(make_app())
    newer = str(todo.SCHEMA_VERSION + 1)
    change(database, "UPDATE settings SET value = ? WHERE name = 'schema_version'", newer)
    with pytest.raises(SystemExit) as stopped:
        todo.create_app(database_environ(database))
    message = str(stopped.value.code)
    assert "newer" in message and "\n" not in message, message
    assert rows(database, "SELECT value FROM settings WHERE name = 'schema_version'") == [(newer,)]
    assert rows(database, "SELECT username FROM users") == [("alice",)]


# --- 3. Ids are never given twice -----------------------------------------------------


@sqlite_only
def test_after_upgrading_the_first_schema_a_deleted_accounts_id_is_never_given_again(make_app, database):
    """The first schema's file, upgraded: delete the newest account, sign up: the new id is greater."""
    shutil.copyfile(FIRST_SCHEMA, database)
    app = make_app()
    newest = max(rows(database, "SELECT id, username FROM users"))
    assert newest[1] == "bob", newest
    assert login(app, "bob").status_int == 303
    assert post(app, "/account/delete", password=PASSWORD).status_int == 303
    assert not rows(database, "SELECT 1 FROM users WHERE username = 'bob'")
    register(app, "carol")
    assert user_id(database, "carol") > newest[0]


# --- 4. A stored time zone this machine does not know ---------------------------------


def test_a_stored_time_zone_this_machine_does_not_know_falls_back_to_the_sites(alice, database):
    """users.timezone = 'Mars/Base': /, /today and /account answer 200, and a repeating item still toggles."""
    assert post(alice, "/items", title="water", due=date.today().isoformat(), repeat="weekly").status_int == 303
    change(database, "UPDATE users SET timezone = 'Mars/Base'")
    for path in ("/", "/today", "/account"):
        assert alice.get(path).status_int == 200, path
    assert post(alice, "/items/1/toggle").status_int == 303
    assert [item["no"] for item in alice.get("/export.json").json["items"]] == [1, 2]


@pytest.mark.parametrize("zone", ["localtime", "Factory"])
def test_a_time_zone_file_that_is_not_a_place_is_400(alice, database, zone):
    """POST /account/timezone with 'localtime' or 'Factory' (files in the zone database, not places): 400."""
    answer = post(alice, "/account/timezone", timezone=zone)
    assert answer.status_int == 400, answer.status
    assert rows(database, "SELECT timezone FROM users") == [(None,)]


# --- 5. Long runs of digits in a route ------------------------------------------------


@pytest.mark.parametrize("digits", [19, 20, 400])
def test_a_list_id_of_many_digits_is_404_like_a_list_that_does_not_exist(alice, database, digits):
    """GET /lists/<n digits> and POST its /items: 404 with the body of a missing list's, nothing stored."""
    long_id = "9" * digits
    assert alice.get(f"/lists/{long_id}", status=404).text == alice.get(f"/lists/{MISSING}", status=404).text
    token = csrf_of(alice.get("/"))
    answers = [
        alice.post(f"/lists/{id_}/items", {"title": "x", "csrf_token": token}, status=404) for id_ in (long_id, MISSING)
    ]
    assert answers[0].text == answers[1].text
    assert rows(database, "SELECT count(*) FROM items") == [(0,)]


def test_an_item_number_of_25_digits_is_404(alice, database):
    """Toggle, edit and delete of item #<25 digits>: 404 saying the list has no such item; nothing changes."""
    assert post(alice, "/items", title="keep me").status_int == 303
    long_no = "1" * 25
    assert "has no item" in alice.get(f"/items/{long_no}/edit", status=404).text
    for action in ("toggle", "delete", "edit"):
        answer = post(alice, f"/items/{long_no}/{action}", title="changed")
        assert answer.status_int == 404 and "has no item" in answer.text, (action, answer.status)
    assert rows(database, "SELECT no, title, done FROM items") == [(1, "keep me", 0)]


# --- 6. copy-to of a file that is not there ------------------------------------------


def test_copy_to_from_a_missing_sqlite_file_refuses_and_makes_nothing(database, tmp_path):
    """TODO_DATABASE names no file: copy-to exits non-zero saying 'no database', and creates no file."""
    # On SQLite runs any postgresql:// URL will do: the missing file is noticed before any connection.
    url = database if POSTGRES else "postgresql://nobody@127.0.0.1:9/nowhere"
    where = tmp_path / "nothing-here"
    where.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["TODO_DATABASE"] = str(where / "todo.db")
    result = subprocess.run(
        [sys.executable, str(ROOT / "todo.py"), "copy-to", url], env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode != 0, result
    assert "no database" in result.stderr, result.stderr
    assert list(where.iterdir()) == []
    if POSTGRES:  # and nothing written there: not even the schema
        assert rows(database, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == [(0,)]


# --- 7. Control characters in the calendar --------------------------------------------


def test_a_title_with_control_characters_gives_a_calendar_without_them(alice, make_app):
    """Title 'a\\x01b\\x1fc\\x7fd\\te' in the list 'Shop\\x01ping': the .ics parses, no control byte but CR LF TAB."""
    first = alice.get("/export.json").json["lists"][0]["id"]
    assert post(alice, f"/lists/{first}/rename", name="Shop\x01ping").status_int == 303
    answer = post(alice, "/items", title="a\x01b\x1fc\x7fd\te", due=date.today().isoformat())
    assert answer.status_int == 303, answer.status
    assert post(alice, "/account/calendar").status_int == 303
    link = alice.get("/account").html.select_one('a[href^="/calendar/"]')["href"]
    body = make_app().get(link, status=200).body
    controls = sorted({byte for byte in body if (byte < 0x20 and byte not in b"\r\n\t") or byte == 0x7F})
    assert not controls, controls
    (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert str(event["summary"]).split() == ["a", "b", "c", "d", "e"]


# --- 8. Un-marking keeps a repeat -------------------------------------------------------


def test_un_marking_a_done_item_keeps_a_repeat_set_on_it_and_marking_it_again_adds_one(alice):
    """Done weekly item edited to weekly again, un-marked: still weekly; marked done again: one more occurrence."""
    today = date.today().isoformat()
    assert post(alice, "/items", title="water", due=today, repeat="weekly").status_int == 303
    assert post(alice, "/items/1/toggle").status_int == 303  # done: #2 added, #1 loses its repeat

    def items():
        return {item["no"]: (item["done"], item["repeat"]) for item in alice.get("/export.json").json["items"]}

    assert items() == {1: (True, ""), 2: (False, "weekly")}
    assert post(alice, "/items/1/edit", title="water", due=today, repeat="weekly").status_int == 303
    assert items() == {1: (True, "weekly"), 2: (False, "weekly")}  # an edit keeps done
    assert post(alice, "/items/1/toggle").status_int == 303  # not done again: nothing added
    assert items() == {1: (False, "weekly"), 2: (False, "weekly")}
    assert post(alice, "/items/1/toggle").status_int == 303
    assert items() == {1: (True, ""), 2: (False, "weekly"), 3: (False, "weekly")}


# --- 9. A row a change refers to goes at the same moment ------------------------------


def test_a_new_list_whose_owner_is_deleted_meanwhile_is_404_or_409_and_stores_nothing(alice, database, monkeypatch):
    """The account is deleted by another connection after the request read it: POST /lists is 404 or 409, no list."""
    token = csrf_of(alice.get("/"))
    original = todo.check_list_name

    def check_list_name(name):
        change(database, "DELETE FROM users WHERE username = 'alice'")
        return original(name)

    monkeypatch.setattr(todo, "check_list_name", check_list_name)
    answer = alice.post("/lists", {"name": "Ghost", "csrf_token": token}, expect_errors=True)
    assert answer.status_int in (404, 409), answer.status
    assert rows(database, "SELECT count(*) FROM lists") == [(0,)]  # the first list went with the account


@pytest.mark.skipif(not POSTGRES, reason="on SQLite the share's write holds the database's lock from its lookup on")
def test_sharing_with_an_account_deleted_just_after_its_lookup_is_400_and_shares_nothing(shared, database, monkeypatch):
    """carol is deleted by another connection right after the share looked her up: 400 naming no account."""
    alice, _, list_id = shared
    token = csrf_of(alice.get("/"))
    original, ran = todo.PostgresConnection.execute, []

    def execute(self, sql, values=()):
        answer = original(self, sql, values)
        if not ran and sql.startswith("SELECT id, username FROM users WHERE lower(username)"):
            ran.append(sql)
            change(database, "DELETE FROM users WHERE username = 'carol'")
        return answer

    monkeypatch.setattr(todo.PostgresConnection, "execute", execute)
    answer = alice.post(f"/lists/{list_id}/members", {"username": "carol", "csrf_token": token}, expect_errors=True)
    assert ran, "the share never looked carol up"
    assert answer.status_int == 400 and "There is no account named carol" in answer.text, answer.status
    assert rows(database, "SELECT count(*) FROM members WHERE list_id = ?", list_id) == [(1,)]  # bob's only
