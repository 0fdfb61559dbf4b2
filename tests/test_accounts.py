"""In-process tests of the account protections: revocation, lifetime, throttling, rehash, sign-up, headers."""

import os
import pickle
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import argon2
import beaker.session
import pytest
import webtest
from conftest import (
    PASSWORD,
    ROOT,
    cookie_data,
    copy_session,
    csrf_of,
    database_environ,
    forge_cookie,
    json_payload,
    login,
    opened,
    post,
    register,
)

import todo

SECRET_KEY = "a session key the tests know " + "k" * 20
DAY = 24 * 60 * 60


def user_row(database, username="alice"):
    """Return the user's row straight from the database, or None."""
    with opened(database) as db:
        return db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()


def count(database, sql, *args):
    """Return the single number a query gives."""
    with opened(database) as db:
        return db.execute(sql, args).fetchone()[0]


def change(database, sql, *args):
    """Change the database straight, as another program (or another worker) would; committed at once."""
    with opened(database) as db:
        db.execute(sql, args)


def signed_in(app):
    """Return True if the app's cookie opens the list page."""
    return app.get("/").status_int == 200


def alert(page):
    """Return the text of the page's error message."""
    return re.search(r'role="alert">([^<]*)<', page.text).group(1)


@pytest.fixture
def phone(alice, make_app):
    """Return a second browser of alice's: a copy of her session cookie, as a thief would hold it."""
    other = copy_session(alice, make_app())
    assert signed_in(other)
    return other


# --- Revocation: sign out everywhere, change password, delete --------------------


def test_account_page_has_its_three_forms(alice):
    page = alice.get("/account")
    assert page.status_int == 200 and "alice" in page.text
    for action in ("/account/password", "/account/logout-all", "/account/delete"):
        assert f'action="{action}"' in page.text
    assert page.text.count(f'value="{csrf_of(page)}"') >= 3


def test_logout_everywhere_revokes_every_copy_of_the_cookie(alice, phone, database):
    secret = user_row(database)["session_secret"]
    answer = post(alice, "/account/logout-all")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/login")
    assert "Signed out everywhere." in alice.get("/login").text
    assert not signed_in(alice)
    assert not signed_in(phone)  # the copy made before is dead too
    assert user_row(database)["session_secret"] not in (secret, "")  # a new random one
    assert login(alice).status_int == 303 and signed_in(alice)  # and signing in again works
    assert not signed_in(phone)


def test_plain_logout_signs_out_only_this_browser(alice, phone):
    assert post(alice, "/logout").status_int == 303
    assert not signed_in(alice)
    assert signed_in(phone)


def test_change_password_keeps_this_browser_and_signs_out_the_others(alice, phone, database, make_app):
    old_hash = user_row(database)["password_hash"]
    answer = post(alice, "/account/password", password=PASSWORD, new_password="a brand new secret")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/account")
    assert "Password changed." in alice.get("/account").text
    assert signed_in(alice)
    assert not signed_in(phone)
    assert user_row(database)["password_hash"] != old_hash
    fresh = make_app()
    assert login(fresh, "alice", PASSWORD).status_int == 400
    assert login(fresh, "alice", "a brand new secret").status_int == 303


def test_change_password_keeps_the_forms_in_this_browsers_other_tabs(alice, phone):
    """SPEC: the token stays valid for all the session's tabs, and this browser stays in."""
    other_tab = csrf_of(alice.get("/"))  # a list page left open in another tab
    assert post(alice, "/account/password", password=PASSWORD, new_password="a brand new secret").status_int == 303
    assert alice.post("/items", {"title": "from the other tab", "csrf_token": other_tab}).status_int == 303
    assert "from the other tab" in alice.get("/").text
    assert not signed_in(phone)


@pytest.mark.parametrize(
    ("current", "new", "reason"),
    [
        ("not my password", "a brand new secret", "current password is not right"),
        ("", "a brand new secret", "current password is not right"),
        (PASSWORD, "short", "at least 8"),
        (PASSWORD, "x" * 1025, "at most 1024"),
    ],
)
def test_change_password_refused_changes_nothing(alice, phone, database, current, new, reason):
    before = user_row(database)
    answer = post(alice, "/account/password", password=current, new_password=new)
    assert answer.status_int == 400 and reason in alert(answer)
    assert 'action="/account/password"' in answer.text  # the form again
    assert tuple(user_row(database)) == tuple(before)
    assert signed_in(alice) and signed_in(phone)


def test_delete_account_removes_user_and_items_and_frees_the_name(app, database):
    register(app, "bob")
    post(app, "/items", title="bob's")
    app.reset()
    register(app, "alice")
    for title in ("a", "b"):
        post(app, "/items", title=title)
    answer = post(app, "/account/delete", password=PASSWORD)
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/login")
    assert "deleted" in app.get("/login").text
    assert user_row(database) is None
    assert count(database, "SELECT count(*) FROM items") == 1  # bob's only
    assert user_row(database, "bob") is not None
    assert not signed_in(app)
    assert login(app).status_int == 400
    assert register(app, "alice", "another password").status_int == 303  # the name is free again


def test_delete_account_with_wrong_password_keeps_everything(alice, database):
    post(alice, "/items", title="keep me")
    answer = post(alice, "/account/delete", password="not my password")
    assert answer.status_int == 400 and "still here" in alert(answer)
    assert user_row(database) is not None
    assert count(database, "SELECT count(*) FROM items") == 1
    assert signed_in(alice)


def test_deleted_accounts_cookie_never_opens_a_later_account(alice, phone, make_app):
    """The deleted user's other browser must not become whoever registers next (ids are never reused)."""
    assert post(alice, "/account/delete", password=PASSWORD).status_int == 303
    newcomer = make_app()
    register(newcomer, "mallory")
    post(newcomer, "/items", title="mallory's secret")
    answer = phone.get("/")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/login")
    assert phone.get("/export.json").status_int == 303


# --- The cookie: absolute lifetime, forged payloads -----------------------------------


@pytest.fixture
def keyed(make_app, database):
    """Return a signed-out app whose session key the test knows, alice's id and her session secret."""
    app = make_app(TODO_SECRET_KEY=SECRET_KEY)
    register(app)
    with opened(database) as db:
        uid, secret = db.execute("SELECT id, session_secret FROM users").fetchone()
    app.reset()
    return app, uid, secret


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(0, True), (29 * DAY, True), (30 * DAY - 60, True), (30 * DAY + 60, False), (400 * DAY, False)],
)
def test_session_has_an_absolute_lifetime_of_30_days(keyed, age, accepted):
    app, uid, secret = keyed
    cookie = {"uid": uid, "secret": secret, "since": int(time.time()) - age, "csrf": "t"}
    app.set_cookie("todo_session", forge_cookie(SECRET_KEY, json_payload(cookie)))
    assert signed_in(app) is accepted


def test_sign_in_time_is_kept_in_the_cookie_and_activity_does_not_renew_it(keyed):
    app, _, _ = keyed
    start = time.time()
    login(app)
    since = cookie_data(app)["since"]
    assert start - 2 <= since <= time.time()
    for _ in range(3):
        post(app, "/items", title="activity")
    assert cookie_data(app)["since"] == since


@pytest.mark.parametrize(
    "cookie",
    [
        {"uid": 1, "secret": "a revoked or foreign secret", "since": 0},
        {"uid": 1, "ver": 1, "since": 0},  # a cookie from before per-user secrets
        {"uid": "1", "secret": "x"},
        {"uid": True, "secret": True, "since": True},
        {"uid": 1.0, "secret": ["x"], "since": 1e12},
        {"uid": 10**30, "secret": "x", "since": 1},
        {"uid": None},
        {"csrf": ["not", "text"], "flash": {"x": 1}},
    ],
)
def test_signed_cookies_with_odd_contents_are_signed_out_not_errors(keyed, cookie):
    app, _, _ = keyed
    app.set_cookie("todo_session", forge_cookie(SECRET_KEY, json_payload(cookie)))
    answer = app.get("/")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/login")
    assert app.get("/login").status_int == 200


class WriteFile:
    """Unpickling this creates a file: what a forged pickle cookie makes the server do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.mark.parametrize("serializer", ["json", "pickle"])
def test_forged_pickle_cookie_never_runs(make_app, tmp_path, serializer, monkeypatch):
    """A correctly signed cookie whose payload is a pickle must not run.

    The "pickle" case is the control: the same cookie against the same app with Beaker's
    pickle serializer does write the file, so this forgery would have worked.
    """
    if serializer == "pickle":
        options = todo.session_options
        monkeypatch.setattr(
            todo,
            "session_options",
            lambda *args: {
                **options(*args),
                "session.data_serializer": "pickle",
                "session.session_class": beaker.session.CookieSession,  # Beaker's own, which obeys the setting
            },
        )
    app = make_app(TODO_SECRET_KEY=SECRET_KEY)
    marker = tmp_path / "forged-cookie-ran"
    payload = pickle.dumps({"uid": 1, "ver": 1, "since": int(time.time()), "x": WriteFile(marker)})
    app.set_cookie("todo_session", forge_cookie(SECRET_KEY, payload))
    answer = app.get("/login")  # TestApp fails on any 5xx
    if serializer == "json":
        assert answer.status_int == 200
        assert not marker.exists()
    else:
        assert marker.exists()


# --- Login throttling ---------------------------------------------------------------


def fail_logins(app, username, times):
    """Try a wrong password `times` times; return the statuses."""
    return [login(app, username, "not the password").status_int for _ in range(times)]


def test_ten_failures_throttle_the_username(alice, make_app, database):
    post(alice, "/logout")
    assert fail_logins(alice, "alice", 10) == [400] * 10
    answer = login(alice, "alice", "not the password")
    assert answer.status_int == 429
    assert 840 <= int(answer.headers["Retry-After"]) <= 901  # 15 minutes from the first failure
    assert re.fullmatch(r"Too many failed sign-ins for this username\. Try again in 1[4-6] minutes\.", alert(answer))
    right = login(alice, "ALICE", PASSWORD)  # even the right password, in any case
    assert right.status_int == 429 and "Retry-After" in right.headers
    assert not signed_in(alice)
    assert count(database, "SELECT count(*) FROM login_failures") == 10  # refused attempts add nothing
    assert login(make_app(), "bob", "whatever it is").status_int == 400  # other names are not throttled


def test_another_spelling_of_a_throttled_name_gets_no_more_guesses(alice):
    """PostgreSQL's lower() folds 'İ' to 'i' where Python's does not: a name that cannot exist is never looked up."""
    post(alice, "/logout")
    fail_logins(alice, "alice", 10)
    assert login(alice, "al\u0130ce", PASSWORD).status_int == 400  # 'alİce': no such account, and no way in
    assert login(alice, "alice", PASSWORD).status_int == 429


def test_unknown_usernames_are_throttled_the_same(app):
    assert fail_logins(app, "nobody", 10) == [400] * 10
    assert login(app, "nobody", "not the password").status_int == 429


def test_throttle_lifts_when_the_window_passes(alice, database):
    post(alice, "/logout")
    fail_logins(alice, "alice", 10)
    change(database, "UPDATE login_failures SET at = at - 600")  # ten minutes pass
    answer = login(alice)
    assert answer.status_int == 429
    assert 240 <= int(answer.headers["Retry-After"]) <= 301  # counted from the oldest failure
    change(database, "UPDATE login_failures SET at = at - 301")  # the rest of the window passes
    assert login(alice).status_int == 303 and signed_in(alice)


def test_successful_sign_ins_do_not_count(alice):
    post(alice, "/logout")
    for _ in range(3):
        assert login(alice).status_int == 303
        post(alice, "/logout")
    assert fail_logins(alice, "alice", 9) == [400] * 9
    assert login(alice).status_int == 303  # the tenth attempt, right: still let in


def test_account_page_password_guesses_are_throttled_too(alice, phone, database):
    """Whoever holds a stolen cookie gets no more guesses at the password than at the sign-in form."""
    for _ in range(5):
        assert post(phone, "/account/delete", password="guess").status_int == 400
    for _ in range(5):
        assert post(phone, "/account/password", password="guess", new_password="x" * 10).status_int == 400
    answer = post(phone, "/account/password", password=PASSWORD, new_password="stolen account")
    assert answer.status_int == 429 and "Retry-After" in answer.headers
    assert post(phone, "/account/delete", password=PASSWORD).status_int == 429
    assert user_row(database) is not None
    post(phone, "/logout")  # the same count at this browser's sign-in form (its device cookie's, as stolen)
    assert login(phone, "alice", PASSWORD).status_int == 429


def test_wrong_password_and_unknown_user_take_about_as_long(alice):
    """An unknown user is hashed against a dummy: without it the answer comes ~50 times faster."""
    post(alice, "/logout")

    def timed(username):
        token = csrf_of(alice.get("/login"))
        started = time.perf_counter()
        answer = alice.post(
            "/login", {"username": username, "password": "not it", "csrf_token": token}, expect_errors=True
        )
        assert answer.status_int == 400
        return time.perf_counter() - started

    samples = [(timed("alice"), timed("nobody-here")) for _ in range(5)]  # interleaved: same load for both
    known = statistics.median(sample[0] for sample in samples)
    unknown = statistics.median(sample[1] for sample in samples)
    assert known / 3 < unknown < known * 3, (known, unknown)


# --- Password hashes --------------------------------------------------------------------


def test_hash_with_other_parameters_is_upgraded_on_sign_in(alice, database):
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    assert todo.password_hasher.check_needs_rehash(weaker)
    change(database, "UPDATE users SET password_hash = ?", weaker)
    post(alice, "/logout")
    assert login(alice).status_int == 303
    upgraded = user_row(database)["password_hash"]
    assert upgraded != weaker and not todo.password_hasher.check_needs_rehash(upgraded)
    assert todo.password_hasher.verify(upgraded, PASSWORD)
    post(alice, "/logout")
    assert login(alice).status_int == 303
    assert user_row(database)["password_hash"] == upgraded  # current parameters: left alone


def test_rehash_never_undoes_a_password_change_made_meanwhile(alice, database, monkeypatch):
    """Another worker changes the password between this sign-in's check and its rehash."""
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    change(database, "UPDATE users SET password_hash = ?", weaker)
    newer = todo.password_hasher.hash("changed elsewhere")
    original = argon2.PasswordHasher.check_needs_rehash

    def meanwhile(hasher, password_hash):
        """Decide, then let another worker change the password before the rehash is written."""
        decision = original(hasher, password_hash)
        change(database, "UPDATE users SET password_hash = ?", newer)
        return decision

    monkeypatch.setattr(argon2.PasswordHasher, "check_needs_rehash", meanwhile)
    post(alice, "/logout")
    assert login(alice).status_int == 303
    assert user_row(database)["password_hash"] == newer


# --- Closed sign-up and adduser -------------------------------------------------------


def test_closed_signup_hides_and_refuses_registration(make_app, database):
    app = make_app(TODO_SIGNUP="closed")
    assert app.get("/register", expect_errors=True).status_int == 403
    assert 'href="/register"' not in app.get("/login").text
    token = csrf_of(app.get("/login"))
    answer = app.post("/register", {"username": "eve", "password": PASSWORD, "csrf_token": token}, expect_errors=True)
    assert answer.status_int == 403 and "Sign-up is closed" in answer.text
    assert count(database, "SELECT count(*) FROM users") == 0
    assert 'href="/register"' in make_app().get("/login").text  # open: the link is there


def adduser(database, name, stdin):
    """Run `python todo.py adduser NAME` with the given standard input."""
    env = {**os.environ, **database_environ(database)}
    return subprocess.run(
        [sys.executable, str(ROOT / "todo.py"), "adduser", name],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def is_empty(database):
    """Return True if no start has prepared the database yet: no SQLite file, or no table in PostgreSQL's."""
    if isinstance(database, Path):
        return not database.exists()
    with opened(database) as db:
        tables = db.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        return tables.fetchone()[0] == 0


def test_adduser_creates_an_account_before_the_first_start(make_app, database):
    assert is_empty(database)
    done = adduser(database, "carol", "carol's long password\n")
    assert done.returncode == 0, done.stderr
    assert "Created user carol." in done.stdout
    app = make_app(TODO_SIGNUP="closed")
    assert login(app, "carol", "carol's long password").status_int == 303
    assert signed_in(app)


@pytest.mark.parametrize(
    ("name", "stdin", "reason"),
    [
        ("x", PASSWORD + "\n", "3 to 32"),
        ("bad name", PASSWORD + "\n", "3 to 32"),
        ("carol", "short\n", "at least 8"),
        ("carol", "", "at least 8"),
        ("carol", "y" * 1025 + "\n", "at most 1024"),
        ("ALICE", PASSWORD + "\n", "taken"),
    ],
)
def test_adduser_refuses_with_a_reason_and_an_exit_status(alice, database, name, stdin, reason):
    done = adduser(database, name, stdin)
    assert done.returncode != 0
    assert reason in done.stderr
    assert count(database, "SELECT count(*) FROM users") == 1


def adduser_on_a_terminal(database, name, lines):
    """Run adduser with a terminal for stdin, typing each line when its prompt appears (Ctrl-D: "\\x04")."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "todo.py"), "adduser", name],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **database_environ(database)},
        start_new_session=True,  # no controlling terminal: getpass prompts on stderr, reads stdin
    )
    os.close(terminal)
    try:
        prompts = b""
        for prompt, line in zip((b"Password: ", b"Again: "), lines, strict=False):  # Ctrl-D ends after one
            while prompt not in prompts:  # type only at the prompt: getpass flushes earlier input
                chunk = os.read(process.stderr.fileno(), 1024)
                assert chunk, f"adduser ended before asking {prompt!r}: {prompts!r}"
                prompts += chunk
            prompts = prompts.split(prompt, 1)[1]
            os.write(controller, line.encode() if line == "\x04" else line.encode() + b"\n")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stdout.decode(), prompts.decode() + stderr.decode()


def test_adduser_asks_twice_on_a_terminal(make_app, database):
    status, stdout, _ = adduser_on_a_terminal(database, "dave", ["dave's long password"] * 2)
    assert status == 0 and "Created user dave." in stdout
    assert login(make_app(), "dave", "dave's long password").status_int == 303
    status, _, stderr = adduser_on_a_terminal(database, "erin", ["erin's long password", "a typo"])
    assert status != 0 and "differ" in stderr
    assert user_row(database, "erin") is None


def test_adduser_cancelled_at_the_prompt_says_so(database):
    """Ctrl-D at the password prompt ends adduser with a reason, not a traceback, and no account."""
    status, _, stderr = adduser_on_a_terminal(database, "fred", ["\x04"])
    assert status != 0
    assert "cancelled" in stderr and "Traceback" not in stderr
    try:
        assert user_row(database, "fred") is None
    except sqlite3.DatabaseError as error:  # nothing made at all: cancelled before the schema was needed
        assert "no such table" in str(error) or "does not exist" in str(error)


# --- Headers ------------------------------------------------------------------------------


def csp(answer):
    """Return the Content-Security-Policy as {directive: [sources]}."""
    policy = answer.headers["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in policy.split(";") if part.strip())}


def test_security_headers_on_every_kind_of_answer(alice, make_app):
    post(alice, "/items", title="a")
    throttled = make_app()
    fail_logins(throttled, "zed", 10)
    answers = [
        alice.get("/"),
        alice.get("/account"),
        alice.get("/export.json"),
        post(alice, "/items", title="b"),  # 303
        post(alice, "/items", title=""),  # 400
        post(alice, "/items/99/toggle"),  # 404
        alice.post("/items", {"title": "x"}, expect_errors=True),  # 403
        alice.put("/items", expect_errors=True),  # 405
        login(throttled, "zed", "x"),  # 429
        make_app().get("/login"),
        alice.get("/static/style.css"),
    ]
    for answer in answers:
        policy = csp(answer)
        assert policy["default-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        assert "script-src" not in policy  # default-src 'none': no script at all
        assert all("unsafe" not in source for sources in policy.values() for source in sources)
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert answer.headers["X-Frame-Options"] == "DENY"  # for browsers that predate frame-ancestors
        assert "Strict-Transport-Security" not in answer.headers  # plain HTTP: the site must not pin itself
    for answer in answers[:-1]:
        assert answer.headers["Cache-Control"] == "no-store", answer.request.path
    assert "no-store" not in answers[-1].headers.get("Cache-Control", "")  # the stylesheet may be cached


def test_hsts_is_sent_on_every_answer_only_when_the_site_says_it_is_behind_https(make_app):
    """TODO_SECURE_COOKIES=1: Strict-Transport-Security of at least 180 days on pages, redirects, errors, files."""
    app = make_app(TODO_SECURE_COOKIES="1")
    answers = [
        app.get("/"),  # 303 to /login
        app.get("/login"),
        app.get("/static/style.css"),
        app.get("/no-such-page", expect_errors=True),
        app.post("/login", {"username": "x"}, expect_errors=True),  # 403, no form token
    ]
    for answer in answers:
        max_age = re.fullmatch(r"max-age=(\d+)(; includeSubDomains)?", answer.headers["Strict-Transport-Security"])
        assert max_age and int(max_age[1]) >= 180 * 24 * 3600, answer.headers["Strict-Transport-Security"]
        assert answer.headers["X-Frame-Options"] == "DENY"


def test_security_headers_on_a_server_error_too(alice, monkeypatch):
    """A 500 is a bug, but even its page keeps the policy (Bottle replaces the headers for it)."""

    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(todo, "show_list", broken)
    answer = webtest.TestApp(alice.app, cookiejar=alice.cookiejar).get("/", expect_errors=True)
    assert answer.status_int == 500
    assert csp(answer)["default-src"] == ["'none'"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"


def test_pages_need_no_inline_script_or_style(alice):
    """The policy forbids inline script and style, so no page may contain any."""
    post(alice, "/items", title="a")
    post(alice, "/items/1/toggle")
    pages = [alice.get(path).text for path in ("/", "/active", "/completed", "/account")]
    alice.reset()
    pages += [alice.get("/login").text, alice.get("/register").text]
    for page in pages:
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", page, re.I)
