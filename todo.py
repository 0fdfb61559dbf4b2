"""todo: a small multi-user to-do site that stays right under many threads and workers.

Where does state live? Not in this process. Everything a request needs is read
fresh on every request: who you are from the signed session cookie, your items
from the SQLite database. The module holds configuration and code, never data,
so any number of threads (waitress) and worker processes (gunicorn -w 4,
PythonAnywhere) agree on every user's list.

Read it top to bottom: configuration, database, sessions and users, pages and
actions, command line.
"""

import argparse
import ctypes
import functools
import getpass
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import quote

import argon2
import bottle
from beaker.middleware import SessionMiddleware
from beaker.session import CookieSession
from bottle import HTTPResponse, abort, request, response

# --- Configuration ---------------------------------------------------------
# Constants and settings read once at start. None of them changes while the
# process runs, so reading them at import is safe: they are not data.

ROOT = Path(__file__).resolve().parent
DEFAULT_DATABASE = ROOT / "data" / "todo.db"
STATIC_ROOT = ROOT / "static"
bottle.TEMPLATE_PATH.insert(0, str(ROOT / "views"))

MAX_BODY = 64 * 1024  # bytes; anything bigger is refused with 413
MAX_TITLE = 500  # characters, after trimming
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024  # characters
SESSION_LIFETIME = timedelta(days=30)  # absolute: a sign-in lasts this long at most
LOGIN_FAILURE_LIMIT = 10  # failed sign-ins for one username ...
LOGIN_FAILURE_WINDOW = 15 * 60  # ... within this many seconds answer 429
FILTERS = {"/": "All", "/active": "Active", "/completed": "Completed"}


def return_big_blocks_to_the_system():
    """Make glibc's malloc give every large block back to the system when it is freed."""
    # Each argon2 hash borrows 19 MiB. Once one such block is freed, glibc
    # raises its mmap threshold and keeps later ones in the arena of the thread
    # that hashed: a worker whose 8 threads have each signed someone in keeps
    # about 190 MB. A fixed threshold (its default, 128 KiB) stops that.
    try:
        ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError, TypeError):
        pass  # not glibc (macOS, musl, Windows): nothing to tune


return_big_blocks_to_the_system()

# OWASP's first recommended argon2id setting (19 MiB, 2 passes): about 40 ms.
password_hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Hashed against when the username is unknown, so that answer takes as long as a wrong password.
DUMMY_PASSWORD_HASH = password_hasher.hash("not anybody's password")


bottle_app = bottle.Bottle()


def read_config(environ):
    """Return the settings from environment variables, with their defaults."""
    signup = environ.get("TODO_SIGNUP", "open")
    if signup not in ("open", "closed"):
        raise SystemExit(f"TODO_SIGNUP must be 'open' or 'closed', not {signup!r}")
    return {
        "database": Path(environ.get("TODO_DATABASE") or DEFAULT_DATABASE).resolve(),
        "secret_key": environ.get("TODO_SECRET_KEY") or None,
        "signup": signup,
        "secure_cookies": environ.get("TODO_SECURE_COOKIES") == "1",
    }


# --- Database --------------------------------------------------------------
# SQLite is the only place data lives. Every request opens its own connection
# and closes it when the request ends, so every read sees what any worker has
# committed. Every write runs inside BEGIN IMMEDIATE: it takes the database's
# write lock *before* reading, so two workers can never both read "next number
# is 7" and both write #7.
#
# Fewer statements make a faster site. Python's sqlite3 lets go of the GIL
# around each call into SQLite, and a statement run with execute() makes about
# ten (prepare, step, one per column of each row, reset, finalize). With 8
# threads busy, each is a chance for another thread to take over, at the price
# of a thread switch. So the list page asks for the user and the items in one
# statement, and a write opens its transaction with a single call.

SCHEMA = """
-- AUTOINCREMENT: a deleted user's id is never given again, so a cookie left in
-- one of their browsers can never name a later account.
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    session_version INTEGER NOT NULL DEFAULT 1,  -- bumped to revoke every cookie
    last_item_no INTEGER NOT NULL DEFAULT 0,     -- the per-user counter, never reused
    created TEXT NOT NULL
);
-- The primary key starts with the user, so one user's items are stored together.
CREATE TABLE IF NOT EXISTS items (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    no INTEGER NOT NULL,
    title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    PRIMARY KEY (user_id, no)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    username TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_by_username ON login_failures (username, at);
"""


def connect(path):
    """Open a connection that writes only in explicit transactions."""
    # isolation_level=None: Python's sqlite3 must not open transactions behind
    # our back (its deferred BEGIN loses updates under several processes).
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.row_factory = sqlite3.Row
    return db


@contextmanager
def transaction(db):
    """Run the block as one write transaction holding the write lock from the start."""
    # Both settings are per connection, matter only to writes, and must be
    # made outside a transaction: so they are made here, not for every read.
    # executescript() runs each statement in one call into SQLite, where
    # execute() makes several; commit() and rollback() make one too.
    db.executescript(
        "PRAGMA foreign_keys = ON;"  # enforce REFERENCES, cascade deletes
        "PRAGMA synchronous = NORMAL;"  # in WAL: survives a crash, no fsync per commit
        "BEGIN IMMEDIATE;"
    )
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.commit()


def use_wal(db):
    """Switch the database to WAL, unless it is already (it is kept in the file)."""
    # WAL lets readers and one writer work at once. Only a new database needs
    # the switch, and the switch needs the file to itself: SQLite does not
    # wait for that, so when several workers create the file together, the
    # ones that lose the race try again until the winner has switched it.
    deadline = time.monotonic() + 10
    while db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def init_db(path):
    """Create the database and its schema if missing; safe on every start, in every worker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = connect(path)
    try:
        use_wal(db)
        # One transaction holding the write lock: workers starting together take turns.
        db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
    finally:
        db.close()


def shared_secret_key(path):
    """Return the session key kept in the database, creating it if this is the first start."""
    db = connect(path)
    try:
        with transaction(db):
            # Several workers may start at once: the first INSERT wins and
            # every worker then reads that same key back.
            db.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES ('secret_key', ?)",
                (secrets.token_hex(32),),
            )
            row = db.execute("SELECT value FROM settings WHERE name = 'secret_key'").fetchone()
        return row["value"]
    finally:
        db.close()


@functools.lru_cache(maxsize=4)
def wal_keeper(path, pid):
    """Open one idle connection per process and database, so that no request's close is the last."""
    # When the last connection to a WAL database closes, SQLite checkpoints
    # the WAL into the database file (with an fsync), deletes it and its
    # index, and the next connection rebuilds them: about 200 us per request
    # whenever requests do not overlap. This connection stays open but idle:
    # it runs one read to attach to the WAL, then never again, so it holds no
    # data and no transaction, and checkpoints still run as the WAL grows.
    # Every request still opens its own connection and reads fresh.
    # The pid is part of the key because a connection must never cross a
    # fork (gunicorn --preload): each worker process opens its own.
    db = connect(path)
    db.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    return db


def get_db():
    """Return this request's database connection, opening it on first use."""
    db = request.environ.get("todo.db")
    if db is None:
        path = bottle_app.config["todo.database"]
        wal_keeper(path, os.getpid())
        db = request.environ["todo.db"] = connect(path)
    return db


@bottle_app.hook("after_request")
def close_db():
    """Close this request's connection, if it opened one, and drop what the request read."""
    # The environ outlives the request: Bottle and Beaker each keep it in a
    # reference cycle, freed only by Python's occasional cycle collection,
    # and Bottle's thread-local request holds the last one. So the user and
    # their items (current_user's "todo.user", below) are not left in it.
    request.environ.pop("todo.user", None)
    db = request.environ.pop("todo.db", None)
    if db is not None:
        db.close()


def now_iso():
    """Return the current time in UTC as an ISO 8601 string."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# A user's items as one JSON array of [no, title, done, created], in number
# order: one row, not one per item. Python's sqlite3 lets go of the GIL for
# every row it steps through, and a single row made a page of 1,000 items
# about four times faster under load.
ITEMS_AS_JSON = (
    "SELECT json_group_array(json_array(no, title, done, created)) "
    "FROM (SELECT no, title, done, created FROM items WHERE user_id = :user_id ORDER BY no)"
)


def load_items(db, user_id):
    """Return the user's items as [no, title, done, created] lists, in number order."""
    return json.loads(db.execute(ITEMS_AS_JSON, {"user_id": user_id}).fetchone()[0])


# --- Sessions and users ----------------------------------------------------
# The session is a Beaker cookie, signed with one key that every worker
# shares, serialised as JSON (never pickle). It holds only ids and tokens:
#   uid: the signed-in user, ver: that user's session version when signing in,
#   since: when they signed in, csrf: the form token, flash: a short message.
# Because it travels with the browser, whichever worker answers the next
# request sees the same session. Revocation lives in the database:
# users.session_version is checked on every request.


class UnchangedCookieSession(CookieSession):
    """Beaker's signed cookie session, re-signed and sent only when its contents change."""

    # Beaker's CookieSession re-signs a cookie it has just loaded and flags it
    # to be sent back, so every page cost a signature and a Set-Cookie header
    # even when nothing changed. The browser already holds that exact cookie,
    # so we sign it only in save(). The signature is still checked on every
    # load, and as the cookie carries all the session, no worker keeps any of it.
    _loading = False

    def __init__(self, request, **options):
        """Load and verify the cookie, without signing it again."""
        self._loading = True
        super().__init__(request, **options)
        self._loading = False

    def _create_cookie(self):
        """Sign the session into the outgoing cookie, unless it is only being loaded."""
        if not self._loading:
            super()._create_cookie()


def session_options(secret_key, secure_cookies):
    """Return Beaker's settings for a signed, JSON, cookie-only session."""
    return {
        "session.type": "cookie",
        "session.session_class": UnchangedCookieSession,
        "session.key": "todo_session",
        "session.validate_key": secret_key,
        "session.data_serializer": "json",
        "session.httponly": True,
        "session.samesite": "Lax",
        "session.secure": secure_cookies,
        "session.cookie_expires": SESSION_LIFETIME,
        "session.save_accessed_time": False,  # send the cookie only when it changes
    }


def session():
    """Return this request's Beaker session."""
    return request.environ["beaker.session"]


def csrf_token():
    """Return the session's form token, creating it on first use."""
    token = session().get("csrf")
    if not isinstance(token, str):
        token = session()["csrf"] = secrets.token_urlsafe(32)
        session().save()
    return token


def flash(message):
    """Keep a short message in the cookie for the next page, whichever worker serves it."""
    session()["flash"] = message
    session().save()


def pop_flash():
    """Return and forget the pending message, if any."""
    message = session().pop("flash", None)
    if message is not None:
        session().save()
    return message if isinstance(message, str) else None


def current_user(with_items=False):
    """Return the signed-in user, or None: checked against the database on every request.

    The user is a dict with "id" and "username", and with "items" (as load_items
    gives them) when asked for.
    """
    user = request.environ.get("todo.user")
    if "todo.user" not in request.environ or (with_items and user is not None and "items" not in user):
        user = request.environ["todo.user"] = load_session_user(with_items)
    return user


def load_session_user(with_items):
    """Return the user the session names, if its version and age still hold."""
    uid, version, since = (session().get(key) for key in ("uid", "ver", "since"))
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (uid, version, since)):
        return None
    if time.time() - since > SESSION_LIFETIME.total_seconds():
        return None
    # The version is part of the query: no row when the user was deleted, or
    # signed out everywhere, since this cookie was made. The items come in the
    # same statement when asked for (the list page: see Database). The query
    # is built from constants only; every value is a parameter.
    items = f", ({ITEMS_AS_JSON}) AS items" if with_items else ""
    row = (
        get_db()
        .execute(
            f"SELECT username{items} FROM users WHERE id = :user_id AND session_version = :version",
            {"user_id": uid, "version": version},
        )
        .fetchone()
    )
    if row is None:
        return None
    user = {"id": uid, "username": row["username"]}
    if with_items:
        user["items"] = json.loads(row["items"])
    return user


def sign_in(user_id, session_version, csrf=None):
    """Start a fresh session for the user: a new cookie, and a new form token unless given one (no fixation)."""
    sess = session()
    sess.invalidate()
    sess.update(
        uid=user_id,
        ver=session_version,
        since=int(time.time()),
        csrf=csrf or secrets.token_urlsafe(32),
    )
    sess.save()


def sign_out(message):
    """Forget the user in this browser and leave a message for the sign-in page."""
    sess = session()
    sess.invalidate()
    sess.update(csrf=secrets.token_urlsafe(32), flash=message)
    sess.save()


def login_required(handler):
    """Pass the signed-in user to the handler; send everyone else to the sign-in page."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        user = current_user()
        if user is None:
            see_other("/login")
        return handler(user, *args, **kwargs)

    return wrapper


def check_username(username):
    """Return why the username cannot be registered, or None."""
    if not USERNAME_PATTERN.fullmatch(username):
        return "A username is 3 to 32 letters, digits, dots, dashes or underscores."
    return None


def check_password(password):
    """Return why the password cannot be used, or None."""
    if len(password) < PASSWORD_MIN:
        return f"A password has at least {PASSWORD_MIN} characters."
    if len(password) > PASSWORD_MAX:
        return f"A password has at most {PASSWORD_MAX} characters."
    return None


def create_user(db, username, password):
    """Add an account and return its id; raise ValueError with the reason if it cannot be."""
    error = check_username(username) or check_password(password)
    if error:
        raise ValueError(error)
    password_hash = password_hasher.hash(password)  # slow on purpose: outside the lock
    try:
        with transaction(db):
            return db.execute(
                "INSERT INTO users (username, password_hash, created) VALUES (?, ?, ?) RETURNING id",
                (username, password_hash, now_iso()),
            ).fetchone()["id"]
    except sqlite3.IntegrityError:
        raise ValueError("That username is taken.") from None


def verify_password(password_hash, password):
    """Return True if the password matches the hash."""
    try:
        return password_hasher.verify(password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def login_retry_after(db, username_key):
    """Record a sign-in attempt; return seconds to wait if the username is throttled, else 0."""
    now = time.time()
    with transaction(db):
        # Counted in the database under the write lock, so four workers
        # together let through exactly as many attempts as one would.
        db.execute("DELETE FROM login_failures WHERE at < ?", (now - LOGIN_FAILURE_WINDOW,))
        failures = db.execute(
            "SELECT count(*) AS n, min(at) AS oldest FROM login_failures WHERE username = ?",
            (username_key,),
        ).fetchone()
        if failures["n"] >= LOGIN_FAILURE_LIMIT:
            return max(1, int(failures["oldest"] + LOGIN_FAILURE_WINDOW - now) + 1)
        # Count this attempt as failed until the password proves otherwise.
        db.execute(
            "INSERT INTO login_failures (username, at) VALUES (?, ?)",
            (username_key, now),
        )
    return 0


def too_many_failures(wait):
    """Return the message for a throttled username, with the wait in whole minutes."""
    minutes = -(-wait // 60)  # rounded up
    return f"Too many failed sign-ins for this username. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


def forget_login_attempt(db, username_key):
    """Take back the failure recorded for an attempt that turned out right."""
    with transaction(db):
        db.execute(
            "DELETE FROM login_failures WHERE rowid = "
            "(SELECT rowid FROM login_failures WHERE username = ? ORDER BY at DESC LIMIT 1)",
            (username_key,),
        )


# --- Pages and actions -----------------------------------------------------


def see_other(path):
    """Answer 303 See Other: the browser loads this page of the site next (Post/Redirect/Get)."""
    # A relative Location, which HTTP allows: the browser resolves it against
    # the address it used, so it stays on https:// behind any proxy. Bottle's
    # redirect() builds an absolute URL from the Host and X-Forwarded-Host
    # headers instead, which anyone can forge (a malformed one made it fail).
    answer = response.copy(cls=HTTPResponse)  # keeps headers already set, as redirect() does
    answer.status = 303
    answer.body = ""
    answer.set_header("Location", path)
    raise answer


def form_field(name):
    """Return a form field as text decoded from UTF-8, '' when missing; 400 when it is not text."""
    try:
        # getunicode, not get(): Bottle's get() gives latin-1 mojibake for UTF-8.
        value = request.forms.getunicode(name)
    except (bottle.MultipartError, ValueError, LookupError):  # LookupError: an unknown charset=
        abort(400, "The form could not be read.")
    # None: missing, or sent as bytes that are not UTF-8 or as a file, which
    # request.POST holds (already read above) and request.forms does not.
    if value is None and name in request.POST:
        abort(400, f"The form's {name} field is not UTF-8 text.")
    return value or ""


@bottle_app.hook("before_request")
def check_request():
    """Refuse oversized bodies (413) and POSTs without the session's form token (403)."""
    environ = request.environ
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        abort(400, "Bad Content-Length.")
    if length > MAX_BODY:
        abort(413, "The request is too large (64 KiB at most).")
    if length < 0 and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        # A chunked body has no length up front: read at most the limit, then
        # hand Bottle a plain body (the server has already removed the chunking).
        body = b""
        while len(body) <= MAX_BODY and (chunk := environ["wsgi.input"].read(MAX_BODY + 1 - len(body))):
            body += chunk
        if len(body) > MAX_BODY:
            abort(413, "The request is too large (64 KiB at most).")
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        del environ["HTTP_TRANSFER_ENCODING"]
    if request.method == "POST":
        expected = session().get("csrf")
        given = form_field("csrf_token")
        if not isinstance(expected, str) or not hmac.compare_digest(given.encode(), expected.encode()):
            abort(
                403,
                "The form has expired or did not come from this site. Go back, reload and try again.",
            )


@bottle_app.hook("after_request")
def set_security_headers():
    """Add the headers that keep the pages from being framed, sniffed or cached."""
    response.set_header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    response.set_header("X-Content-Type-Options", "nosniff")
    response.set_header("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.set_header("Cache-Control", "no-store")


def escape_html(value):
    """Return the value as text with &, <, >, " and ' escaped, as Bottle's html_escape does."""
    if type(value) is int:
        return str(value)  # digits and a minus sign: nothing to escape, so no five replaces
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;").replace("'", "&#039;")


class Template(bottle.SimpleTemplate):
    """Bottle's SimpleTemplate, escaping each {{value}} in one call, and letting go of a page's values at once."""

    def execute(self, _stdout, kwargs):
        """Run the compiled template as Bottle 0.13 does, with escape_html, then empty its namespace."""
        # Bottle wraps html_escape in a lambda and a text conversion, which
        # html_escape repeats: four Python calls for every {{value}}. A page
        # of 50 items has 400 of them, 350 of them item numbers. The wrapping
        # alone was an eighth of the page's time, and escaping numbers that
        # cannot hold a special character another eighth.
        # And its include() and rebase() hold the namespace they live in: a
        # cycle, which only Python's occasional cycle collection frees. Until
        # then a page's items and its text stayed in memory, a page's worth
        # for every request since the last collection, and kept the process
        # 5 MiB larger after a few 1,000-item pages. Emptying the namespace
        # when the page is done frees them right away.
        env = self.defaults.copy()
        env.update(kwargs)
        env.update(
            _stdout=_stdout,
            _printlist=_stdout.extend,
            include=functools.partial(self._include, env),
            rebase=functools.partial(self._rebase, env),
            _rebase=None,
            _str=self._str,
            _escape=escape_html,
            get=env.get,
            setdefault=env.setdefault,
            defined=env.__contains__,
        )
        try:
            exec(self.co, env)
            if env.get("_rebase"):  # the page named a layout: render it around what the page wrote
                layout, values = env.pop("_rebase")
                values["base"] = "".join(_stdout)
                del _stdout[:]
                self._include(env, layout, **values)
        finally:
            env.clear()


def template(name, **values):
    """Render a template (from views/, compiled once per process) with these values."""
    return bottle.template(name, template_adapter=Template, **values)


def render(name, status=200, **values):
    """Render a template inside the layout, with what every page needs."""
    response.status = status
    return template(
        name,
        user=current_user(),
        csrf_token=csrf_token(),
        flash=pop_flash(),
        signup_open=bottle_app.config["todo.signup"] == "open",
        **values,
    )


def error_page(error):
    """Render an error with its reason inside the layout."""
    set_security_headers()  # a 500 replaces the response's headers after the hooks have run
    return template("error", error=error, user=None, csrf_token="", flash=None, signup_open=False)


for status in (400, 403, 404, 405, 413, 429, 500, 503):
    bottle_app.error(status)(error_page)


@bottle_app.get("/static/<path:path>")
def static(path):
    """Serve a stylesheet or an icon."""
    return bottle.static_file(path, root=STATIC_ROOT)


@bottle_app.get("/healthz")
def healthz():
    """Answer 200 'ok' when the database answers."""
    try:
        get_db().execute("SELECT 1 FROM settings LIMIT 1").fetchall()
    except sqlite3.Error:
        abort(503, "The database does not answer.")
    response.content_type = "text/plain; charset=utf-8"
    return "ok"


def back_path():
    """Return the list page the form came from: one of the filters, never anywhere else."""
    path = form_field("back")
    return path if path in FILTERS else "/"


def show_list(items, path, error=None, status=200, title=""):
    """Render the list page of these items with the given filter."""
    active = [item for item in items if not item[2]]  # item: [no, title, done, created]
    completed = [item for item in items if item[2]]
    shown = {"/": items, "/active": active, "/completed": completed}[path]
    return render(
        "list",
        status=status,
        items=shown,
        total=len(items),
        left=len(active),
        path=path,
        filters=FILTERS,
        error=error,
        title=title,
    )


@bottle_app.get("/")
@bottle_app.get("/active")
@bottle_app.get("/completed")
def list_page():
    """Show the user's items: all, not done, or done."""
    # Not @login_required: the busiest page checks the session and reads the
    # items in one statement.
    user = current_user(with_items=True)
    if user is None:
        see_other("/login")
    return show_list(user["items"], request.path)


def check_title(title):
    """Return why a (trimmed) title cannot be used, or None."""
    if not title:
        return "An item needs a title."
    if len(title) > MAX_TITLE:
        return f"A title has at most {MAX_TITLE} characters (this one has {len(title)})."
    return None


def add_item(db, user_id, title):
    """Store a new item and return its number: the user's next, under the write lock."""
    with transaction(db):
        # The counter and the item change in one transaction holding the write
        # lock, so concurrent adds from any workers get 1, 2, 3... with no
        # duplicates and no gaps; deleting an item never frees its number.
        counter = db.execute(
            "UPDATE users SET last_item_no = last_item_no + 1 WHERE id = ? RETURNING last_item_no",
            (user_id,),
        ).fetchone()
        if counter is None:  # the account was deleted, in another browser, since this request began
            abort(404, "This account no longer exists.")
        no = counter["last_item_no"]
        db.execute(
            "INSERT INTO items (user_id, no, title, created) VALUES (?, ?, ?, ?)",
            (user_id, no, title, now_iso()),
        )
    return no


@bottle_app.post("/items")
@login_required
def add(user):
    """Add an item with the user's next number."""
    title = form_field("title").strip()
    error = check_title(title)
    if error:
        items = load_items(get_db(), user["id"])
        return show_list(items, back_path(), error=error, status=400, title=title[: MAX_TITLE * 2])
    no = add_item(get_db(), user["id"], title)
    flash(f"Added #{no}.")
    see_other(back_path())


def item_number(no):
    """Return the item number from the URL, or answer 404 when it cannot be one."""
    digits = no.lstrip("0") or "0"
    # Beyond SQLite's integers: certainly nobody's item. Check the length first:
    # int() refuses strings over 4,300 digits with a ValueError (a 500).
    if len(digits) > 19 or int(digits) > 2**63 - 1:
        abort(404, "There is no such item.")
    return int(digits)


def change_item(user, no, sql, values=()):
    """Run one statement on the user's item #no and return the number; 404 when there is no such item."""
    no = item_number(no)
    db = get_db()
    with transaction(db):
        changed = db.execute(sql, (*values, user["id"], no)).rowcount
    if not changed:
        abort(404, f"You have no item #{no}.")
    return no


@bottle_app.post("/items/<no:re:[0-9]+>/toggle")
@login_required
def toggle(user, no):
    """Mark the item done, or not done again."""
    change_item(user, no, "UPDATE items SET done = 1 - done WHERE user_id = ? AND no = ?")
    see_other(back_path())


def find_item(user, no):
    """Return the user's item #no; 404 when the user has no such item."""
    no = item_number(no)
    item = (
        get_db().execute("SELECT no, title, done FROM items WHERE user_id = ? AND no = ?", (user["id"], no)).fetchone()
    )
    if item is None:
        abort(404, f"You have no item #{no}.")  # never say more about a number that is not theirs
    return item


@bottle_app.get("/items/<no:re:[0-9]+>/edit")
@login_required
def edit_page(user, no):
    """Show the form that renames an item."""
    item = find_item(user, no)
    return render("edit", no=item["no"], title=item["title"], error=None)


@bottle_app.post("/items/<no:re:[0-9]+>/edit")
@login_required
def edit(user, no):
    """Rename the item; a title empty after trimming deletes it."""
    title = form_field("title").strip()
    if not title:
        if "title" not in request.forms:  # a broken form, not a wish to delete
            abort(400, "The form has no title.")
        return delete(no)
    error = check_title(title)
    if error:
        item = find_item(user, no)
        return render("edit", status=400, no=item["no"], title=title[: MAX_TITLE * 2], error=error)
    change_item(user, no, "UPDATE items SET title = ? WHERE user_id = ? AND no = ?", (title,))
    see_other(back_path())


@bottle_app.post("/items/<no:re:[0-9]+>/delete")
@login_required
def delete(user, no):
    """Delete the item."""
    no = change_item(user, no, "DELETE FROM items WHERE user_id = ? AND no = ?")
    flash(f"Deleted #{no}.")
    see_other(back_path())


@bottle_app.post("/items/toggle-all")
@login_required
def toggle_all(user):
    """Mark every item done, or every item not done when all already are."""
    db = get_db()
    with transaction(db):
        not_done = db.execute("SELECT count(*) FROM items WHERE user_id = ? AND NOT done", (user["id"],)).fetchone()
        db.execute(
            "UPDATE items SET done = ? WHERE user_id = ?",
            (1 if not_done[0] else 0, user["id"]),
        )
    see_other(back_path())


@bottle_app.post("/items/clear-completed")
@login_required
def clear_completed(user):
    """Delete the done items."""
    db = get_db()
    with transaction(db):
        cleared = db.execute("DELETE FROM items WHERE user_id = ? AND done", (user["id"],)).rowcount
    flash(f"Cleared {cleared} completed item{'' if cleared == 1 else 's'}.")
    see_other(back_path())


@bottle_app.get("/export.json")
@login_required
def export(user):
    """Return the user's items as JSON, in number order."""
    response.content_type = "application/json"
    items = [
        {"no": no, "title": title, "done": bool(done), "created": created}
        for no, title, done, created in load_items(get_db(), user["id"])
    ]
    return json.dumps({"items": items}, ensure_ascii=False, indent=1)


@bottle_app.get("/register")
def register_form():
    """Show the sign-up form."""
    if bottle_app.config["todo.signup"] != "open":
        abort(403, "Sign-up is closed on this site. Ask its owner for an account.")
    if current_user():
        see_other("/")
    return render("login", page="register", error=None, username="")


@bottle_app.post("/register")
def register():
    """Create an account and sign in."""
    if bottle_app.config["todo.signup"] != "open":
        abort(403, "Sign-up is closed on this site. Ask its owner for an account.")
    username, password = form_field("username").strip(), form_field("password")
    try:
        user_id = create_user(get_db(), username, password)
    except ValueError as error:
        return render(
            "login",
            status=400,
            page="register",
            error=str(error),
            username=username[:64],
        )
    sign_in(user_id, 1)
    flash(f"Welcome, {username}.")
    see_other("/")


@bottle_app.get("/login")
def login_form():
    """Show the sign-in form."""
    if current_user():
        see_other("/")
    return render("login", page="login", error=None, username="")


@bottle_app.post("/login")
def login():
    """Sign in, counting failures per username in the database."""
    username, password = form_field("username").strip(), form_field("password")
    db = get_db()
    username_key = username.lower()[:64]
    wait = login_retry_after(db, username_key)
    if wait:
        response.set_header("Retry-After", str(wait))
        return render(
            "login",
            status=429,
            page="login",
            username=username[:64],
            error=too_many_failures(wait),
        )
    user = db.execute(
        "SELECT id, password_hash, session_version FROM users WHERE username = ?",
        (username,),
    ).fetchone()
    # An unknown username costs one hash too, so the answer's timing does not tell.
    if not verify_password(user["password_hash"] if user else DUMMY_PASSWORD_HASH, password) or user is None:
        return render(
            "login",
            status=400,
            page="login",
            username=username[:64],
            error="Wrong username or password.",
        )
    forget_login_attempt(db, username_key)
    if password_hasher.check_needs_rehash(user["password_hash"]):
        with transaction(db):
            # Only if the hash is still the one checked: never undo a password
            # change another worker committed meanwhile.
            db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (password_hasher.hash(password), user["id"], user["password_hash"]),
            )
    sign_in(user["id"], user["session_version"])
    see_other("/")


@bottle_app.post("/logout")
def logout():
    """Sign out this browser."""
    sign_out("Signed out.")
    see_other("/login")


@bottle_app.get("/account")
@login_required
def account_page(user):
    """Show the account page: password, sign out everywhere, delete."""
    return render("account", error=None)


def check_current_password(user):
    """Return True if the form's password is the user's; wrong ones count as failed sign-ins."""
    # Counted with the sign-in form's failures: a stolen cookie must not buy
    # unlimited guesses at the password (and with it the account for good).
    db = get_db()
    username_key = user["username"].lower()
    wait = login_retry_after(db, username_key)
    if wait:
        raise bottle.HTTPError(429, too_many_failures(wait), **{"Retry-After": str(wait)})
    row = db.execute("SELECT password_hash FROM users WHERE id = ?", (user["id"],)).fetchone()
    if not verify_password(row["password_hash"], form_field("password")):
        return False
    forget_login_attempt(db, username_key)
    return True


@bottle_app.post("/account/password")
@login_required
def change_password(user):
    """Change the password; every other browser is signed out, this one stays in."""
    new_password = form_field("new_password")
    error = None
    if not check_current_password(user):
        error = "Your current password is not right."
    else:
        error = check_password(new_password)
    if error:
        return render("account", status=400, error=error)
    db = get_db()
    new_hash = password_hasher.hash(new_password)
    with transaction(db):
        version = db.execute(
            "UPDATE users SET password_hash = ?, session_version = session_version + 1 WHERE id = ? "
            "RETURNING session_version",
            (new_hash, user["id"]),
        ).fetchone()["session_version"]
    # This browser stays in, and so do the forms in its other tabs: same token.
    sign_in(user["id"], version, csrf=csrf_token())
    flash("Password changed. Every other browser is signed out.")
    see_other("/account")


@bottle_app.post("/account/logout-all")
@login_required
def logout_all(user):
    """Sign out every browser of this user, this one included."""
    db = get_db()
    with transaction(db):
        db.execute(
            "UPDATE users SET session_version = session_version + 1 WHERE id = ?",
            (user["id"],),
        )
    sign_out("Signed out everywhere.")
    see_other("/login")


@bottle_app.post("/account/delete")
@login_required
def delete_account(user):
    """Delete the account and all its items; the username is free again."""
    if not check_current_password(user):
        return render(
            "account",
            status=400,
            error="Your password is not right; the account is still here.",
        )
    db = get_db()
    with transaction(db):
        db.execute("DELETE FROM users WHERE id = ?", (user["id"],))  # items go with it (ON DELETE CASCADE)
    sign_out("Your account and all its items are deleted.")
    see_other("/login")


def create_app(environ=os.environ):
    """Prepare the database and return the session-wrapped WSGI app for these settings."""
    config = read_config(environ)
    init_db(config["database"])
    bottle_app.config.update({"todo.database": str(config["database"]), "todo.signup": config["signup"]})
    secret_key = config["secret_key"] or shared_secret_key(config["database"])
    return SessionMiddleware(bottle_app, session_options(secret_key, config["secure_cookies"]))


# The WSGI callable: `waitress-serve todo:app`, `gunicorn todo:app`, and
# PythonAnywhere's WSGI file (`from todo import application`).
app = application = create_app()


# --- Command line ----------------------------------------------------------


def log_safe(text):
    """Return text fit for one log line: non-ASCII bytes, spaces and control characters %-escaped."""
    # WSGI strings carry the raw request bytes as latin-1; a decoded %0A in a path must not start a new line.
    return quote(text.encode("latin-1", "backslashreplace"), safe="/!$&'()*+,;=:@-._~") or "-"


def access_log(wsgi_app):
    """Wrap the app to write one line per request to stderr (waitress writes none).

    The line: remote address, method, path, status, and the time until the
    whole answer was handed to the server, e.g. `127.0.0.1 POST /items 303 41.8ms`.
    """

    def logged(environ, start_response):
        """Answer the request, then log it, however it ended."""
        started = time.perf_counter()
        status = "-"
        # Read before the app runs: Bottle rewrites PATH_INFO in place (decoded as UTF-8).
        request_line = " ".join(
            log_safe(environ.get(key, "")) for key in ("REMOTE_ADDR", "REQUEST_METHOD", "PATH_INFO")
        )

        def recording_start_response(status_line, headers, exc_info=None):
            """Note the status (the last one, if an error replaced it) and pass it on."""
            nonlocal status
            status = status_line.split(" ", 1)[0]
            return start_response(status_line, headers, exc_info)

        body = None
        try:
            body = wsgi_app(environ, recording_start_response)
            yield from body
        finally:
            if hasattr(body, "close"):
                body.close()  # WSGI: the app's iterable must be closed (a static file, say)
            # One write per line: print() writes the text and the newline
            # separately, and two threads' lines could interleave between them.
            sys.stderr.write(f"{request_line} {status} {(time.perf_counter() - started) * 1000:.1f}ms\n")
            sys.stderr.flush()

    return logged


def read_new_password():
    """Read a password: from a prompt on a terminal, else one line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            raise ValueError("The two passwords differ.")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def backup(source, target):
    """Copy the database consistently with SQLite's online backup, while the site runs."""
    src = connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def main(argv=None):
    """Serve the site, or run one of its commands."""
    parser = argparse.ArgumentParser(prog="todo.py", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("PORT") or "8080",  # argparse turns it into an int, or says what is wrong
        help="default $PORT or 8080",
    )
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    adduser_parser = commands.add_parser("adduser", help="create an account (password from a prompt or stdin)")
    adduser_parser.add_argument("name")
    backup_parser = commands.add_parser("backup", help="copy the database consistently while the site runs")
    backup_parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    database = Path(bottle_app.config["todo.database"])

    if args.command == "adduser":
        db = connect(database)
        try:
            create_user(db, args.name, read_new_password())
        except ValueError as error:
            sys.exit(f"adduser: {error}")
        except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt
            sys.exit("\nadduser: cancelled, no account created")
        finally:
            db.close()
        print(f"Created user {args.name}.")
    elif args.command == "backup":
        if args.file.resolve() == database:
            sys.exit("backup: the copy must not be the database itself")
        try:
            backup(database, args.file)
        except sqlite3.Error as error:
            sys.exit(f"backup: {error}")
        print(f"Copied {database} to {args.file}.")
    else:
        import waitress

        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        # Waitress warns "Task queue depth is N" for every request that has to
        # wait for a free thread: under load, a line per request (tens of
        # thousands a minute), each written under the logging lock. Requests
        # waiting their turn are normal on a busy site, not a warning.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        served = app if args.quiet else access_log(app)
        waitress.serve(
            served,
            host=args.host,
            port=args.port,
            threads=args.threads,
            max_request_body_size=MAX_BODY,
        )


if __name__ == "__main__":
    main()
