"""A session cookie opens only the account it was made for, on the site it was made on.

Each user has a random session secret, kept in the database and carried in the
cookie. Two sites with the same TODO_SECRET_KEY (an operator copying a config)
sign each other's cookies correctly, and both have a user 1: only the secret
tells the cookies apart. These tests cover that case, a cookie rewritten to
name another user, an upgrade from a database made before the secrets, and
revocation by replacing the secret.
"""

import sqlite3
import time

import pytest
from conftest import (
    PASSWORD,
    TestApp,
    cookie_data,
    copy_session,
    database_environ,
    forge_cookie,
    fresh_database,
    json_payload,
    login,
    opened,
    post,
    register,
    sqlite_only,
)

import todo

SHARED_KEY = "one key copied into both sites' settings " + "s" * 20


# --- Helpers ------------------------------------------------------------------------


def site(database, secret_key=None):
    """Return a signed-out in-process app on this database of its own, and the database."""
    environ = database_environ(database)
    if secret_key:
        environ["TODO_SECRET_KEY"] = secret_key
    return TestApp(todo.create_app(environ)), database


@pytest.fixture
def other_database(tmp_path):
    """Return a second fresh database of this run's engine, for a second site (dropped afterwards)."""
    with fresh_database(tmp_path / "other") as database:
        yield database


def browser(app):
    """Return a new, empty cookie jar on the same site: another browser."""
    return TestApp(app.app)


def rows(database, sql, *args):
    """Return the rows of a query as tuples, read straight from the database."""
    with opened(database) as db:
        return [tuple(row) for row in db.execute(sql, args)]


def user_id(database, username):
    """Return the id of a user, read from the database."""
    return rows(database, "SELECT id FROM users WHERE username = ?", username)[0][0]


def session_secrets(database):
    """Return every user's session secret, in id order."""
    return [secret for (secret,) in rows(database, "SELECT session_secret FROM users ORDER BY id")]


def stored_items(database):
    """Return every item of every list as (list_id, no, title), to see that nothing was added."""
    return rows(database, "SELECT list_id, no, title FROM items ORDER BY list_id, no")


def sent_to_login(answer):
    """Return True if the answer is a 303 to the sign-in page."""
    return answer.status_int == 303 and answer.headers["Location"].endswith("/login")


def assert_signs_nobody_in(intruder, database, csrf, secret_title):
    """Check that the intruder's cookie opens no page, exports nothing and adds nothing on this site."""
    before = stored_items(database)
    # The POST goes first: the cookie is exactly as it came, and its own form token passes the CSRF check.
    answer = intruder.post("/items", {"title": "planted by a foreign cookie", "csrf_token": csrf}, expect_errors=True)
    assert answer.status_int == 403 or sent_to_login(answer), f"POST /items gave {answer.status}"
    assert stored_items(database) == before, "a foreign cookie added an item"
    page = intruder.get("/")
    assert sent_to_login(page), f"GET / gave {page.status}: the cookie signed someone in"
    export = intruder.get("/export.json")
    assert sent_to_login(export), f"GET /export.json gave {export.status}"
    assert secret_title not in export.text and secret_title not in page.text


# --- Two sites, two databases ---------------------------------------------------------


@pytest.mark.parametrize("secret_key", [SHARED_KEY, None], ids=["same-key", "own-keys"])
# With keys of their own, each site finds the other's signature wrong and says so: expected here.
@pytest.mark.filterwarnings("ignore:Invalidating corrupt session:beaker.exceptions.BeakerWarning")
def test_a_cookie_from_another_site_signs_nobody_in(database, other_database, secret_key):
    """Each site's user 1 is a different person: neither's cookie opens the other's account."""
    site_a, database_a = site(database, secret_key)
    site_b, database_b = site(other_database, secret_key)
    register(site_a, "alice")
    post(site_a, "/items", title="alice's secret")
    register(site_b, "eve")
    post(site_b, "/items", title="eve's secret")
    # The case that matters: the same uid on both sites, and (same-key) cookies both sites accept as signed.
    assert user_id(database_a, "alice") == user_id(database_b, "eve") == 1

    # Eve's cookie from B, on A.
    thief = copy_session(site_b, browser(site_a))
    assert_signs_nobody_in(thief, database_a, cookie_data(site_b)["csrf"], "alice's secret")
    # The other way round: alice's cookie from A, on B.
    thief = copy_session(site_a, browser(site_b))
    assert_signs_nobody_in(thief, database_b, cookie_data(site_a)["csrf"], "eve's secret")

    # Each owner's own cookie still works on her own site, and shows only her items.
    for own, title in ((site_a, "alice's secret"), (site_b, "eve's secret")):
        assert own.get("/").status_int == 200
        assert [item["title"] for item in own.get("/export.json").json["items"]] == [title]


# --- A cookie rewritten to name another user ------------------------------------------


def test_a_cookie_rewritten_to_another_uid_signs_nobody_in(make_app, database):
    """Whoever knows the site's key but only his own secret cannot become another user."""
    app = make_app(TODO_SECRET_KEY=SHARED_KEY)
    register(app, "alice")
    post(app, "/items", title="alice's secret")
    app.reset()
    register(app, "bob")
    bobs = cookie_data(app)  # bob can read his own cookie: it is signed, not encrypted
    alice_id = user_id(database, "alice")
    assert bobs["uid"] != alice_id

    # Control: re-signing bob's cookie unchanged signs bob in, so the forging itself is right.
    control = browser(app)
    control.set_cookie("todo_session", forge_cookie(SHARED_KEY, json_payload(bobs)))
    assert control.get("/").status_int == 200 and "bob" in control.get("/account").text

    # The same cookie with alice's uid: bob's secret must not open alice's account.
    forged = browser(app)
    forged.set_cookie("todo_session", forge_cookie(SHARED_KEY, json_payload({**bobs, "uid": alice_id})))
    assert_signs_nobody_in(forged, database, bobs["csrf"], "alice's secret")


# --- Upgrading a database from before per-user secrets -----------------------------------

OLD_SCHEMA = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    session_version INTEGER NOT NULL DEFAULT 1,
    last_item_no INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
CREATE TABLE items (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    no INTEGER NOT NULL, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,
    PRIMARY KEY (user_id, no)
) WITHOUT ROWID;
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE login_failures (username TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX login_failures_by_username ON login_failures (username, at);
"""
OLD_PASSWORD = "long enough pw"
OLD_SITE_KEY = "the key the old site made and kept in its settings table"


@pytest.fixture
def old_database(tmp_path):
    """Return a database file as the previous version left it: session_version, no session_secret."""
    path = tmp_path / "old" / "todo.db"
    path.parent.mkdir()
    created = "2024-01-01T00:00:00+00:00"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO settings VALUES ('secret_key', ?)", (OLD_SITE_KEY,))
        for username, version, last in (("olduser", 1, 2), ("other", 3, 0)):
            db.execute(
                "INSERT INTO users (username, password_hash, session_version, last_item_no, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (username, todo.password_hasher.hash(OLD_PASSWORD), version, last, created),
            )
        db.executemany(
            "INSERT INTO items (user_id, no, title, created) VALUES (1, ?, ?, ?)",
            [(1, "first from before", created), (2, "second from before", created)],
        )
    db.close()  # the with block commits, but does not close
    return path


@sqlite_only  # a SQLite file from before the secrets: PostgreSQL's schema has had them from the start
def test_a_database_from_before_secrets_keeps_its_users_and_items(old_database):
    """The upgrade gives each user a secret; passwords, items and numbering carry over, into the first list."""
    app = TestApp(todo.create_app({"TODO_DATABASE": str(old_database)}))
    given = session_secrets(old_database)
    assert len(given) == 2 and all(given) and len(set(given)) == 2, f"session secrets after the upgrade: {given}"
    # The file as it was, kept beside it.
    kept = list(old_database.parent.glob(f"todo.db.before-v{todo.SCHEMA_VERSION}-*"))
    assert len(kept) == 1 and rows(kept[0], "SELECT no, title FROM items ORDER BY no")[0] == (1, "first from before")

    # A cookie of the old form, still correctly signed with the site's key: signed out, not a 500.
    old_cookie = {"uid": 1, "ver": 1, "since": int(time.time()), "csrf": "an old form token"}
    app.set_cookie("todo_session", forge_cookie(OLD_SITE_KEY, json_payload(old_cookie)))
    assert_signs_nobody_in(app, old_database, "an old form token", "first from before")
    assert app.get("/login").status_int == 200

    assert login(app, "olduser", "not the password").status_int == 400  # the old hash is really checked
    answer = login(app, "olduser", OLD_PASSWORD)
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/"), "the old password no longer works"
    page = app.get("/")
    assert "first from before" in page.text and "second from before" in page.text
    assert post(app, "/items", title="after the upgrade").status_int == 303
    assert "Added #3." in app.get("/").text  # the counter carried over: not #1, not a clash with #1
    exported = [(item["no"], item["title"]) for item in app.get("/export.json").json["items"]]
    assert exported == [(1, "first from before"), (2, "second from before"), (3, "after the upgrade")]

    # A restart must not hand out new secrets: that would sign everyone out on every start.
    again = copy_session(app, TestApp(todo.create_app({"TODO_DATABASE": str(old_database)})))
    assert session_secrets(old_database) == given, "a restart replaced the secrets"
    kept_again = list(old_database.parent.glob(f"todo.db.before-v{todo.SCHEMA_VERSION}-*"))
    assert kept_again == kept, "a restart upgraded again"
    assert again.get("/").status_int == 200


# --- Revocation by replacing the secret ---------------------------------------------------


@pytest.fixture
def two_browsers(alice):
    """Return alice's browser and a copy of her cookie in another (a phone, or a thief)."""
    phone = copy_session(alice, browser(alice))
    assert phone.get("/").status_int == 200
    return alice, phone


def test_sign_out_everywhere_signs_out_a_copied_cookie(two_browsers):
    """Sign out everywhere replaces the secret: the copy made before is dead, a new sign-in works."""
    laptop, phone = two_browsers
    assert sent_to_login(post(laptop, "/account/logout-all"))
    assert sent_to_login(laptop.get("/"))
    assert sent_to_login(phone.get("/")), "the copied cookie survived sign out everywhere"
    assert login(laptop).status_int == 303 and laptop.get("/").status_int == 200
    assert sent_to_login(phone.get("/"))  # signing in again does not revive the old cookie


def test_password_change_keeps_this_browser_and_signs_out_the_copy(two_browsers):
    """A new password replaces the secret: this browser gets the new one, the copy does not."""
    laptop, phone = two_browsers
    answer = post(laptop, "/account/password", password=PASSWORD, new_password="a brand new password")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/account")
    assert laptop.get("/").status_int == 200, "the browser that changed the password was signed out"
    assert sent_to_login(phone.get("/")), "the copied cookie survived a password change"


@sqlite_only  # an older SQLite file (see old_database)
def test_workers_upgrading_an_older_database_together_all_start(old_database):
    """Eight workers start at once on a database from before secrets: the column is added once, nobody fails."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        errors = [error for error in pool.map(start_worker, [old_database] * 8) if error]
    assert errors == []
    given = session_secrets(old_database)
    assert len(given) == 2 and all(given) and len(set(given)) == 2


def start_worker(database):
    """Start as a worker does, in a thread; return the error, if any."""
    try:
        todo.init_db(database)
    except sqlite3.Error as error:
        return str(error)
    return None
