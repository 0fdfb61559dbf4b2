"""The speed-ups at the end of todo.py: each keeps its effect, on the library code it was written against."""

import base64
import hashlib
import hmac
import inspect
import json
import os
import re
import sqlite3
import time
import zlib
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path

import beaker.exceptions
import beaker.session
import beaker.util
import bottle
import pytest
import webtest
from conftest import cookie_data, csrf_of, opened, post, register, sqlite_only

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
    """LeanCookieSession replaces the load and the save of Beaker 1.14.1's CookieSession, keeping its cookie.

    Its __init__ sets what Beaker's sets, and its save writes what Beaker's writes: a new Beaker
    must be read again. The signature is Beaker's own code, called.
    """
    assert beaker.__version__ == "1.14.1"
    digests = {
        beaker.session.CookieSession.__init__: "be6831b018d81ed9426759238df2b27f81d3a42882d985eafd954a919abd0159",
        beaker.session.CookieSession._create_cookie: SAVE_DIGEST,
        beaker.session.SignedCookie.value_decode: DECODE_DIGEST,
        beaker.session.SignedCookie.value_encode: ENCODE_DIGEST,
    }
    assert {function.__qualname__: source_digest(function) for function in digests} == {
        function.__qualname__: digest for function, digest in digests.items()
    }


SAVE_DIGEST = "e15ea6e451acf4b55ad84fed45ba61412a4d580f4757d550e5095a7fd63a0895"
DECODE_DIGEST = "3cc1f826e0f86029c6eb5f04c334aafcd51b4678b7c8dca2bb9c06ff0ec14560"
ENCODE_DIGEST = "045ba2a6ed192e41425e467824a9296bbc5649f1def1bbb10c56b0232404d1eb"

COOKIE_OPTIONS = {  # Beaker's own words for todo's session_options(), given to a session class directly
    "key": "todo_session",
    "validate_key": "k" * 64,
    "httponly": True,
    "samesite": "Lax",
    "secure": False,
    "cookie_expires": todo.timedelta(days=30),
    "save_accessed_time": False,
    "invalidate_corrupt": True,
}


def beakers_own(cookie_header=None, **options):
    """Return Beaker's own CookieSession, reading todo's plain JSON, for a request with this Cookie header."""
    request = {"cookie_out": None, "cookie": cookie_header}
    return beaker.session.CookieSession(request, data_serializer=todo.PLAIN_JSON, **{**COOKIE_OPTIONS, **options})


def lean(cookie_header=None, **options):
    """Return todo's LeanCookieSession for a request with this Cookie header."""
    request = {"cookie_out": None, "cookie": cookie_header}
    return todo.LeanCookieSession(request, data_serializer="json", **{**COOKIE_OPTIONS, **options})


def sent_cookie(session):
    """Save the session; return the Cookie header a browser would send back with what it set."""
    session.save()
    return session.request["cookie_out"].split(";")[0].strip()


def own_fields(session):
    """Return the session's fields without Beaker's bookkeeping (its keys begin with _)."""
    return {key: value for key, value in session.items() if not key.startswith("_")}


FIELDS = {"uid": 7, "secret": "s" * 32, "since": 1_800_000_000, "csrf": "c" * 43, "flash": "Added #3."}


def test_the_cookie_is_beakers_own_both_ways():
    """Beaker's own CookieSession reads what todo writes, and todo reads what Beaker writes: the same data."""
    mine = lean()
    mine.update(FIELDS)
    assert own_fields(beakers_own(sent_cookie(mine))) == FIELDS

    theirs = beakers_own()
    theirs.update(FIELDS)
    read = lean(sent_cookie(theirs))  # Beaker's cookie carries its bookkeeping too: read, and not written again
    assert own_fields(read) == FIELDS and not read.is_new


@pytest.mark.parametrize("secure", [False, True])
def test_the_set_cookie_header_has_beakers_attributes(secure):
    """The header todo writes has the attributes, in the order, that Beaker's own _create_cookie() writes."""
    mine, theirs = lean(secure=secure), beakers_own(secure=secure)
    for session in (mine, theirs):
        session.update(FIELDS)
        session.save()
    attributes = [session.request["cookie_out"].split("; ")[1:] for session in (mine, theirs)]
    expires = [[part for part in parts if part.startswith("expires=")] for parts in attributes]
    assert [[part for part in parts if not part.startswith("expires=")] for parts in attributes] == [
        ["HttpOnly", "Path=/", "SameSite=Lax"] + ["Secure"] * secure
    ] * 2
    dates = [datetime.strptime(date[0], "expires=%a, %d-%b-%Y %H:%M:%S GMT") for date in expires]
    assert abs(dates[0] - dates[1]).total_seconds() < 5  # the same 30 days, give or take the test's own time


def test_the_cookie_holds_the_sites_fields_only(alice):
    """Beaker's bookkeeping (an id, two times, the path) stays out of the cookie: every request carries less."""
    post(alice, "/items", title="one")
    data = cookie_data(alice)
    assert set(data) == {"uid", "secret", "since", "csrf", "flash"}
    assert len(alice.cookies["todo_session"]) < 300  # Beaker's own, with its bookkeeping: over 500
    assert "Added #1." in alice.get("/").text  # and the cookie still works


@pytest.mark.parametrize(
    "payload",
    [b"not base64 at all \xff", base64.b64encode(b"not json"), base64.b64encode(b"[1, 2]"), base64.b64encode(b"null")],
)
def test_a_signed_cookie_that_is_not_a_session_starts_an_empty_one(payload):
    """A correct signature over something that is not a JSON object: as Beaker's invalidate_corrupt, a new session."""
    value = payload.decode("latin-1")
    signature = hmac.new(COOKIE_OPTIONS["validate_key"].encode(), value.encode(), hashlib.sha1).hexdigest()
    with pytest.warns(beaker.exceptions.BeakerWarning, match="Invalidating corrupt session"):
        session = lean(f"todo_session={signature}{value}")
    assert not own_fields(session)


@pytest.mark.parametrize(
    "change", [lambda value: "0" * 40 + value[40:], lambda value: value[:-2], lambda value: value[:40]]
)
def test_a_cookie_with_a_wrong_signature_is_not_read(change):
    """Beaker's signature check decides: a changed value or signature loads nothing."""
    mine = lean()
    mine.update(FIELDS)
    name, _, value = sent_cookie(mine).partition("=")
    with pytest.warns(beaker.exceptions.BeakerWarning, match="Invalidating corrupt session"):
        session = lean(f"{name}={change(value)}")
    assert not own_fields(session)


@pytest.mark.parametrize("header", [None, "", "todo_session=", 'todo_session=""', "other=1"])
def test_no_cookie_or_an_emptied_one_is_a_new_session_not_a_corrupt_one(header, recwarn):
    """As with Beaker's own: nothing to read is no error, and no warning."""
    session = lean(header)
    assert session.is_new and not own_fields(session)
    assert not [warning for warning in recwarn if issubclass(warning.category, beaker.exceptions.BeakerWarning)]
    assert beakers_own(header).is_new


def test_beakers_delete_still_sends_an_expired_cookie():
    """Beaker's delete(), which asks for the session id the cookie no longer carries, still works."""
    mine = lean()
    mine.update(FIELDS)
    session = lean(sent_cookie(mine))
    session.delete()
    assert not own_fields(session)
    expires = re.search(r"expires=([^;]+)", session.request["cookie_out"]).group(1)
    assert datetime.strptime(expires, "%a, %d-%b-%Y %H:%M:%S GMT") < datetime.now()


def test_the_cookie_is_found_among_others_and_the_last_of_two_wins():
    """Other sites' cookies, even malformed ones, do not hide todo's; sent twice, the last counts, as http.cookies."""
    first, second = lean(), lean()
    first.update(FIELDS)
    second.update({**FIELDS, "uid": 8})
    first_cookie, second_cookie = sent_cookie(first), sent_cookie(second)
    header = f'theme=dark; broken="unterminated; {first_cookie}; lang=en'
    assert lean(header).get("uid") == 7
    both = f"{first_cookie}; {second_cookie}"
    assert lean(both).get("uid") == 8
    parsed = SimpleCookie(both)["todo_session"].value
    assert parsed == second_cookie.partition("=")[2]  # http.cookies keeps the last one too


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
