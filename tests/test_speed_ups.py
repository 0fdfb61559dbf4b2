"""The speed-ups at the end of todo.py: each keeps its effect, on the library code it was written against."""

import base64
import hashlib
import hmac
import inspect
import json
import os
import sqlite3
import time
import zlib
from pathlib import Path

import beaker.session
import beaker.util
import bottle
import pytest
import webtest
from conftest import csrf_of, opened, post, register, sqlite_only

import todo


def source_digest(function):
    """Return a SHA-256 of a function's source, to notice when a library's code changes under a speed-up."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


# --- The cookie that is not signed again (Beaker 1.14.1) --------------------------------


def test_a_plain_page_sends_no_cookie_and_a_change_still_does(alice):
    """Signed in, with nothing new to say, a page costs no signature and no Set-Cookie header."""
    alice.get("/")  # shows and forgets the welcome message: that changes the cookie
    assert "Set-Cookie" not in alice.get("/").headers
    assert "Set-Cookie" not in alice.get("/account").headers
    assert "Set-Cookie" in post(alice, "/items", title="a change").headers  # the flash "Added #1." is new
    assert "Added #1." in alice.get("/").text


def test_beaker_still_signs_every_loaded_cookie_again_without_the_speed_up(make_app, monkeypatch):
    """The control: with Beaker's own CookieSession, the same plain page does send the cookie back.

    If Beaker stops calling _create_cookie() while loading, this fails, and LeanCookieSession
    can go; if it renames it, the test above fails.
    """
    options = todo.session_options
    monkeypatch.setattr(
        todo, "session_options", lambda *args: {**options(*args), "session.session_class": beaker.session.CookieSession}
    )
    app = make_app()
    register(app)
    app.get("/")
    assert "Set-Cookie" in app.get("/").headers


def test_beaker_is_the_version_the_cookie_speed_up_was_written_for():
    """LeanCookieSession overrides private methods of Beaker 1.14.1's CookieSession.__init__."""
    assert beaker.__version__ == "1.14.1"
    assert "self._create_cookie()" in inspect.getsource(beaker.session.CookieSession.__init__)
    assert source_digest(beaker.session.CookieSession.__init__) == (
        "be6831b018d81ed9426759238df2b27f81d3a42882d985eafd954a919abd0159"
    )


# --- The template that escapes in one call (Bottle 0.13.4) ------------------------------


@pytest.mark.parametrize(
    "value", [0, -7, 2**63 - 1, "", "plain", "<b>&\"'</b>", "café ☕", None, True, 1.5, ["<x>"], b"bytes"]
)
def test_escape_html_matches_bottles_own(value):
    """Whatever a template prints, the faster escaping gives exactly what Bottle's html_escape gives."""
    expected = bottle.html_escape(bottle.touni(value))  # what SimpleTemplate prints for {{value}}
    assert todo.escape_html(value) == expected


def test_bottle_is_the_version_the_template_speed_up_copies():
    """PageTemplate.execute is a copy of Bottle 0.13.4's SimpleTemplate.execute: a new Bottle must be read again."""
    assert bottle.__version__ == "0.13.4"
    assert source_digest(bottle.SimpleTemplate.execute) == (
        "5216c238f7d61b6972ddc698a30e6e6e72e530caf8fbf5fbfa9bb173d7f3486f"
    )


def test_pages_render_the_same_with_bottles_template(alice, monkeypatch):
    """The copy changes the speed, not the page: the stock SimpleTemplate writes the same bytes."""
    post(alice, "/items", title="<script>alert('x')</script> & more")
    post(alice, "/items/1/toggle")
    alice.get("/")  # the flash is gone: both renders below see the same session
    fast = alice.get("/").text
    bottle.TEMPLATES.clear()
    monkeypatch.setattr(todo, "PageTemplate", bottle.SimpleTemplate)
    try:
        assert alice.get("/").text == fast
    finally:
        bottle.TEMPLATES.clear()  # recompile with todo's own class for the next tests


# --- The connection each thread keeps idle between requests (SQLite) ---------------------


@sqlite_only  # the reused connection is SQLite's; PostgreSQL has its pool
def test_the_wal_outlives_a_request(app, database):
    """Between requests the WAL stays, so the next request does not rebuild it; and nothing is held open for writing."""
    assert app.get("/healthz").text == "ok"
    assert Path(f"{database}-wal").exists() and Path(f"{database}-shm").exists()
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the idle connection holds no lock: a writer gets in at once
    other.execute("ROLLBACK")
    other.close()


@sqlite_only
def test_without_an_idle_connection_the_wal_goes_with_the_last_request(database):
    """The control: SQLite deletes the WAL when its last connection closes, which the idle connection avoids."""
    todo.init_db(database)
    db = todo.connect(database)
    db.execute("SELECT count(*) FROM users").fetchall()
    db.close()
    assert not Path(f"{database}-wal").exists()


@sqlite_only
def test_a_thread_reuses_its_connection_across_requests(alice, database):
    """Two requests in one thread use one connection (opened and its statements parsed once), given back idle."""
    alice.get("/")
    (key,) = [key for key in todo.idle_connections if key[0] == str(database)]
    first = todo.idle_connections[key]
    alice.get("/")
    assert todo.idle_connections[key] is first and not first.in_transaction


@sqlite_only
def test_a_reused_connection_reads_what_another_program_committed_meanwhile(alice, database):
    """Kept idle, it keeps no snapshot: the next page shows an item written by another process since the last."""
    post(alice, "/items", title="through the site")
    assert "from elsewhere" not in alice.get("/").text
    with opened(database) as db, todo.transaction(db):
        list_id = db.execute("SELECT first_list_id FROM users WHERE username = 'alice'").fetchone()[0]
        db.execute("UPDATE lists SET last_item_no = 2 WHERE id = ?", (list_id,))
        sql = "INSERT INTO items (list_id, no, title, created) VALUES (?, 2, 'from elsewhere', '2026-01-01T00:00:00')"
        db.execute(sql, (list_id,))
    assert "from elsewhere" in alice.get("/").text


@sqlite_only
def test_a_connection_given_back_mid_write_keeps_nothing_of_it(database):
    """A request that failed inside a write: giving its connection back rolls the write back and frees the lock."""
    todo.init_db(database)
    db = todo.reused_connection(database, todo.BUSY_TIMEOUT)
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO settings (name, value) VALUES ('half', 'written')")
    db.close()  # given back, not closed
    assert todo.reused_connection(database, todo.BUSY_TIMEOUT) is db and not db.in_transaction
    db.close()
    with opened(database) as other, todo.transaction(other):  # the write lock is free at once
        assert other.execute("SELECT count(*) FROM settings WHERE name = 'half'").fetchone()[0] == 0


@sqlite_only
def test_a_reused_connection_never_crosses_a_fork(database, monkeypatch):
    """One per process and thread: a connection made before a fork (gunicorn --preload) is not the child's."""
    todo.init_db(database)
    parent = todo.reused_connection(database, todo.BUSY_TIMEOUT)
    parent.close()
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as seen from a forked child
    child = todo.reused_connection(database, todo.BUSY_TIMEOUT)
    assert child is not parent
    child.close()
    todo.close_idle_connections()  # the child's own, as it stops
    assert not [key for key in todo.idle_connections if key[1] == -1]
    monkeypatch.undo()
    todo.close_idle_connections()
    assert not Path(f"{database}-wal").exists()  # the last connection closed: the WAL is folded in and removed


@sqlite_only
def test_a_failed_request_does_not_leave_its_connection_for_the_next(make_app, database, monkeypatch):
    """A 500 may leave a statement half-read: its connection is closed, not kept idle for the next request."""
    app = make_app()
    register(app)
    app.get("/")
    (key,) = [key for key in todo.idle_connections if key[0] == str(database)]
    kept = todo.idle_connections[key]

    def broken(*args, **kwargs):
        """Fail the way a bug would, after the page's first reads."""
        raise RuntimeError("a bug")

    monkeypatch.setattr(todo, "show_list", broken)
    plain = webtest.TestApp(app.app, cookiejar=app.cookiejar)  # conftest's would fail the test on the 500 itself
    answer = plain.get("/", expect_errors=True)
    assert answer.status_int == 500
    assert todo.idle_connections.get(key) is not kept


# --- The cookie in plain JSON (Beaker 1.14.1) --------------------------------------------


def test_the_session_cookie_is_plain_json_signed_as_beaker_signs_it(alice, make_app, database):
    """The cookie's data is JSON under Beaker's signature: no zlib, and a changed byte still signs nobody in."""
    value = alice.cookies["todo_session"].strip('"')
    payload = base64.b64decode(value[40:])
    assert json.loads(payload)["uid"] == 1  # plain JSON, not zlib
    with opened(database) as db:
        (key,) = db.execute("SELECT value FROM settings WHERE name = 'secret_key'").fetchone()
    assert hmac.new(key.encode(), value[40:].encode(), "sha1").hexdigest() == value[:40]
    forged = make_app()
    data = json.loads(payload)  # a sign-in one second older: valid but for the signature, left as it was
    changed = json.dumps({**data, "since": data["since"] - 1}).encode()
    forged.set_cookie("todo_session", value[:40] + base64.b64encode(changed).decode())
    answer = forged.get("/")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/login")
    resigned = base64.b64encode(changed).decode()  # the control: the same change, signed with the key, is taken
    signed = make_app()
    signed.set_cookie("todo_session", hmac.new(key.encode(), resigned.encode(), "sha1").hexdigest() + resigned)
    assert signed.get("/").status_int == 200


def signed(key, payload):
    """Return a session cookie value for these payload bytes, signed as Beaker signs: HMAC-SHA1, then base64."""
    value = base64.b64encode(payload).decode()
    return hmac.new(key.encode(), value.encode(), "sha1").hexdigest() + value


def test_beakers_own_json_cookie_is_zlib_and_is_signed_out_cleanly(make_app, database):
    """The control: Beaker's "json" compresses; a cookie written that way (before) signs out once, never a 500."""
    assert zlib.decompress(beaker.util.JsonSerializer().dumps({"uid": 1})) == b'{"uid": 1}'
    assert "self.serializer" in inspect.getsource(beaker.session.Session._set_serializer)
    key = "k" * 64
    register(make_app(TODO_SECRET_KEY=key))
    with opened(database) as db:
        uid, secret = db.execute("SELECT id, session_secret FROM users WHERE username = 'alice'").fetchone()
    data = json.dumps({"uid": uid, "secret": secret, "since": int(time.time()), "csrf": "t"}).encode()
    plain, old = make_app(TODO_SECRET_KEY=key), make_app(TODO_SECRET_KEY=key)
    plain.set_cookie("todo_session", signed(key, data))
    assert plain.get("/").status_int == 200  # the same session, as todo writes it: signed in
    old.set_cookie("todo_session", signed(key, zlib.compress(data)))
    answer = old.get("/")  # as Beaker's own "json" wrote it: signed out, not an error
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/login")


@sqlite_only
def test_a_kept_connection_enforces_foreign_keys_and_syncs_as_the_site_asks(alice, database):
    """The pragmas are set once, when a connection opens: the kept ones have them on every later request."""
    alice.get("/")
    kept = [db for key, db in todo.idle_connections.items() if key[0] == str(database)]
    assert kept
    for db in kept:
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with todo.transaction(kept[0]) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO members (list_id, user_id) VALUES (999999, 999999)")


@sqlite_only
def test_a_request_answered_503_does_not_keep_its_connection(alice, database):
    """A 503 (the database busy past the wait) is a failed request too: its connection is not kept."""
    alice.get("/")
    before = {key: db for key, db in todo.idle_connections.items() if key[0] == str(database)}
    token = csrf_of(alice.get("/"))
    plain = webtest.TestApp(alice.app, cookiejar=alice.cookiejar)  # conftest's would fail the test on the 503 itself
    with opened(database) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        answer = plain.post("/items", {"csrf_token": token, "title": "waits, then 503"}, expect_errors=True)
        holder.rollback()
    assert answer.status_int == 503
    after = {key: db for key, db in todo.idle_connections.items() if key[0] == str(database)}
    assert any(after.get(key) is not db for key, db in before.items()), "every kept connection survived a 503"
