"""todo: a small multi-user to-do site that stays right under many threads and workers.

Where does state live? Not in this process. A module global goes stale once read, is shared
by every user, and differs in each worker process. So who you are travels with each request
in a signed cookie; everything else lives in the database and is read fresh by every request;
and every write is one transaction that holds the lock on what it depends on. Any number of
threads, processes, hosts and people sharing a list then agree.

It reads in parts, each begun by a banner line `# --- `:
  1. The lesson, in the first 500 lines: the settings, the SQLite database, the signed-cookie
     session and the current user, a list's page and the add: every place state lives.
  2. The rest of the site: request safety, a list's other pages, lists shared, dates, accounts.
  3. Running it: the WSGI app, serving and stopping, the commands.
  4. PostgreSQL, past one host: all it needs, reached from part 1 through connect() alone.
  5. Upgrades of older databases.
  6. The speed-ups, last: each reached by its name, none needed to follow the parts above.
"""

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
import zoneinfo
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import quote, unquote

import argon2
import bottle
from beaker.middleware import SessionMiddleware
from beaker.session import CookieSession, SignedCookie
from bottle import HTTPError, HTTPResponse, abort, request, response
from dateutil.relativedelta import relativedelta

# --- Part 1, the lesson: where state lives ----------------------------------

# -- Settings --
# Constants, and the settings read from the environment when an app is made. None of them
# changes while the process runs: they are not data, so each worker may hold its own copy.
# Whatever else a process keeps is never data either: caches of what cannot change (compiled
# templates, time-zone names), idle connections, and limits on the work it takes on at once.

ROOT = Path(__file__).resolve().parent  # every path starts here, never at the working directory
DEFAULT_DATABASE = ROOT / "data" / "todo.db"
VIEWS, STATIC = (str(ROOT / "views"),), ROOT / "static"
MAX_BODY = 64 * 1024  # bytes; anything bigger is refused with 413
MAX_TITLE = 500  # characters, after trimming
NO_SUCH_LIST = "There is no such list, or it is not shared with you."  # the same words either way
SESSION_LIFETIME = 30 * 24 * 3600  # seconds, absolute: a sign-in lasts this long at most
FILTERS = {"": (0, 1), "/active": (0, 0), "/completed": (1, 1)}  # a list's pages: the values of `done` each shows
PAGE_SIZE = 500  # items on one list page; ?page=2 and on show the rest
WHOLE_NUMBER = re.compile(r"[1-9][0-9]{0,8}")  # 1 to 999,999,999: a ?page=, a number setting
BUSY_TIMEOUT = 2  # seconds a request waits for the write lock before it answers 503


def read_config(environ):
    """Return the settings from environment variables, with their defaults."""
    signup = environ.get("TODO_SIGNUP", "open")
    if signup not in ("open", "closed"):
        raise SystemExit(f"TODO_SIGNUP must be 'open' or 'closed', not {signup!r}")
    url = environ.get("DATABASE_URL")  # PostgreSQL, past one host; else the SQLite file
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("todo: DATABASE_URL must be a PostgreSQL URL: postgresql://user:password@host/name")
    numbers = {"TODO_POOL_SIZE": "8", "TODO_MAX_ITEMS": "10000"}  # PostgreSQL connections a process, items a list
    for name, default in numbers.items():
        numbers[name] = environ.get(name) or default
        if not WHOLE_NUMBER.fullmatch(numbers[name]):
            raise SystemExit(f"todo: {name} must be a whole number from 1, not {numbers[name]!r}")
    timezone = environ.get("TODO_TIMEZONE") or "UTC"
    if timezone not in time_zones():
        raise SystemExit(f"todo: TODO_TIMEZONE must be a time zone's IANA name such as Europe/Paris, not {timezone!r}")
    return {
        "database": url or Path(environ.get("TODO_DATABASE") or DEFAULT_DATABASE).resolve(),
        "timezone": timezone,  # "today" for users who have not chosen a time zone
        "pool_size": int(numbers["TODO_POOL_SIZE"]),
        "secret_key": environ.get("TODO_SECRET_KEY") or None,  # the site's key, which signs every cookie
        "signup": signup,
        "secure_cookies": environ.get("TODO_SECURE_COOKIES") == "1",
        "max_items": int(numbers["TODO_MAX_ITEMS"]),
    }


def config():
    """Return the settings of the app serving this request: they travel with it (see create_app)."""
    return request.environ["todo.config"]


# -- The database --
# The database is the only place data lives. Each request has a connection of its own
# (get_db), so every read sees what any worker has committed: nothing is read once and kept.
# Two defences keep concurrent writes right, each against its own race:
# - A number taken in one statement. The naive add reads `SELECT max(no) + 1`, then INSERTs:
#   two workers both read 6 and both write #7 (bench/demo_workers.py shows it with a global
#   counter). add_item takes it with one `UPDATE ... RETURNING` on the list's counter, so no
#   two adds can ever read the same number, whatever else runs.
# - The write lock taken *before* the first read, where a write depends on what it reads
#   (mark all done counts the items; the sign-in throttle counts failures): transaction()
#   begins with SQLite's BEGIN IMMEDIATE, the file's one write lock, held until COMMIT. Every
#   other write, on any worker, waits for it: none comes between the read and the write.

SCHEMA_VERSION = 3  # 1: items numbered per user; 2: lists shared with members, numbered per list; 3: dates
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: an old cookie cannot name a later account
    username TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT NOT NULL, created TEXT NOT NULL,
    session_secret TEXT NOT NULL,  -- random, in every cookie of the user's: replaced to revoke them all
    first_list_id INTEGER,  -- "To do", made with the account: what /, /items... and /export.json mean
    timezone TEXT,  -- an IANA name, or NULL for the site's TODO_TIMEZONE: where "today" is for this user
    calendar_hash TEXT  -- SHA-256 of the calendar address's secret token: a leaked database opens no calendar
);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_calendar ON users (calendar_hash);
CREATE TABLE IF NOT EXISTS lists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a removed member's old link finds nothing
    owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE, name TEXT NOT NULL, created TEXT NOT NULL,
    last_item_no INTEGER NOT NULL DEFAULT 0  -- the list's counter, never reused
);
CREATE INDEX IF NOT EXISTS lists_by_owner ON lists (owner_id);
CREATE TABLE IF NOT EXISTS members (  -- who shares a list besides its owner
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (list_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id);
CREATE TABLE IF NOT EXISTS items (
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    no INTEGER NOT NULL, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,
    due TEXT,  -- YYYY-MM-DD, or NULL: no due date
    repeat TEXT NOT NULL DEFAULT '',  -- '', daily, weekly, monthly or yearly: done adds the next occurrence
    PRIMARY KEY (list_id, no)  -- the list first: one list's items are stored together
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS login_failures (username TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_by_username ON login_failures (username, at);
"""


class SQLiteConnection(sqlite3.Connection):
    """A connection to the SQLite file. PostgreSQL's (part 4) answers to the same names in its own words."""

    schema = SCHEMA
    begin_write = "BEGIN IMMEDIATE"  # the whole file's one write lock, from the first statement
    begin_read = "BEGIN"  # deferred: in WAL mode the first read fixes what the block sees, and no writer waits
    begin_schema = "BEGIN EXCLUSIVE"  # creating or upgrading the schema at start: the whole database, once
    list_tables = "SELECT name FROM sqlite_schema WHERE type = 'table'"

    def lock(self, what, key):
        """Lock the list or the username a write reads first: nothing to do, as BEGIN IMMEDIATE holds the file."""

    def wait_for_locks(self, seconds):
        """Set how long a statement waits for another connection's lock before it fails as busy."""
        self.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def connect(database, timeout=10, kept=False, factory=SQLiteConnection, **options):
    """Open a connection that writes only in explicit transactions, waiting `timeout` seconds for a lock."""
    if not isinstance(database, Path):  # a postgresql:// URL: the one way in to the second engine (part 4)
        return connect_postgres(database, timeout, pooled=kept)
    if kept:  # a request's: the one this thread kept idle since its last request, if any (part 6)
        return reused_connection(database, timeout)
    # isolation_level=None: Python's sqlite3 must not open transactions behind our back (its
    # deferred BEGIN lets two workers read the same row, then one of them fails to write).
    db = sqlite3.connect(database, timeout=timeout, isolation_level=None, factory=factory, **options)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")  # REFERENCES enforced: SQLite's default leaves them unchecked
    db.execute("PRAGMA synchronous = NORMAL")  # WAL: no fsync a commit; a power cut may undo the last, never break it
    return db


@contextmanager
def transaction(db, begin=None):
    """Run the block as one transaction, all or nothing: a write's, holding the write lock from its start."""
    db.execute(begin or db.begin_write)  # busy past the connection's timeout: an error, and a 503
    try:
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        raise


def snapshot(db):
    """Run the block's reads on one view of the database, whatever other requests commit meanwhile."""
    return transaction(db, begin=db.begin_read)  # a read's transaction: it takes no write lock


def init_db(database):
    """Create today's schema in a new database, or upgrade an older one; safe on every start, in every worker."""
    if isinstance(database, Path):
        database.parent.mkdir(parents=True, exist_ok=True)
    with closing(connect(database)) as db:
        if isinstance(database, Path):
            use_wal(db)
            db.execute("PRAGMA foreign_keys = OFF")  # an upgrade rebuilds tables that others refer to
        # The whole database, exclusively: workers starting together take turns, the first
        # creates (or upgrades) the schema, and the others find the work done.
        with transaction(db, begin=db.begin_schema):
            version = schema_version(db)
            if version is None:  # a new database
                run_script(db, db.schema)
            elif version != SCHEMA_VERSION:
                upgrade(db, version, database)  # part 5; a newer database than this code is refused
            if version != SCHEMA_VERSION:
                sql = "INSERT INTO settings (name, value) VALUES ('schema_version', ?) ON CONFLICT (name) DO UPDATE"
                db.execute(sql + " SET value = excluded.value", (str(SCHEMA_VERSION),))


def run_script(db, script):
    """Run SQL statements that take no values, one by one, inside the transaction in progress."""
    # Not sqlite3's executescript(): it commits whatever transaction is open first.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def use_wal(db):
    """Put a SQLite file in WAL mode, which lets readers and one writer work at once, and is kept in the file."""
    deadline = time.monotonic() + 10  # workers creating a new file together may find it busy: they retry
    while db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def shared_secret_key(database):
    """Return the site's key kept in the database, which signs the cookies, creating it on the very first start."""
    # One key for every worker (a key per process would refuse the others'
    # cookies): the first INSERT wins, and every worker reads that one back.
    with closing(connect(database)) as db, transaction(db):
        sql = "INSERT INTO settings (name, value) VALUES ('secret_key', ?) ON CONFLICT (name) DO NOTHING"
        db.execute(sql, (secrets.token_hex(32),))
        return db.execute("SELECT value FROM settings WHERE name = 'secret_key'").fetchone()[0]


bottle_app = bottle.Bottle()  # the routes, hooks and error pages; create_app() (part 3) adds the settings


def get_db():
    """Return this request's database connection, taken on first use, given back when the request ends."""
    if "todo.db" not in request.environ:
        # Of this request's own, used by no other at the same time, with no transaction left
        # from an earlier request: kept=True only lets its thread use it again afterwards.
        request.environ["todo.db"] = connect(config()["database"], BUSY_TIMEOUT, kept=True)
    return request.environ["todo.db"]


@bottle_app.hook("after_request")
def close_db():
    """Give back the request's connection, whatever the route did: the one teardown (close() ends its use)."""
    if "todo.db" in request.environ:
        request.environ.pop("todo.db").close()


# -- The session, and who is asking --
# The session is a Beaker cookie signed with the site's key, which every worker shares, and
# written as JSON (never pickle: a forged pickle runs code). It travels with the browser, so
# whichever worker answers next sees the same session. Anyone can read it (signed, not
# encrypted), so it holds only ids and tokens: uid, the user; secret, that user's session
# secret; since, when they signed in; csrf, the form token; flash, a short message; calendar,
# a new calendar address, shown once. The secret is checked against the database on every
# request: replacing it signs out every browser.


def session_options(secret_key, secure_cookies):
    """Return Beaker's settings for a signed, JSON, cookie-only session."""
    return {
        "session.type": "cookie",
        "session.session_class": LeanCookieSession,  # a speed-up (part 6)
        "session.key": "todo_session",  # Beaker's word for the cookie's name
        "session.validate_key": secret_key,
        "session.data_serializer": "json",
        "session.httponly": True,
        "session.samesite": "Lax",
        "session.secure": secure_cookies,
        "session.cookie_expires": timedelta(seconds=SESSION_LIFETIME),
        "session.save_accessed_time": False,  # send the cookie only when it changes
    }


def session():
    """Return this request's Beaker session."""
    return request.environ["beaker.session"]


def csrf_token():
    """Return the session's form token, creating it on first use."""
    if not isinstance(session().get("csrf"), str):
        session()["csrf"] = secrets.token_urlsafe(32)
        session().save()
    return session()["csrf"]


def flash(message):
    """Keep a short message in the cookie for the next page, whichever worker serves it."""
    session()["flash"] = message
    session().save()


def current_user():
    """Return the signed-in user as {"id", "username", "first_list_id", "timezone"}, or None: read every request."""
    if "todo.user" not in request.environ:  # asked once per request, however often it is needed
        uid, secret, since = (session().get(field) for field in ("uid", "secret", "since"))
        fresh = (
            type(uid) is int and type(secret) is str and type(since) is int and time.time() - since < SESSION_LIFETIME
        )
        # No row when the user was deleted, or signed out everywhere, since this cookie was made.
        sql = "SELECT id, username, first_list_id, timezone FROM users WHERE id = ? AND session_secret = ?"
        row = get_db().execute(sql, (uid, secret)).fetchone() if fresh else None
        request.environ["todo.user"] = dict(row) if row else None
    return request.environ["todo.user"]


def login_required(handler):
    """Pass the signed-in user to the handler; send everyone else to the sign-in page."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        user = current_user()
        return handler(user, *args, **kwargs) if user else see_other("/login")

    return wrapper


# -- A list's page, and the add --
# Every change is a POST answered with 303 to a page (Post/Redirect/Get): a reload never
# repeats it. Who may see a list is read with the list itself, on every request: a member
# removed on one worker is out at their next request on every other.


def route_number(digits):
    """Return a route's digits as a number: an item's or a list's; 0, which names none, past SQLite's integers."""
    return int(digits[-19:]) if len(digits.lstrip("0")) < 19 else 0


bottle_app.router.add_filter("number", lambda _: (r"[0-9]+", route_number, None))  # <no:number> in a route


def see_other(path):
    """Return a 303 See Other to this page of the site: the browser loads it next."""
    # Relative, so it stays on https:// behind a proxy; Bottle's redirect() trusts the forgeable Host header.
    answer = response.copy(cls=HTTPResponse)  # keeps the headers already set, as redirect() does
    answer.status, answer.body = 303, ""
    answer.set_header("Location", path)
    return answer


def template(name, **values):
    """Return views/NAME.tpl filled in with these values; each template is compiled once per process."""
    return bottle.template(name, template_adapter=PageTemplate, template_lookup=VIEWS, **values)  # PageTemplate: part 6


def render(name, status=200, **values):
    """Render a page inside the layout, with what every page needs."""
    response.status, message = status, session().pop("flash", None)  # a message is shown once
    if message is not None:
        session().save()
    signup_open = config()["signup"] == "open"
    return template(
        name, user=current_user(), csrf_token=csrf_token(), flash=message, signup_open=signup_open, **values
    )


def page_path(base, suffix=""):
    """Return the address of a list's page: `base` is "" for the first list's own routes, else /lists/<id>."""
    return base + suffix or "/"


LIST_SQL = """SELECT lists.id, lists.name, lists.owner_id, owners.username AS owner{counts}
FROM lists JOIN users AS owners ON owners.id = lists.owner_id
WHERE lists.id = ?
    AND (lists.owner_id = ? OR EXISTS (SELECT 1 FROM members WHERE list_id = lists.id AND user_id = ?))"""
LIST_COUNTS = """, (SELECT count(*) FROM items WHERE list_id = lists.id) AS total,
(SELECT count(*) FROM items WHERE list_id = lists.id AND done = 0) AS not_done,
(SELECT count(*) FROM members WHERE list_id = lists.id) AS shared"""


def find_list(user, list_id=None, owner_only=False, counts=False):
    """Return the list (the user's first when list_id is None) if the user owns or shares it; else 404."""
    sql = LIST_SQL.format(counts=LIST_COUNTS if counts else "")
    meant, base = list_meant(user, list_id)
    row = get_db().execute(sql, (meant, user["id"], user["id"])).fetchone()
    if row is None:
        abort(404, NO_SUCH_LIST)
    if owner_only and row["owner_id"] != user["id"]:
        abort(403, "Only the list's owner can do that.")
    return {**dict(row), "base": base}


def list_meant(user, list_id):
    """Return the list a route names (None: the user's first) as its id and where its pages begin: "" or /lists/<id>."""
    return (user["first_list_id"], "") if list_id is None else (list_id, f"/lists/{list_id}")


def load_items(db, list_id, done=(0, 1), page=1):
    """Return a page of the list's items, in number order: no, title, done, due, repeat."""
    return db.execute(
        "SELECT no, title, done, due, repeat FROM items WHERE list_id = ? AND done IN (?, ?)"
        " ORDER BY no LIMIT ? OFFSET ?",
        (list_id, *done, PAGE_SIZE, (page - 1) * PAGE_SIZE),
    ).fetchall()


def show_list(user, found, suffix="", page=1, status=200, **form):
    """Render a page of the list (found with its counts) with one of the filters; the footer counts all its items."""
    total, left, path = found["total"], found["not_done"], page_path(found["base"], suffix)
    last = max(1, -(-{"": total, "/active": left, "/completed": total - left}[suffix] // PAGE_SIZE))
    if page > last and status == 200:  # past the end: typed, or the page's last item just went
        return see_other(path if last == 1 else f"{path}?page={last}")
    items = load_items(get_db(), found["id"], FILTERS[suffix], page)
    back = path if page == 1 else f"{path}?page={page}"  # where the page's forms come back to
    values = dict(items=items, page=page, more=page < last, total=total, left=left, path=path, back=back)
    form = {"error": None, "title": "", "titles": "", "due": "", "repeat": "", "manage_error": None, **form}
    values.update(today=user_today(user), describe=describe_due, members=list_members(found))  # part 2
    return render("list", status, found=found, **values, **form)


def list_page(user, list_id, suffix):
    """Show a page of a list's items with one filter; its footer and its items are read in one snapshot."""
    if not WHOLE_NUMBER.fullmatch(page := request.query.get("page", "1")):
        abort(404, "There is no such page.")
    with snapshot(get_db()):  # an add committed between the counts and the items would make them disagree
        return show_list(user, find_list(user, list_id, counts=True), suffix, int(page))


@bottle_app.get("/")
@bottle_app.get("/lists/<list_id:number>")
@login_required
def all_items(user, list_id=None):
    """Show a page of a list's items, done or not."""
    return list_page(user, list_id, "")


@bottle_app.post("/items")
@bottle_app.post("/lists/<list_id:number>/items")
@login_required
def add(user, list_id=None):
    """Add an item with the list's next number, or several: `titles` holds one a line."""
    several, (to_list, base) = "titles" in request.forms, list_meant(user, list_id)
    back, max_items = back_path(base), config()["max_items"]  # back: the form's page (part 2)
    try:
        titles = titles_from_form() if several else [form_field("title").strip()]  # form_field: part 2
        if not several and (error := check_title(titles[0])):  # part 2
            raise ValueError(error)
        due, repeat = dates_from_form()  # part 2
        # No read of the list before: the add itself checks that the user may add to it (next_numbers).
        if several:  # all go in, or none (part 2)
            numbers = add_items(get_db(), to_list, titles, max_items, due, repeat, user_id=user["id"])
        else:
            numbers = [add_item(get_db(), to_list, titles[0], max_items, due, repeat, user_id=user["id"])]
    except ValueError as error:  # the form again, with the reason and the text as typed
        typed = {"titles": form_field("titles")[:MAX_BODY]} if several else {"title": titles[0][: MAX_TITLE * 2]}
        typed.update(due=form_field("due")[:20], repeat=form_field("repeat")[:20])
        return show_list_again(user, list_id, back, error=str(error), **typed)  # part 2
    flash(f"Added #{numbers[0]}." if len(numbers) == 1 else f"Added #{numbers[0]} to #{numbers[-1]}.")
    return see_other(back)


def add_item(db, list_id, title, max_items=None, due=None, repeat="", user_id=None):
    """Store a new item in the list and return its number, the list's next; 404 unless `user_id` may add."""
    with transaction(db):
        (no,) = next_numbers(db, list_id, 1, max_items, user_id)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        sql = "INSERT INTO items (list_id, no, title, created, due, repeat) VALUES (?, ?, ?, ?, ?, ?)"
        db.execute(sql, (list_id, no, title, created, due, repeat))
    return no


def next_numbers(db, list_id, count, max_items=None, user_id=None):
    """Inside a write, take the list's next `count` numbers; 404 unless the user `user_id` owns or shares it."""
    # The counter and the items change in one transaction, which holds the write lock until
    # COMMIT: a second add to the list, from any member on any worker, waits, then reads the
    # number this one left. So 1, 2, 3... with no number given twice; a rolled-back add gives
    # its numbers back. A deleted item's number is never given again.
    sql, values = "UPDATE lists SET last_item_no = last_item_no + ? WHERE id = ?", [count, list_id]
    if user_id is not None:  # and only while they own or share it: checked in the same statement
        sql += " AND (owner_id = ? OR EXISTS (SELECT 1 FROM members WHERE list_id = lists.id AND user_id = ?))"
        values += [user_id, user_id]
    last = db.execute(sql + " RETURNING last_item_no", values).fetchone()
    if last is None:  # the list was deleted, or its owner stopped sharing it, since this request began
        abort(404, NO_SUCH_LIST)
    if max_items and last[0] > max_items:  # fewer numbers given than the limit: fewer items too
        check_room(db, list_id, count, max_items)  # part 2
    return range(last[0] - count + 1, last[0] + 1)


# --- The rest of the site (part 2) -------------------------------------------

# -- Request safety --
# Checked before any page runs: the body's size, and on every POST the session's form token,
# which a page of another site cannot know. Form fields are decoded in one place, and every
# answer gets the same protective headers.

UNAVAILABLE = {  # SQLite's codes for a database that cannot serve now: 503, not 500 (PostgreSQL's: part 4)
    sqlite3.SQLITE_BUSY: "The database is busy: another program holds it.",
    sqlite3.SQLITE_LOCKED: "The database is busy: another program holds it.",
    sqlite3.SQLITE_READONLY: "The database is read-only.",
    sqlite3.SQLITE_FULL: "The database's disk is full.",
    sqlite3.SQLITE_IOERR: "The database's disk cannot be written.",
    sqlite3.SQLITE_CANTOPEN: "The database cannot be opened.",
}


def database_trouble_is_503(handler):
    """Answer 503 with the reason when the database is busy, full or read-only: the site's state, not a bug."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except sqlite3.IntegrityError as error:  # a row this change refers to went at the same moment
            server_log.warning("409 %s %s: %s", request.method, path_for_log(), one_line(error))
            raise HTTPError(
                409, "Something this change needs was changed at the same moment. Nothing was changed."
            ) from None
        except sqlite3.OperationalError as error:
            if hasattr(error, "reason"):  # PostgreSQL's, each given its reason in part 4
                reason = error.reason
            elif (reason := UNAVAILABLE.get(error.sqlite_errorcode & 0xFF)) is None:  # the primary code
                raise
            server_log.warning("503 %s %s: %s (%s)", request.method, path_for_log(), reason, error)  # one line
            raise HTTPError(
                503, f"{reason} Nothing was changed; try again in a moment.", **{"Retry-After": "5"}
            ) from None

    return wrapper


bottle_app.install(database_trouble_is_503)  # wraps every route; a transaction rolls back first


access_log = logging.getLogger("todo.access")  # written to by `python todo.py` unless --quiet
server_log = logging.getLogger("todo")


def form_field(name):
    """Return a form field as text decoded from UTF-8, '' when missing; 400 when it is not text."""
    try:
        value = request.forms.getunicode(name)  # not get(): that gives latin-1 mojibake for UTF-8
    except (bottle.MultipartError, ValueError, LookupError):  # LookupError: an unknown charset=
        abort(400, "The form could not be read.")
    if value is None and name in request.POST:  # sent, but as a file or as bytes that are not UTF-8
        abort(400, f"The form's {name} field is not UTF-8 text.")
    if value and "\x00" in value:  # no one types it, and PostgreSQL's text cannot hold it
        abort(400, f"The form's {name} field holds a NUL character.")
    return value or ""


@bottle_app.hook("before_request")
def check_request():
    """Refuse oversized bodies (413) and POSTs without the session's form token (403)."""
    environ = request.environ
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        abort(400, "Bad Content-Length.")
    if length < 0 and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        # No length up front: read at most one byte past the limit, then hand
        # Bottle a plain body (the server has already removed the chunking).
        body = b""
        while len(body) <= MAX_BODY and (chunk := environ["wsgi.input"].read(MAX_BODY + 1 - len(body))):
            body += chunk
        environ["wsgi.input"], environ["CONTENT_LENGTH"], length = BytesIO(body), str(len(body)), len(body)
        del environ["HTTP_TRANSFER_ENCODING"]
    if length > MAX_BODY:
        abort(413, "The request is too large (64 KiB at most).")
    if request.method == "POST":
        expected = session().get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(
            form_field("csrf_token").encode(), expected.encode()
        ):
            abort(403, "The form has expired or did not come from this site. Go back, reload and try again.")


@bottle_app.hook("after_request")
def finish_request():
    """Add the protective headers, and log the request."""
    environ = request.environ
    set_security_headers()
    if access_log.isEnabledFor(logging.INFO):  # e.g. `127.0.0.1 POST /items 303 41.8ms`
        # The path as it was sent, %-escaped, so that no path can forge a line.
        fields = (environ.get("REMOTE_ADDR", ""), environ.get("REQUEST_METHOD", ""), path_for_log())
        line = [
            quote(field.encode("latin-1", "backslashreplace"), safe="/!$&'()*+,;=:@-._~") or "-" for field in fields
        ]
        milliseconds = (time.perf_counter() - environ["todo.started"]) * 1000
        access_log.info("%s %s %s %d %.1fms", *line, response.status_code, milliseconds)


def path_for_log():
    """Return the request's path as sent, with a calendar's secret token left out: the log must not open it."""
    path = request.environ.get("bottle.raw_path", "")
    return "/calendar/(secret).ics" if path.startswith("/calendar/") else path


def set_security_headers():
    """Add the headers that keep the pages from being framed, sniffed or cached."""
    csp = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'"
    response.set_header("Content-Security-Policy", csp + "; base-uri 'none'")
    response.set_header("X-Frame-Options", "DENY")  # frame-ancestors, for browsers that predate it
    response.set_header("X-Content-Type-Options", "nosniff")
    response.set_header("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.set_header("Cache-Control", "no-store")
    if config()["secure_cookies"]:  # served over HTTPS, by the operator's word: browsers keep to it for a year
        response.set_header("Strict-Transport-Security", "max-age=31536000")


def error_page(error):
    """Render an error with its reason inside the layout."""
    set_security_headers()  # a 500 replaces the response's headers after the hooks have run
    # The user, if this request already checked who it is: the header's links, with no new database read.
    user = request.environ.get("todo.user")
    token = session().get("csrf", "") if user else ""
    return template("error", error=error, user=user, csrf_token=token, flash=None, signup_open=False)


# What bottle_app.error(code) does for each code, without a loop variable left behind.
bottle_app.error_handler.update(dict.fromkeys((400, 403, 404, 405, 409, 413, 429, 500, 503), error_page))


@bottle_app.get("/static/<path:path>")
def static(path):
    """Serve a stylesheet or an icon."""
    return bottle.static_file(path, root=STATIC)


@bottle_app.get("/healthz")
def healthz():
    """Answer 200 'ok' when the database can be read and written, else 503 with the reason (within 3 s)."""
    db = get_db()
    db.wait_for_locks(0.5)  # for the write lock: after 2 s queued behind waiting writers, still within 3 s
    try:
        with transaction(db):  # a real write: a full disk or a read-only file shows here
            sql = "INSERT INTO settings (name, value) VALUES ('last_health_check', ?) ON CONFLICT (name) DO UPDATE "
            db.execute(sql + "SET value = excluded.value", (str(time.time()),))
    finally:  # the connection serves other requests after this one: their wait as it was
        db.wait_for_locks(BUSY_TIMEOUT)
    response.content_type = "text/plain; charset=utf-8"
    return "ok"


# -- A list's other pages and actions --


def back_path(base):
    """Return the page the form came from: one of the list's filters and its page, or /today; never anywhere else."""
    path, _, page = form_field("back").partition("?page=")
    if path == "/today":
        return f"{path}?page={page}" if WHOLE_NUMBER.fullmatch(page) else path
    if path not in {page_path(base, suffix) for suffix in FILTERS}:
        return page_path(base)
    return f"{path}?page={page}" if WHOLE_NUMBER.fullmatch(page) else path


def show_list_again(user, list_id, back, **form):
    """Show the list's page a form came from (`back`, from back_path) again, with a 400 and the reason."""
    path, _, page = back.partition("?page=")
    page = 1 if path == "/today" or not page else int(page)  # from /today: the list's first page
    with snapshot(get_db()):  # its footer and its items read together, as list_page reads them
        return show_list(user, find_list(user, list_id, counts=True), filter_of(path), page, 400, **form)


def filter_of(path):
    """Return which filter a list page's address asks for: "", "/active" or "/completed"."""
    return next((suffix for suffix in FILTERS if suffix and path.endswith(suffix)), "")


@bottle_app.get("/active")
@bottle_app.get("/lists/<list_id:number>/active")
@login_required
def active_items(user, list_id=None):
    """Show a page of a list's items not done."""
    return list_page(user, list_id, "/active")


@bottle_app.get("/completed")
@bottle_app.get("/lists/<list_id:number>/completed")
@login_required
def completed_items(user, list_id=None):
    """Show a page of a list's done items."""
    return list_page(user, list_id, "/completed")


def check_text(text, missing, what, most):
    """Return why a trimmed text cannot be used (`missing` when empty, too long past `most` characters), or None."""
    if not text:
        return missing
    if len(text) > most:
        return f"{what} has at most {most} characters (this one has {len(text)})."
    return None


def check_title(title):
    """Return why a (trimmed) title cannot be used, or None."""
    return check_text(title, "An item needs a title.", "A title", MAX_TITLE)


def add_items(db, list_id, titles, max_items=None, due=None, repeat="", user_id=None):
    """Store several items in the list, all or none, and return their numbers, consecutive, as add_item does."""
    with transaction(db):
        numbers = next_numbers(db, list_id, len(titles), max_items, user_id)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        db.executemany(
            "INSERT INTO items (list_id, no, title, created, due, repeat) VALUES (?, ?, ?, ?, ?, ?)",
            [(list_id, no, title, created, due, repeat) for no, title in zip(numbers, titles, strict=True)],
        )
    return list(numbers)


def titles_from_form():
    """Return the titles of a pasted list, `titles`, one a line, empty lines skipped; ValueError says what is wrong."""
    lines = form_field("titles").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    titles = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    if not titles:
        raise ValueError("There is nothing to add: write one title a line.")
    for number, title in titles:
        if error := check_title(title):
            raise ValueError(f"Line {number}: {error}")
    return [title for _, title in titles]


def check_room(db, list_id, count, max_items):
    """Inside a write, raise ValueError if `count` more items would take the list past `max_items`."""
    items = db.execute("SELECT count(*) FROM items WHERE list_id = ?", (list_id,)).fetchone()[0]
    if items + count > max_items:
        raise ValueError(
            f"This list has {items:,} items, and {max_items:,} is the most one list may hold. Delete some."
        )


def list_members(found):
    """Return the usernames that share the list besides its owner, in alphabetical order."""
    if not found["shared"]:  # counted with the list: most lists are shared with nobody
        return []
    sql = "SELECT username FROM members JOIN users ON users.id = user_id WHERE list_id = ? ORDER BY lower(username)"
    return [row[0] for row in get_db().execute(sql, (found["id"],))]


def locked_list(user, list_id=None, owner_only=False):
    """Inside a write, lock the list's row, then check again that the user may change it (404, or 403)."""
    # Checked again under the lock: a member removed, or a list deleted, since the request began
    # cannot slip a change in; on PostgreSQL a removal waits for this write, or this one for it.
    get_db().lock("list", list_meant(user, list_id)[0])
    return find_list(user, list_id, owner_only)


def change_item(user, list_id, no, sql, values=()):
    """Run one statement on the list's item #no and return the list; 404 when there is no such item."""
    with transaction(get_db()) as db:
        found = locked_list(user, list_id)
        if not db.execute(sql, (*values, found["id"], no)).rowcount:
            abort(404, f"This list has no item #{no}.")  # never say more about a number that is not theirs
    return found


def delete_item(user, list_id, no):
    """Delete the list's item #no, say so on the next page, and go back to the list."""
    found = change_item(user, list_id, no, "DELETE FROM items WHERE list_id = ? AND no = ?")
    flash(f"Deleted #{no}.")
    return see_other(back_path(found["base"]))


@bottle_app.post("/items/<no:number>/toggle")
@bottle_app.post("/lists/<list_id:number>/items/<no:number>/toggle")
@login_required
def toggle(user, no, list_id=None):
    """Mark the item done (adding its next occurrence if it repeats), or not done again."""

    def flip(db, found):
        # Ten clicks at once on four workers take turns on the list's lock: the first marks it
        # done and adds the next occurrence; the done item has lost its repeat, so no other adds one.
        sql = "SELECT no, title, done, due, repeat FROM items WHERE list_id = ? AND no = ?"
        if (item := db.execute(sql, (found["id"], no)).fetchone()) is None:
            abort(404, f"This list has no item #{no}.")
        sql = "UPDATE items SET done = 1 - done, repeat = CASE WHEN done = 0 THEN '' ELSE repeat END"
        sql += " WHERE list_id = ? AND no = ?"  # marked done, it loses its repeat: done again, it adds nothing
        db.execute(sql, (found["id"], no))
        if not item["done"]:
            add_next_occurrences(db, found["id"], [item], user_today(user))

    return change_done_marks(user, list_id, flip)


def change_done_marks(user, list_id, change):
    """Run change(db, list) under the list's lock, and go back; past the list's limit, a 400 and nothing changed."""
    try:
        with transaction(get_db()) as db:
            found = locked_list(user, list_id)
            change(db, found)
    except ValueError as error:  # the next occurrences of repeating items would pass TODO_MAX_ITEMS
        return show_list_again(user, list_id, back_path(list_meant(user, list_id)[1]), error=str(error))
    return see_other(back_path(found["base"]))


@bottle_app.post("/items/<no:number>/delete")
@bottle_app.post("/lists/<list_id:number>/items/<no:number>/delete")
@login_required
def delete(user, no, list_id=None):
    """Delete the item."""
    return delete_item(user, list_id, no)


@bottle_app.get("/items/<no:number>/edit")
@bottle_app.get("/lists/<list_id:number>/items/<no:number>/edit")
@login_required
def edit_form(user, no, list_id=None):
    """Show the form that changes an item's title, due date and repeat."""
    found = find_list(user, list_id)
    sql = "SELECT title, due, repeat FROM items WHERE list_id = ? AND no = ?"
    item = get_db().execute(sql, (found["id"], no)).fetchone()
    if item is None:
        abort(404, f"This list has no item #{no}.")
    back = "/today" if request.query.get("back") == "/today" else page_path(found["base"])
    return render("edit", found=found, no=no, error=None, back=back, **{**dict(item), "due": item["due"] or ""})


@bottle_app.post("/items/<no:number>/edit")
@bottle_app.post("/lists/<list_id:number>/items/<no:number>/edit")
@login_required
def edit(user, no, list_id=None):
    """Change an item's title, due date and repeat (a field not sent keeps its value); an empty title deletes it."""
    found = find_list(user, list_id)
    if not get_db().execute("SELECT 1 FROM items WHERE list_id = ? AND no = ?", (found["id"], no)).fetchone():
        abort(404, f"This list has no item #{no}.")  # a number that is not the list's: 404, whatever the form holds
    title = form_field("title").strip()
    if not title and "title" not in request.forms:  # a broken form, not a wish to delete
        abort(400, "The form has no title.")
    if not title:
        return delete_item(user, list_id, no)
    try:
        with transaction(get_db()) as db:
            found = locked_list(user, list_id)  # a toggle cannot come between the read and the write
            sql = "SELECT due, repeat FROM items WHERE list_id = ? AND no = ?"
            if (item := db.execute(sql, (found["id"], no)).fetchone()) is None:
                abort(404, f"This list has no item #{no}.")  # deleted meanwhile
            if error := check_title(title):
                raise ValueError(error)
            due, repeat = dates_from_form(current=(item["due"], item["repeat"]))
            sql = "UPDATE items SET title = ?, due = ?, repeat = ? WHERE list_id = ? AND no = ?"
            db.execute(sql, (title, due, repeat, found["id"], no))
    except ValueError as error:  # the form again, with the reason and the values as typed
        typed = dict(title=title[: MAX_TITLE * 2], due=form_field("due")[:20], repeat=form_field("repeat")[:20])
        return render("edit", 400, found=found, no=no, error=str(error), back=back_path(found["base"]), **typed)
    return see_other(back_path(found["base"]))


@bottle_app.post("/items/toggle-all")
@bottle_app.post("/lists/<list_id:number>/items/toggle-all")
@login_required
def toggle_all(user, list_id=None):
    """Mark every item done, or every item not done when all already are."""

    def flip_all(db, found):
        # Read, then written, under the list's lock: no change comes between the count and the update.
        if not db.execute("SELECT count(*) FROM items WHERE list_id = ? AND done = 0", (found["id"],)).fetchone()[0]:
            db.execute("UPDATE items SET done = 0 WHERE list_id = ?", (found["id"],))
        else:  # all done: each repeating one adds its next occurrence, as its own toggle would
            sql = "SELECT no, title, due, repeat FROM items WHERE list_id = ? AND done = 0 AND repeat <> ''"
            sql += " ORDER BY no"  # their next occurrences take the list's next numbers in this order
            repeating = db.execute(sql, (found["id"],)).fetchall()
            db.execute("UPDATE items SET done = 1, repeat = '' WHERE list_id = ? AND done = 0", (found["id"],))
            add_next_occurrences(db, found["id"], repeating, user_today(user))

    return change_done_marks(user, list_id, flip_all)


@bottle_app.post("/items/clear-completed")
@bottle_app.post("/lists/<list_id:number>/items/clear-completed")
@login_required
def clear_completed(user, list_id=None):
    """Delete the done items."""
    with transaction(get_db()) as db:
        found = locked_list(user, list_id)
        cleared = db.execute("DELETE FROM items WHERE list_id = ? AND done = 1", (found["id"],)).rowcount
    flash(f"Cleared {cleared} completed item{'' if cleared == 1 else 's'}.")
    return see_other(back_path(found["base"]))


def export_list(found):
    """Return a list and its items, in number order, as the exports give them."""
    sql = "SELECT no, title, done, created, due, repeat FROM items WHERE list_id = ? ORDER BY no"
    items = [{**item, "done": bool(item["done"])} for item in map(dict, get_db().execute(sql, (found["id"],)))]
    return {"id": found["id"], "name": found["name"], "owner": found["owner"], "items": items}


def as_json(value):
    """Return a value as the body of a JSON answer."""
    response.content_type = "application/json"
    return json.dumps(value, ensure_ascii=False, indent=1)


@bottle_app.get("/export.json")
@login_required
def export(user):
    """Return the first list's items, and every list the user owns or shares, as JSON."""
    lists = [export_list(found) for found in user_lists(user)]
    first = next(exported for exported in lists if exported["id"] == user["first_list_id"])
    return as_json({"items": first["items"], "lists": lists})


@bottle_app.get("/lists/<list_id:number>/export.json")
@login_required
def export_one(user, list_id):
    """Return one list and its items as JSON."""
    return as_json(export_list(find_list(user, list_id)))


# -- Lists, and lists shared --
# A list belongs to its owner, who may share it with other accounts by name.
# Members add, edit, toggle, delete and clear; only the owner renames, deletes,
# shares and removes. Every answer is decided by what find_list() reads now.

MAX_LIST_NAME = 100  # characters, after trimming


def user_lists(user):
    """Return every list the user owns or shares, the first list first, with its owner and items left."""
    sql = """SELECT lists.id, lists.name, lists.owner_id, owners.username AS owner,
    (SELECT count(*) FROM items WHERE list_id = lists.id AND done = 0) AS not_done
    FROM lists JOIN users AS owners ON owners.id = lists.owner_id
    WHERE lists.owner_id = ? OR lists.id IN (SELECT list_id FROM members WHERE user_id = ?)
    ORDER BY lists.id <> ?, lists.id"""
    rows = get_db().execute(sql, (user["id"], user["id"], user["first_list_id"])).fetchall()
    return [{**dict(row), "base": f"/lists/{row['id']}"} for row in rows]


def show_lists(user, status=200, error=None, name=""):
    """Render the index of the user's lists, with the form that makes one."""
    return render("lists", status, lists=user_lists(user), error=error, list_name=name)


@bottle_app.get("/lists")
@login_required
def lists_page(user):
    """Show every list the user owns or shares."""
    return show_lists(user)


def check_list_name(name):
    """Return why a (trimmed) list name cannot be used, or None."""
    return check_text(name, "A list needs a name.", "A list's name", MAX_LIST_NAME)


@bottle_app.post("/lists")
@login_required
def new_list(user):
    """Make a list owned by the user, and show it."""
    name = form_field("name").strip()
    if error := check_list_name(name):
        return show_lists(user, 400, error, name[: MAX_LIST_NAME * 2])
    with transaction(get_db()) as db:
        list_id = create_list(db, user["id"], name)
    return see_other(f"/lists/{list_id}")


def manage(user, list_id, field, change):
    """Run an owner's change(db, the form's `field`) to a list; its ValueError is a 400 on the list's page."""
    found, value = find_list(user, list_id, owner_only=True), form_field(field).strip()
    try:
        with transaction(get_db()) as db:
            locked_list(user, list_id, owner_only=True)  # membership changes on one list take turns
            message = change(db, value)
    except ValueError as error:
        return show_list_again(user, list_id, page_path(found["base"]), manage_error=str(error))
    flash(message)
    return see_other(page_path(found["base"]))


@bottle_app.post("/lists/<list_id:number>/rename")
@login_required
def rename_list(user, list_id):
    """Rename a list: its owner only."""

    def rename(db, name):
        if error := check_list_name(name):
            raise ValueError(error)
        db.execute("UPDATE lists SET name = ? WHERE id = ?", (name, list_id))
        return f"Renamed the list to {name[:100]}."

    return manage(user, list_id, "name", rename)


@bottle_app.post("/lists/<list_id:number>/delete")
@login_required
def delete_list(user, list_id):
    """Delete a list and its items: its owner only, and never the first list."""
    found = find_list(user, list_id, owner_only=True)
    if list_id == user["first_list_id"]:
        error = "Your first list cannot be deleted; rename it instead."
        return show_list_again(user, list_id, page_path(found["base"]), manage_error=error)
    with transaction(get_db()) as db:
        locked_list(user, list_id, owner_only=True)  # still there, and still theirs
        db.execute("DELETE FROM lists WHERE id = ?", (list_id,))  # its items and members go with it (CASCADE)
    flash(f"Deleted the list {found['name']}.")
    return see_other("/lists")


@bottle_app.post("/lists/<list_id:number>/members")
@login_required
def share_list(user, list_id):
    """Share a list with another account, by its name: the list's owner only."""

    def share(db, username):
        sql = "SELECT id, username FROM users WHERE lower(username) = lower(?)"
        member = db.execute(sql, (username,)).fetchone() if USERNAME_PATTERN.fullmatch(username) else None
        if not username:
            raise ValueError("Give the username of the account to share this list with.")
        if member is None:
            raise ValueError(f"There is no account named {username[:64]}.")
        if member["id"] == user["id"]:
            raise ValueError("You own this list: share it with someone else.")
        if db.execute("SELECT 1 FROM members WHERE list_id = ? AND user_id = ?", (list_id, member["id"])).fetchone():
            raise ValueError(f"{member['username']} shares this list already.")
        try:
            db.execute("INSERT INTO members (list_id, user_id) VALUES (?, ?)", (list_id, member["id"]))
        except sqlite3.IntegrityError:  # the account was deleted since it was looked up
            raise ValueError(f"There is no account named {username[:64]}.") from None
        return f"Shared with {member['username']}."

    return manage(user, list_id, "username", share)


@bottle_app.post("/lists/<list_id:number>/members/remove")
@login_required
def remove_member(user, list_id):
    """Stop sharing a list with a member: the list's owner only. The member is out at their next request."""

    def remove(db, username):
        sql = "DELETE FROM members WHERE list_id = ? AND user_id IN (SELECT id FROM users WHERE lower(username) = ?)"
        if not USERNAME_PATTERN.fullmatch(username) or not db.execute(sql, (list_id, username.lower())).rowcount:
            raise ValueError(f"{username[:64] or 'Nobody'} does not share this list.")
        return f"{username} no longer shares this list."

    return manage(user, list_id, "username", remove)


@bottle_app.post("/lists/<list_id:number>/leave")
@login_required
def leave_list(user, list_id):
    """Stop sharing a list someone else owns."""
    found = find_list(user, list_id)
    if found["owner_id"] == user["id"]:
        error = "You own this list: delete it instead of leaving."
        return show_list_again(user, list_id, page_path(found["base"]), manage_error=error)
    with transaction(get_db()) as db:
        locked_list(user, list_id)  # a list deleted meanwhile: 404, as for any list not theirs
        db.execute("DELETE FROM members WHERE list_id = ? AND user_id = ?", (list_id, user["id"]))
    flash(f"You no longer share {found['name']}.")
    return see_other("/lists")


# -- Dates --
# An item may be due on a day, and repeat. "Today" is the user's own, in their
# time zone. Marking a repeating item done adds its next occurrence in the same
# transaction, under the list's lock, so concurrent clicks add exactly one. A
# calendar address lets phones and desktops show what is due: no mail, no daemon.

REPEATS = {"": None, "daily": "days", "weekly": "weeks", "monthly": "months", "yearly": "years"}  # relativedelta's
DAYS_PER = {"days": 1, "weeks": 7, "months": 31, "years": 366}  # at least a period's days: for catching up
DUE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# English, whatever the server's locale (strftime's %a and %b follow it), and ten times faster than it.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # all but the tab


@functools.cache  # the names in the time-zone database: the same for the life of the process, not data
def time_zones():
    """Return the IANA time-zone names this machine knows (from the tzdata package where the system has none)."""
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory", "posixrules"})  # not places


def dates_from_form(current=(None, "")):
    """Return (due, repeat) from the form, a field not sent keeping its current value; ValueError says why not."""
    due, repeat = current
    if "due" in request.forms:
        due = form_field("due").strip() or None
        if due and not is_date(due):
            raise ValueError(f"A due date is a real date written YYYY-MM-DD, such as 2027-01-31, not {due[:20]!r}.")
    if "repeat" in request.forms:
        repeat = form_field("repeat").strip()
    if repeat not in REPEATS:
        raise ValueError("Repeat is one of: daily, weekly, monthly, yearly, or empty for none.")
    if repeat and not due:
        raise ValueError("A repeating item needs a due date.")
    return due, repeat


def is_date(text):
    """Return True if the text is a real date written YYYY-MM-DD."""
    try:
        return bool(DUE_PATTERN.fullmatch(text) and date.fromisoformat(text))
    except ValueError:  # 2027-02-30, 2027-13-01
        return False


def next_due(due, repeat, today):
    """Return the date one period after `due`, repeated until it is today or later; None past the year 9999."""
    # relativedelta counts whole periods from the done item's date: monthly keeps its day of the
    # month or takes the month's last (31 January: 28 February, 31 March), yearly turns 29 February into 28.
    start, unit = date.fromisoformat(due), REPEATS[repeat]
    periods = max(1, (today - start).days // DAYS_PER[unit])  # after a long absence: close to today at once
    try:
        while (candidate := start + relativedelta(**{unit: periods})) < today:
            periods += 1
    except (OverflowError, ValueError):
        return None
    return candidate.isoformat()


def add_next_occurrences(db, list_id, done_items, today):
    """Inside a write transaction, add the next occurrence of each repeating item just marked done."""
    following = [(item, next_due(item["due"], item["repeat"], today)) for item in done_items if item["repeat"]]
    following = [(item, due) for item, due in following if due]
    if following:
        numbers = next_numbers(db, list_id, len(following), config()["max_items"])  # as for any add
        created = datetime.now(UTC).isoformat(timespec="seconds")
        db.executemany(
            "INSERT INTO items (list_id, no, title, created, due, repeat) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (list_id, no, item["title"], created, due, item["repeat"])
                for no, (item, due) in zip(numbers, following, strict=True)
            ],
        )


def user_today(user):
    """Return today's date where the user is: their time zone, else the site's TODO_TIMEZONE."""
    # A name this machine does not know (a database moved to a host with older tzdata): the site's zone.
    timezone = user["timezone"] if user["timezone"] in time_zones() else config()["timezone"]
    return datetime.now(zoneinfo.ZoneInfo(timezone)).date()


def describe_due(due, today, done=False):
    """Return how a page says a due date: ("tomorrow" or "Tue 8 Dec" or "3 days overdue", overdue or not)."""
    day = date.fromisoformat(due)
    days = (day - today).days
    if days < 0 and not done:  # a done item is never overdue: it shows its date
        return f"{-days} day{'s' if days < -1 else ''} overdue", True
    if 0 <= days <= 1:
        return ("today", "tomorrow")[days], False
    year = "" if day.year == today.year else f" {day.year}"
    return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}{year}", False


@bottle_app.get("/today")
@login_required
def today_page(user):
    """Show every not-done item due today or earlier, in every list the user owns or shares, earliest first."""
    if not WHOLE_NUMBER.fullmatch(page := request.query.get("page", "1")):
        abort(404, "There is no such page.")
    today, page = user_today(user), int(page)
    sql = """SELECT items.list_id, items.no, items.title, items.done, items.due, items.repeat, lists.name AS list_name
    FROM items JOIN lists ON lists.id = items.list_id
    WHERE items.done = 0 AND items.due <= ?
    AND (lists.owner_id = ? OR lists.id IN (SELECT list_id FROM members WHERE user_id = ?))
    ORDER BY items.due, items.list_id, items.no LIMIT ? OFFSET ?"""
    values = (today.isoformat(), user["id"], user["id"], PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    items = get_db().execute(sql, values).fetchall()  # one more than a page: is there a next one?
    if page > 1 and not items:  # past the end: typed, or its last items were just ticked off
        return see_other("/today")
    values = dict(items=items[:PAGE_SIZE], page=page, more=len(items) > PAGE_SIZE, path="/today")
    return render(
        "today", today=today, describe=describe_due, back="/today" if page == 1 else f"/today?page={page}", **values
    )


@bottle_app.post("/account/timezone")
@login_required
def set_timezone(user):
    """Choose the time zone in which "today" and "overdue" are reckoned for this user."""
    timezone = form_field("timezone").strip()
    if timezone not in time_zones():
        return render_account(user, 400, f"{timezone[:64]!r} is not a time zone's IANA name, such as Europe/Paris.")
    return change_account(user, "SET timezone = ?", (timezone,), f"Your time zone is {timezone}.")


def change_account(user, change, values, message):
    """Change the user's row (`change` is an UPDATE's SET clause), say so, and go back to the account page."""
    with transaction(get_db()) as db:
        db.execute(f"UPDATE users {change} WHERE id = ?", (*values, user["id"]))  # `change` is never input
    flash(message)
    return see_other("/account")


def calendar_hash(token):
    """Return what the database keeps of a calendar token: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


@bottle_app.post("/account/calendar")
@login_required
def make_calendar(user):
    """Make a secret calendar address for the user, replacing (and so killing) any earlier one."""
    token = secrets.token_urlsafe(32)  # 256 random bits: unguessable
    session()["calendar"] = token  # shown once, on the next page: the database cannot show it again
    message = "Your new calendar address is below. Any earlier one no longer works."
    return change_account(user, "SET calendar_hash = ?", (calendar_hash(token),), message)


@bottle_app.post("/account/calendar/delete")
@login_required
def delete_calendar(user):
    """Turn the calendar address off."""
    return change_account(user, "SET calendar_hash = NULL", (), "Your calendar address is turned off.")


@bottle_app.get("/calendar/<token>.ics")
def calendar(token):
    """Answer the calendar of the user whose secret address this is: an all-day event for each item due."""
    import icalendar  # only where a calendar is asked for: a process that serves none keeps its memory

    # Looked up by the token's hash: the lookup's timing could tell something of the hash at most,
    # never of the token. Read on every request: a replaced or deleted address is dead on every worker.
    sql = "SELECT id, username FROM users WHERE calendar_hash = ?"
    user = get_db().execute(sql, (calendar_hash(token),)).fetchone()
    if user is None:
        abort(404, "There is no such calendar. Its address may have been replaced or turned off.")
    sql = """SELECT items.list_id, items.no, items.title, items.due, lists.name AS list_name
    FROM items JOIN lists ON lists.id = items.list_id
    WHERE items.done = 0 AND items.due IS NOT NULL
    AND (lists.owner_id = ? OR lists.id IN (SELECT list_id FROM members WHERE user_id = ?))
    ORDER BY items.due, items.list_id, items.no"""
    site = hashlib.sha256(config()["secret_key"].encode()).hexdigest()[:16]  # this site's, in every UID
    events = icalendar.Calendar()
    events.add("prodid", "-//todo//todo.py//EN")
    events.add("version", "2.0")
    events.add("x-wr-calname", f"todo: {user['username']}")
    stamp = datetime.now(UTC)
    for item in get_db().execute(sql, (user["id"], user["id"])):
        event = icalendar.Event()
        event.add("uid", f"{item['list_id']}-{item['no']}-{site}@todo")  # the same item, the same event
        event.add("dtstamp", stamp)
        event.add("dtstart", date.fromisoformat(item["due"]))  # a date: DTSTART;VALUE=DATE, an all-day event
        event.add("summary", CONTROL_CHARACTERS.sub(" ", item["title"]))  # iCalendar's text may not hold them
        event.add("description", CONTROL_CHARACTERS.sub(" ", f"#{item['no']} in {item['list_name']}"))
        events.add_component(event)
    response.content_type = "text/calendar; charset=utf-8"
    return events.to_ical()


# -- Accounts --
# Passwords are hashed with argon2, failed sign-ins are counted in the database (so four
# workers let through as many guesses as one), and a browser that signed in before keeps a
# device cookie so that a stranger's guesses cannot lock its owner out.

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024  # characters
DEVICE_LIFETIME = 400 * 24 * 3600  # seconds a browser stays known as one the user signs in from
DEVICE_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")  # a device cookie's random id: secrets.token_urlsafe(16)
LOGIN_FAILURE_LIMIT, LOGIN_FAILURE_WINDOW = 10, 15 * 60  # failed sign-ins per username, seconds: then 429

# users.session_secret is checked on every request, and replacing it signs out
# every browser. Being random, it also ties the cookie to this site's database:
# user 1 of another site with the same key has another secret.

# OWASP's first recommended argon2id setting (19 MiB, 2 passes): about 40 ms.
password_hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
DUMMY_PASSWORD_HASH = password_hasher.hash("not anybody's password")
# Two hashes at a time per process, whatever the threads: each borrows 19 MiB while it runs.
# A limit on work in progress, not data: it holds nothing a request reads.
hashing_slots = threading.BoundedSemaphore(2)


@contextmanager
def hashing_slot():
    """Wait for one of this process's hashing slots; 503 when sign-ins swamp the site for seconds."""
    if not hashing_slots.acquire(timeout=10):
        raise HTTPError(503, "Too many sign-ins at once. Try again in a moment.", **{"Retry-After": "5"})
    try:
        yield
    finally:
        hashing_slots.release()


def hash_password(password):
    """Return the argon2 hash of a password, computed in one of the hashing slots."""
    with hashing_slot():
        return password_hasher.hash(password)


def sign_in(user_id, session_secret, csrf=None):
    """Start a fresh session for the user: a new cookie, and a new form token unless given one (no fixation)."""
    session().invalidate()
    session().update(uid=user_id, secret=session_secret, since=int(time.time()), csrf=csrf or secrets.token_urlsafe(32))
    session().save()


def sign_out(message):
    """Forget the user in this browser and send it to the sign-in page, with a message."""
    session().invalidate()
    session().update(csrf=secrets.token_urlsafe(32), flash=message)
    session().save()
    return see_other("/login")


def device_signature(user_id, nonce):
    """Return the signature that proves this site gave the device cookie for the user."""
    message = f"device {user_id} {nonce}".encode()
    return hmac.new(config()["secret_key"].encode(), message, "sha256").hexdigest()


def known_device(user_id):
    """Return this browser's device id if it has signed in as the user before (a valid device cookie), else None."""
    nonce, _, signature = (request.get_cookie(f"todo_device_{user_id}") or "").partition(".")
    if DEVICE_NONCE.fullmatch(nonce) and hmac.compare_digest(
        signature.encode(), device_signature(user_id, nonce).encode()
    ):
        return nonce
    return None


def remember_device(user_id):
    """Give this browser a signed, long-lived cookie saying it has signed in as the user (OWASP's device cookie)."""
    # Signed with hmac here, not with Bottle's secret= cookies, which unpickle what they read.
    nonce = known_device(user_id) or secrets.token_urlsafe(16)
    response.set_cookie(
        f"todo_device_{user_id}", f"{nonce}.{device_signature(user_id, nonce)}", max_age=DEVICE_LIFETIME,
        path="/", httponly=True, samesite="Lax", secure=config()["secure_cookies"],
    )  # fmt: skip


def check_password(password):
    """Return why the password cannot be used, or None."""
    if len(password) < PASSWORD_MIN:
        return f"A password has at least {PASSWORD_MIN} characters."
    if len(password) > PASSWORD_MAX:
        return f"A password has at most {PASSWORD_MAX} characters."
    return None


def create_user(db, username, password):
    """Add an account and return its id and session secret; raise ValueError with the reason if it cannot be."""
    error = (
        check_password(password)
        if USERNAME_PATTERN.fullmatch(username)
        else "A username is 3 to 32 letters, digits, dots, dashes or underscores."
    )
    if error:
        raise ValueError(error)
    password_hash, created = hash_password(password), datetime.now(UTC).isoformat(timespec="seconds")
    sql = "INSERT INTO users (username, password_hash, session_secret, created) VALUES (?, ?, ?, ?) RETURNING id"
    user = (username, password_hash, secrets.token_hex(16), created)
    try:
        with transaction(db):  # the account and its first list, "To do", together or not at all
            user_id = db.execute(sql, user).fetchone()[0]
            db.execute("UPDATE users SET first_list_id = ? WHERE id = ?", (create_list(db, user_id, "To do"), user_id))
            return user_id, user[2]
    except sqlite3.IntegrityError:  # the unique name, in any letter case
        raise ValueError("That username is taken.") from None


def create_list(db, owner_id, name):
    """Make a list owned by the user, inside the caller's transaction, and return its id."""
    created = datetime.now(UTC).isoformat(timespec="seconds")
    sql = "INSERT INTO lists (owner_id, name, created) VALUES (?, ?, ?) RETURNING id"
    return db.execute(sql, (owner_id, name, created)).fetchone()[0]


def password_attempt(db, username, password_hash, password, device=None):
    """Return True if the password matches the hash; 429 after too many failures for the username.

    A browser the user has signed in from before (`device`, from its device cookie) counts its
    failures apart from everyone else's, so a stranger's guesses cannot lock the owner out.
    """
    # What the failures are counted under: kept in the column `username`, a device's as "device <id>".
    counted_as, now = (f"device {device}" if device else username.lower()[:64]), time.time()
    with transaction(db):
        # Counted in the database, with the count read under the name's lock (on SQLite, the
        # write lock), so four workers together let through exactly as many attempts as one.
        db.lock("name", counted_as)
        db.execute("DELETE FROM login_failures WHERE username = ? AND at < ?", (counted_as, now - LOGIN_FAILURE_WINDOW))
        count, oldest = db.execute(
            "SELECT count(*), min(at) FROM login_failures WHERE username = ?", (counted_as,)
        ).fetchone()
        if count < LOGIN_FAILURE_LIMIT:  # counted as failed until the password proves otherwise
            db.execute("INSERT INTO login_failures (username, at) VALUES (?, ?)", (counted_as, now))
    if count >= LOGIN_FAILURE_LIMIT:
        wait = max(1, int(oldest + LOGIN_FAILURE_WINDOW - now) + 1)
        minutes = f"{-(-wait // 60)} minute{'s' if wait > 60 else ''}"
        message = f"Too many failed sign-ins for this username. Try again in {minutes}."
        raise HTTPError(429, message, **{"Retry-After": str(wait)})
    try:  # an unknown user is checked against a dummy hash, so the answer's timing does not tell
        with hashing_slot():
            password_hasher.verify(password_hash or DUMMY_PASSWORD_HASH, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
    with transaction(db):  # this attempt was right; and everyone's failures past the window go
        db.execute("DELETE FROM login_failures WHERE username = ? AND at = ?", (counted_as, now))
        db.execute("DELETE FROM login_failures WHERE at < ?", (now - LOGIN_FAILURE_WINDOW,))
    return password_hash is not None


def check_signup_open():
    """Answer 403 when only the site's owner creates accounts (TODO_SIGNUP=closed)."""
    if config()["signup"] != "open":
        abort(403, "Sign-up is closed on this site. Ask its owner for an account.")


def sign_in_page(page):
    """Show the sign-in (page="login") or the sign-up form (page="register"); the signed-in go to their list."""
    return see_other("/") if current_user() else render("login", page=page, error=None, username="")


@bottle_app.get("/login")
def login_form():
    """Show the sign-in form."""
    return sign_in_page("login")


@bottle_app.get("/register")
def register_form():
    """Show the sign-up form, where sign-up is open."""
    check_signup_open()
    return sign_in_page("register")


@bottle_app.post("/register")
def register():
    """Create an account and sign in."""
    check_signup_open()
    username, password = form_field("username").strip(), form_field("password")
    try:
        user_id, session_secret = create_user(get_db(), username, password)
    except ValueError as error:
        return render("login", 400, page="register", error=str(error), username=username[:64])
    sign_in(user_id, session_secret)
    remember_device(user_id)
    flash(f"Welcome, {username}.")
    return see_other("/")


@bottle_app.post("/login")
def login():
    """Sign in, counting failures per username in the database."""
    username, password, db = form_field("username").strip(), form_field("password"), get_db()
    sql = "SELECT id, password_hash, session_secret FROM users WHERE lower(username) = lower(?)"
    # Only a name that can exist is looked up: PostgreSQL's lower() folds letters Python's does not,
    # and another spelling of a name must not count its failures apart.
    user = db.execute(sql, (username,)).fetchone() if USERNAME_PATTERN.fullmatch(username) else None
    device = known_device(user["id"]) if user else None
    if not password_attempt(db, username, user and user["password_hash"], password, device):
        return render("login", 400, page="login", username=username[:64], error="Wrong username or password.")
    if password_hasher.check_needs_rehash(user["password_hash"]):
        new_hash = hash_password(password)  # slow: before taking the write lock
        with transaction(db):  # only if unchanged: never undo a password change another worker made meanwhile
            db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (new_hash, user["id"], user["password_hash"]),
            )
    sign_in(user["id"], user["session_secret"])
    remember_device(user["id"])
    return see_other("/")


@bottle_app.post("/logout")
def logout():
    """Sign out this browser."""
    return sign_out("Signed out.")


@bottle_app.get("/account")
@login_required
def account_page(user):
    """Show the account page: password, sign out everywhere, delete."""
    return render_account(user)


def render_account(user, status=200, error=None):
    """Render the account page; it names the shared lists that deleting the account would take away."""
    sql = """SELECT lists.id, lists.name, users.username FROM lists
    JOIN members ON members.list_id = lists.id JOIN users ON users.id = members.user_id
    WHERE lists.owner_id = ? ORDER BY lists.id, lower(users.username)"""
    shared = {}  # list id: (name, [member, ...])
    for list_id, name, member in get_db().execute(sql, (user["id"],)):
        shared.setdefault(list_id, (name, []))[1].append(member)
    sql = "SELECT calendar_hash IS NOT NULL FROM users WHERE id = ?"
    calendar_on = bool(get_db().execute(sql, (user["id"],)).fetchone()[0])
    new_calendar = session().pop("calendar", None)  # the address just made: shown this once
    if new_calendar is not None:
        session().save()
    values = dict(calendar_on=calendar_on, new_calendar=new_calendar, time_zones=sorted(time_zones()))
    timezone = user["timezone"] or config()["timezone"]
    values.update(timezone=timezone, today=user_today(user), shared=list(shared.values()))
    return render("account", status, error=error, **values)


def check_current_password(user):
    """Return True if the form's password is the user's; wrong ones count as failed sign-ins."""
    # Counted with the sign-in form's: a stolen cookie must not buy unlimited guesses at the password.
    row = get_db().execute("SELECT password_hash FROM users WHERE id = ?", (user["id"],)).fetchone()
    if row is None:  # deleted in another tab since this request began
        abort(404, "This account no longer exists.")
    return password_attempt(get_db(), user["username"], row[0], form_field("password"), known_device(user["id"]))


@bottle_app.post("/account/password")
@login_required
def change_password(user):
    """Change the password; every other browser is signed out, this one stays in."""
    new_password = form_field("new_password")
    error = check_password(new_password) if check_current_password(user) else "Your current password is not right."
    if error:
        return render_account(user, 400, error)
    new_hash, new_secret = hash_password(new_password), secrets.token_hex(16)
    with transaction(get_db()) as db:
        db.execute(
            "UPDATE users SET password_hash = ?, session_secret = ? WHERE id = ?", (new_hash, new_secret, user["id"])
        )
    sign_in(user["id"], new_secret, csrf=csrf_token())  # same token: this browser's other tabs keep working
    flash("Password changed. Every other browser is signed out.")
    return see_other("/account")


@bottle_app.post("/account/logout-all")
@login_required
def logout_all(user):
    """Sign out every browser of this user, this one included."""
    with transaction(get_db()) as db:
        db.execute("UPDATE users SET session_secret = ? WHERE id = ?", (secrets.token_hex(16), user["id"]))
    return sign_out("Signed out everywhere.")


@bottle_app.post("/account/delete")
@login_required
def delete_account(user):
    """Delete the account, its lists and their items, and its memberships; the username is free again."""
    if not check_current_password(user):
        return render_account(user, 400, "Your password is not right; the account is still here.")
    with transaction(get_db()) as db:
        # Its lists and their items go with it, and every membership (ON DELETE CASCADE): the
        # members of its lists get a 404 at their next request.
        db.execute("DELETE FROM users WHERE id = ?", (user["id"],))
    return sign_out("Your account and all its items are deleted.")


# --- Running it (part 3) ----------------------------------------------------


def create_app(environ=os.environ):
    """Prepare the database and return the WSGI app, sessions included, for these settings."""
    # The settings belong to the app made here and travel with each of its
    # requests (config() reads them), so two apps made in one process keep their own.
    app_config = read_config(environ)
    database = app_config["database"]
    try:
        init_db(database)
        app_config["secret_key"] = app_config["secret_key"] or shared_secret_key(database)
    except (sqlite3.Error, OSError) as error:  # not a database, unreadable, down: one line
        raise SystemExit(f"todo: cannot use the database {name_of(database)}: {one_line(error)}") from None
    apply_speed_ups()  # part 6
    sessions = session_options(app_config["secret_key"], app_config["secure_cookies"])
    with_sessions = SessionMiddleware(bottle_app, sessions)

    def app(environ, start_response):
        """Answer one request with this app's settings."""
        environ["todo.config"], environ["todo.started"] = app_config, time.perf_counter()  # the access log's clock
        return with_sessions(environ, start_response)

    return app


def name_of(database):
    """Return how to name the database in a message: the SQLite file, never a URL's password."""
    return database if isinstance(database, Path) else "in DATABASE_URL"


def one_line(error, url=""):
    """Return an error's text on one line, with the password of any URL, and of this one, left out."""
    text = re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", " ".join(str(error).split()))
    if password := re.match(r"[^:]+://[^:/@]*:([^@]*)@", url):  # libpq may quote it from a URL it cannot read
        for form in {password[1], unquote(password[1])} - {""}:
            text = text.replace(form, "***")
    return text


def serve(args):
    """Serve the site with waitress until SIGTERM or Ctrl-C, then stop cleanly; SIGHUP changes nothing."""
    import signal

    import waitress
    from waitress import wasyncore

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    # "Task queue depth is N" whenever a request waits for a free thread: normal on a busy site.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # waitress logs no requests: finish_request() writes a line for each, in one write (threads' never interleave).
    access_log.addHandler(logging.StreamHandler())
    access_log.propagate, access_log.disabled = False, args.quiet
    environ = dict(os.environ)  # on PostgreSQL, unless TODO_POOL_SIZE says otherwise, a connection for each thread
    if "DATABASE_URL" in environ and "TODO_POOL_SIZE" not in environ:
        environ["TODO_POOL_SIZE"] = str(args.threads)
    served = create_app(environ)
    # Idle and slow connections cost no thread: waitress keeps up to 1,000 and drops them after 60 s idle.
    server = waitress.create_server(
        served, host=args.host, port=args.port, threads=args.threads, max_request_body_size=MAX_BODY,
        connection_limit=1000, channel_timeout=60,
        trusted_proxy=args.trusted_proxy, trusted_proxy_headers=args.trusted_proxy_headers,
    )  # fmt: skip
    signal.signal(signal.SIGHUP, lambda *_: server_log.info("SIGHUP: nothing to reload; still serving"))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as Ctrl-C does: KeyboardInterrupt
    server.print_listen("Serving on http://{}:{}")
    try:
        wasyncore.loop(timeout=1, map=server._map, use_poll=True)
    except KeyboardInterrupt:
        server_log.info("Stopping: no new connections, finishing the requests in progress (10 s at most)")
        stop_gracefully(server, deadline=time.monotonic() + 10)
    close_idle_connections()  # the last connection closed: SQLite folds the WAL into the file and removes it
    close_postgres_pools()
    server_log.info("Stopped.")


def stop_gracefully(server, deadline):
    """Stop accepting, let the requests in progress finish and their answers go out, then stop the threads."""
    # waitress 3.0.2 has no graceful stop (serve() just ends the process), so this drives its
    # private socket map and channels; tests/test_operations.py pins the effect.
    from waitress import wasyncore
    from waitress.channel import HTTPChannel

    server.accepting = False
    server.del_channel()  # the listening socket leaves the map: no new connections
    server.socket.close()
    while channels := [c for c in list(server._map.values()) if isinstance(c, HTTPChannel)]:
        for channel in channels:  # an idle keep-alive connection is closed; a busy one finishes first
            if not channel.requests and not channel.total_outbufs_len:
                channel.will_close = True
        if time.monotonic() > deadline:
            break
        wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)
    server.task_dispatcher.shutdown(timeout=1)


def adduser(database, name):
    """Create an account from the command line, the password from a prompt or one line of stdin."""
    import getpass

    try:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Again: "):
                raise ValueError("The two passwords differ.")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        init_db(database)  # before the site's first start, too
        with closing(connect(database)) as db:
            create_user(db, name, password)
    except ValueError as error:
        sys.exit(f"adduser: {error}")
    except sqlite3.Error as error:
        sys.exit(f"adduser: cannot use the database {name_of(database)}: {one_line(error)}")
    except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt
        sys.exit("\nadduser: cancelled, no account created")
    print(f"Created user {name}.")


def check_file_command(command, database, file):
    """Exit with the reason when backup or restore cannot run: on PostgreSQL (naming its tool), or on itself."""
    instead = {
        "backup": 'pg_dump --format=custom "$DATABASE_URL" > todo.dump',
        "restore": 'pg_restore --clean --dbname="$DATABASE_URL" todo.dump',
    }
    if not isinstance(database, Path):
        sys.exit(f"{command}: on PostgreSQL, use {instead[command]}")
    if file.resolve() == database:
        sys.exit(f"{command}: the file must not be the database itself")


def backup(database, target):
    """Copy the database with SQLite's online backup: consistent, while the site runs."""
    check_file_command("backup", database, target)
    if not database.is_file():  # connecting would make an empty one, and "copy" that
        sys.exit(f"backup: there is no database at {database} (is TODO_DATABASE right?); nothing was written")
    source = connect(database)
    try:
        with closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, without a -wal beside it
    except sqlite3.Error as error:
        sys.exit(f"backup: {target}: {error}")
    finally:
        source.close()
    print(f"Copied {database} to {target}.")


def restore(database, source):
    """Make the site's data exactly the backup's, with SQLite's backup API: safe while the site runs."""
    # Never copy files over a database: a -wal file left beside it would be laid over the copy.
    # The backup API writes through SQLite under the write lock; readers see the backup afterwards.
    import tempfile

    check_file_command("restore", database, source)
    try:
        backup_uri = f"{source.resolve().as_uri()}?mode=ro&immutable=1"  # read, and left as it is
        # A scratch directory: a backup from an older todo gets today's schema there first.
        with closing(sqlite3.connect(backup_uri, uri=True)) as backup_copy, tempfile.TemporaryDirectory() as scratch:
            tables = {row[0] for row in backup_copy.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
            if (
                not {"users", "items", "settings"} <= tables
                or backup_copy.execute("PRAGMA quick_check").fetchone()[0] != "ok"
            ):
                sys.exit(f"restore: {source} is not a todo backup (or it is damaged); nothing changed")
            staged = Path(scratch) / "staged.db"
            with closing(sqlite3.connect(staged)) as copy:
                backup_copy.backup(copy)
            init_db(staged)
            set_aside_if_unusable(database)
            init_db(database)
            # timeout=60: writers in progress finish first. FULL: on disk before "Restored" is said.
            with closing(connect(staged)) as staged_db, closing(connect(database, timeout=60)) as live:
                live.execute("PRAGMA synchronous = FULL")
                staged_db.backup(live)
    except sqlite3.Error as error:
        sys.exit(f"restore: {source} cannot be restored ({error}); nothing changed")
    print(f"Restored {database} from {source}.")


def set_aside_if_unusable(database):
    """Move a live database file SQLite cannot use (damaged, or no database at all) aside: restore begins anew."""
    try:
        with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
            if db.execute("PRAGMA quick_check").fetchone()[0] == "ok":
                return
    except sqlite3.Error:
        if not database.exists():  # missing: restore makes it
            return
    aside = database.with_name(f"{database.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):  # a -wal of the damaged file must not be laid over the restored one
        if (part := Path(f"{database}{suffix}")).exists():
            part.rename(f"{aside}{suffix}")
    print(f"restore: {database} could not be used; it is kept as {aside}")


def main(argv=None):
    """Serve the site, or run one of its commands."""
    import argparse

    parser = argparse.ArgumentParser(prog="todo.py", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    # type=int: argparse turns $PORT into a number, or says what is wrong with it.
    parser.add_argument("--port", type=int, default=os.environ.get("PORT") or "8080", help="default $PORT or 8080")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    # Behind a proxy or a platform's router: whose X-Forwarded-* headers to believe (waitress drops everyone else's).
    parser.add_argument("--trusted-proxy", help="the proxy's address, or '*' for any (a platform's router)")
    parser.add_argument(
        "--trusted-proxy-headers", default="", help='the headers it sets, e.g. "x-forwarded-proto x-forwarded-for"'
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("adduser", help="create an account (password from a prompt or stdin)").add_argument("name")
    commands.add_parser("backup", help="copy the database while the site runs").add_argument("file", type=Path)
    commands.add_parser("restore", help="replace the site's data with a backup's").add_argument("file", type=Path)
    commands.add_parser("copy-to", help="copy this SQLite site into an empty PostgreSQL database").add_argument("url")
    args = parser.parse_args(argv)
    database = read_config(os.environ)["database"]
    if args.command == "adduser":
        adduser(database, args.name)
    elif args.command == "backup":
        backup(database, args.file)
    elif args.command == "restore":
        restore(database, args.file)
    elif args.command == "copy-to":
        copy_to(database, args.url)
    else:
        serve(args)


# --- PostgreSQL, past one host (part 4) --------------------------------------
# With DATABASE_URL set, the same code runs on PostgreSQL, which many hosts can share.
# connect() hands a URL to connect_postgres(): its connection answers to the names of
# SQLiteConnection's (part 1), takes the same SQL with ? placeholders, gives rows read by
# name, and raises sqlite3's errors. Writers on different rows run together: a write locks
# only what it depends on, the list's row or the username, never the whole database, so
# adds to two lists never wait for each other, on any host.

POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,  -- a sequence: never reused, even after a rollback
    username TEXT NOT NULL, password_hash TEXT NOT NULL, created TEXT NOT NULL,
    session_secret TEXT NOT NULL, first_list_id BIGINT, timezone TEXT, calendar_hash TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_calendar ON users (calendar_hash);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_name ON users (lower(username));  -- one account per spelling
CREATE TABLE IF NOT EXISTS lists (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE, name TEXT NOT NULL, created TEXT NOT NULL,
    last_item_no BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS lists_by_owner ON lists (owner_id);
CREATE TABLE IF NOT EXISTS members (
    list_id BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (list_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id);
CREATE TABLE IF NOT EXISTS items (
    list_id BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    no BIGINT NOT NULL, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,
    due TEXT, repeat TEXT NOT NULL DEFAULT '', PRIMARY KEY (list_id, no)
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS login_failures (username TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_by_username ON login_failures (username, at);
"""
POSTGRES_LOCKS = {  # what a write locks before it reads, held until COMMIT or ROLLBACK
    "list": "SELECT 1 FROM lists WHERE id = ? FOR UPDATE",  # the list's row: its items and members
    "name": "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",  # a username, which may have no row
}
POSTGRES_UNAVAILABLE = {  # PostgreSQL's states of a database that cannot serve now: 503, not 500
    "55P03": "The database is busy: another program holds it.",  # lock_not_available
    "25006": "The database is read-only.",  # read_only_sql_transaction (a standby, say)
    "53100": "The database's disk is full.",  # disk_full
}


class PostgresConnection:
    """A psycopg connection used like SQLiteConnection: ? placeholders, rows read by name, sqlite3's errors."""

    schema = POSTGRES_SCHEMA
    begin_write = "BEGIN"  # locks nothing yet: each write locks what it depends on (lock(), the counter's UPDATE)
    begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"  # one snapshot from the first read to the last
    begin_schema = "BEGIN; SELECT pg_advisory_xact_lock(2026)"  # concurrent CREATE TABLEs fail: take turns
    list_tables = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"

    def __init__(self, connection, pool=None):
        self.connection, self.pool = connection, pool

    def lock(self, what, key):
        """Inside a write, lock the list (what="list", its id) or the username (what="name") it reads first."""
        self.execute(POSTGRES_LOCKS[what], (key,)).fetchall()

    def wait_for_locks(self, seconds):
        """Set how long a statement waits for another connection's lock before it fails as busy."""
        self.execute(f"SET lock_timeout = {int(seconds * 1000)}")

    def execute(self, sql, values=()):
        """Run one statement; ? stands for each value, as in SQLite."""
        with as_sqlite3_errors():
            return self.connection.execute(postgres_sql(sql), values)

    def executemany(self, sql, rows):
        """Run one statement for each row of values."""
        with as_sqlite3_errors(), self.connection.cursor() as cursor:
            cursor.executemany(postgres_sql(sql), rows)

    def rollback(self):
        """End the transaction, undoing it."""
        self.execute("ROLLBACK")

    def commit(self):
        """End the transaction, keeping it."""
        self.execute("COMMIT")

    def close(self):
        """Give the connection back to its pool, or close it."""
        if self.pool:
            self.pool.putconn(self.connection)
        else:
            self.connection.close()


def connect_postgres(url, timeout, pooled=False):
    """Open a connection to the PostgreSQL database at the URL, or borrow one from the pool (a request's)."""
    if pooled:  # PostgreSQL's way to what part 6 does for SQLite: connections kept open for requests
        return pooled_connection(url, config()["pool_size"], timeout)
    import psycopg  # only where PostgreSQL is used: it costs a process 13 MiB

    with as_sqlite3_errors(url):
        return PostgresConnection(psycopg.connect(url, **postgres_options(timeout)))


def postgres_options(timeout):
    """Return psycopg's settings for a connection that answers like sqlite3's, waiting `timeout` s for a lock."""
    # A server that stops answering (a failover, a dead host) is noticed in seconds, not left to hang a thread.
    alive = {"connect_timeout": 3, "tcp_user_timeout": 3000, "keepalives_idle": 5, "keepalives_interval": 1}
    wait = {"options": f"-c lock_timeout={timeout * 1000}"}
    return {"autocommit": True, "row_factory": PostgresRow.factory, **wait, **alive}


@contextmanager
def as_sqlite3_errors(url=""):
    """Raise psycopg's errors as sqlite3's of the same DB-API kind, so the rest of the code knows one family."""
    import psycopg

    try:
        yield
    except psycopg.Error as error:
        if isinstance(error, psycopg.IntegrityError):
            kind = sqlite3.IntegrityError
        elif isinstance(error, (psycopg.OperationalError, psycopg.InternalError)):  # down, busy, full, read-only
            kind = sqlite3.OperationalError
        else:
            kind = sqlite3.DatabaseError
        translated = kind(one_line(error, url))
        if kind is sqlite3.OperationalError:  # busy, read-only or full; or down, restarting, unreachable: a 503
            translated.reason = POSTGRES_UNAVAILABLE.get(error.sqlstate, "The database does not answer.")
        raise translated from error


# What a statement is made of, for psycopg: quoted text and comments (kept as they are), ? and %.
SQL_PARTS = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*)|(\?)|(%)""")


def postgres_sql(sql):
    """Return SQL written with sqlite3's ? placeholders as psycopg reads it: %s for each, a literal ? or % kept."""
    # psycopg reads % everywhere in a statement that has values, even inside quotes: each is doubled.
    return SQL_PARTS.sub(lambda part: part[1].replace("%", "%%") if part[1] else "%s" if part[2] else "%%", sql)


class PostgresRow(tuple):
    """A row read by position or by column name, as sqlite3.Row is."""

    def __getitem__(self, key):
        """Return a column by its position or its name."""
        return super().__getitem__(self.names.index(key) if isinstance(key, str) else key)

    def keys(self):
        """Return the column names, so that dict(row) works."""
        return self.names

    @staticmethod
    def factory(cursor):
        """Return psycopg's maker of rows for this cursor."""
        names = [column.name for column in cursor.description or ()]

        def make(values):
            row = PostgresRow(values)
            row.names = names
            return row

        return make


def pooled_connection(url, size, timeout):
    """Return a connection borrowed from this process's pool, opening the pool on the first request."""
    # Opened in the process that serves, never before a fork (gunicorn --preload): a
    # connection shared by two processes mixes their conversations. Keyed by pid for that.
    key = (url, size, timeout, os.getpid())
    if key not in postgres_pools:
        import psycopg_pool

        pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=size, timeout=timeout, open=False,
            kwargs=postgres_options(timeout), check=psycopg_pool.ConnectionPool.check_connection,
        )  # fmt: skip
        if postgres_pools.setdefault(key, pool) is pool:  # two threads at once: one pool is kept
            pool.open()
    pool = postgres_pools[key]
    with as_sqlite3_errors():  # no connection within `timeout`: the database does not answer
        return PostgresConnection(pool.getconn(), pool)


def close_postgres_pools():
    """Close this process's pools of PostgreSQL connections, as it stops."""
    for pool in postgres_pools.values():
        pool.close()


postgres_pools = {}  # (url, size, timeout, pid): connections to lend, never data; check_connection drops broken ones


def copy_to(database, url):
    """Copy this SQLite site into an empty PostgreSQL database: accounts, lists, members, items, numbering, key."""
    if not isinstance(database, Path) or not url.startswith(("postgresql://", "postgres://")):
        sys.exit("copy-to: copies the SQLite site (with DATABASE_URL unset) to a postgresql:// URL")
    if not database.is_file():
        sys.exit(f"copy-to: there is no database at {database} (is TODO_DATABASE right?); nothing was written")
    tables = {  # every column, so ids, passwords, secrets, lists and numbers come along as they are
        "users": "id, username, password_hash, session_secret, first_list_id, created, timezone, calendar_hash",
        "lists": "id, owner_id, name, created, last_item_no",  # each list's counter
        "members": "list_id, user_id",
        "items": "list_id, no, title, done, created, due, repeat",
        "settings": "name, value",  # the session key among them: browsers stay signed in
    }
    copied = []
    try:
        init_db(database)  # an older file gets today's schema first
        init_db(url)
        # One transaction: all or nothing.
        with closing(connect(database)) as source, closing(connect(url)) as target, transaction(target):
            if target.execute("SELECT count(*) FROM users").fetchone()[0]:
                sys.exit("copy-to: the PostgreSQL database already holds accounts; nothing was written")
            for table, columns in tables.items():  # the names come from the dict above, never from input
                rows = source.execute(f"SELECT {columns} FROM {table}").fetchall()
                marks = ", ".join("?" * len(columns.split(",")))
                # A site started once on the new database made a key of its own: SQLite's replaces it.
                upsert = " ON CONFLICT (name) DO UPDATE SET value = excluded.value" if table == "settings" else ""
                sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}){upsert}"
                target.executemany(sql, [tuple(row) for row in rows])
                copied.append(f"{len(rows)} {table}")
            # New accounts and lists get ids after every id SQLite ever gave, deleted ones included.
            for table in ("users", "lists"):
                sql = "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?"
                last_id = max(
                    source.execute(sql, (table,)).fetchone()[0],
                    source.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0],
                )
                sql = "SELECT setval(pg_get_serial_sequence(?, 'id'), ?, ?)"
                target.execute(sql, (table, max(last_id, 1), last_id > 0))
    except sqlite3.Error as error:
        sys.exit(f"copy-to: {one_line(error)}; nothing was written")
    print(f"Copied {', '.join(copied)} from {database} to PostgreSQL.")


# --- Upgrades of older databases (part 5) ------------------------------------
# The database records its schema version (settings.schema_version; none before
# version 2). At the first start of a newer todo, whichever worker comes first
# upgrades it, once, in one transaction under the schema lock (see init_db): the
# others wait, then find it done. On SQLite a consistent copy of the file as it was
# is kept beside it first; on PostgreSQL the DDL is transactional, all or nothing.
# Each step takes a database from the version before to its own, so a file of any
# age climbs them in turn. tests/fixtures holds a database of every shipped schema.

UPGRADES = {  # version: the statements that bring the version before to it; {int} and {id} per engine
    2: """
ALTER TABLE users ADD COLUMN first_list_id {int};
CREATE TABLE lists (
    id {id}, owner_id {int} NOT NULL REFERENCES users (id) ON DELETE CASCADE, name TEXT NOT NULL,
    created TEXT NOT NULL, last_item_no {int} NOT NULL DEFAULT 0
);
CREATE INDEX lists_by_owner ON lists (owner_id);
CREATE TABLE members (
    list_id {int} NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    user_id {int} NOT NULL REFERENCES users (id) ON DELETE CASCADE, PRIMARY KEY (list_id, user_id)
) {without_rowid};
CREATE INDEX members_by_user ON members (user_id);
INSERT INTO lists (owner_id, name, created, last_item_no)
    SELECT id, 'To do', created, last_item_no FROM users ORDER BY id;
UPDATE users SET first_list_id = (SELECT id FROM lists WHERE owner_id = users.id);
CREATE TABLE items_by_list (
    list_id {int} NOT NULL REFERENCES lists (id) ON DELETE CASCADE, no {int} NOT NULL, title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL, PRIMARY KEY (list_id, no)
) {without_rowid};
INSERT INTO items_by_list (list_id, no, title, done, created)
    SELECT users.first_list_id, items.no, items.title, items.done, items.created
    FROM items JOIN users ON users.id = items.user_id;
DROP TABLE items;
ALTER TABLE items_by_list RENAME TO items;
ALTER TABLE users DROP COLUMN last_item_no
""",
    3: """
ALTER TABLE items ADD COLUMN due TEXT;
ALTER TABLE items ADD COLUMN repeat TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN timezone TEXT;
ALTER TABLE users ADD COLUMN calendar_hash TEXT;
CREATE UNIQUE INDEX users_by_calendar ON users (calendar_hash)
""",
}
USERS_AUTOINCREMENT = """
CREATE TABLE users_autoincrement (
    id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL, created TEXT NOT NULL, session_secret TEXT NOT NULL,
    last_item_no INTEGER NOT NULL DEFAULT 0
);
INSERT INTO users_autoincrement (id, username, password_hash, created, session_secret, last_item_no)
    SELECT id, username, password_hash, created, session_secret, last_item_no FROM users;
DROP TABLE users;
ALTER TABLE users_autoincrement RENAME TO users
"""  # SQLite only, before version 2: a users table with ids that are never reused
UPGRADE_WORDS = {  # what the steps' words stand for on each engine
    "sqlite": {"int": "INTEGER", "id": "INTEGER PRIMARY KEY AUTOINCREMENT", "without_rowid": "WITHOUT ROWID"},
    "postgres": {"int": "BIGINT", "id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "without_rowid": ""},
}


def schema_version(db):
    """Return the database's schema version, or None when it has no tables yet."""
    tables = {row[0] for row in db.execute(db.list_tables)}
    if "users" not in tables:
        return None
    row = db.execute("SELECT value FROM settings WHERE name = 'schema_version'").fetchone()
    return int(row[0]) if row else 1  # version 1 did not record itself


def upgrade(db, version, database):
    """Bring the database from `version` to today's, inside the schema lock init_db holds; refuse a newer one."""
    if version > SCHEMA_VERSION:  # never make a newer database look older
        raise sqlite3.DatabaseError(f"it was made by a newer todo (schema {version}; this one knows {SCHEMA_VERSION})")
    engine = "sqlite" if isinstance(database, Path) else "postgres"
    if engine == "sqlite":
        kept = database.with_name(f"{database.name}.before-v{SCHEMA_VERSION}-{time.strftime('%Y%m%dT%H%M%S')}")
        # Another connection reads the file as it is: this one holds the write lock and has changed nothing.
        with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(kept)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        server_log.warning(
            "Upgrading %s from schema %d to %d; the file as it was is kept in %s",
            database,
            version,
            SCHEMA_VERSION,
            kept,
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(users)")}
        if "session_secret" not in columns:  # before per-user secrets: give every user one (old cookies sign out)
            db.execute("ALTER TABLE users ADD COLUMN session_secret TEXT NOT NULL DEFAULT ''")
            db.execute("UPDATE users SET session_secret = lower(hex(randomblob(16)))")
        if "AUTOINCREMENT" not in db.execute("SELECT sql FROM sqlite_schema WHERE name = 'users'").fetchone()[0]:
            run_script(db, USERS_AUTOINCREMENT)  # the first schema's ids could be given again once deleted
    else:
        server_log.warning("Upgrading the database from schema %d to %d, in one transaction", version, SCHEMA_VERSION)
    for step in range(version + 1, SCHEMA_VERSION + 1):
        run_script(db, UPGRADES[step].format(**UPGRADE_WORDS[engine]))


# --- Speed-ups (part 6): a first reading can skip this part -----------------
# Each piece below makes the site faster or smaller without changing what it
# does, and the parts above reach it by its name alone. Why each is worth it,
# with the measurements, is in bench/README.md.


def apply_speed_ups():
    """Tune the process once: glibc gives large freed blocks back to the system."""
    # Each argon2 hash borrows 19 MiB. Once such a block is freed, glibc raises
    # its mmap threshold and keeps later ones in the arenas of the threads that
    # hashed, so a worker grows by a hash per thread. A fixed threshold (the
    # default, 128 KiB) keeps returning them.
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError, TypeError):
        pass  # not glibc (macOS, musl, Windows): nothing to tune


def reused_connection(path, timeout):
    """Return the idle connection this thread kept to the SQLite file, or a new one; close() gives it back."""
    # Opening a connection costs more than the rest of a page: the file, the WAL index, the
    # schema, and every statement parsed anew. One connection kept idle for each thread skips
    # all of that. It holds no transaction between requests (close() rolls back whatever a failed
    # request left), so every request still reads what any worker has committed. It also keeps
    # SQLite's WAL open between requests: the last connection to close would fold it in and
    # delete it, and the next request would rebuild it. Keyed by pid: never across a fork.
    key = (str(path), os.getpid(), threading.get_ident())
    db = idle_connections.pop(key, None)
    try:
        file = os.stat(path)
        file = (file.st_dev, file.st_ino)  # which file: restore may have put a new one at the path
    except OSError:
        file = None
    if db is not None and db.file != file:  # not the file at the path any more: opened anew, on the new one
        db.discard()
        db = None
    if db is None:
        # check_same_thread=False: used by one thread at a time, and closed by the main one as the process stops.
        db = connect(path, timeout, factory=ReusedConnection, check_same_thread=False)
        db.key, db.file = key, file
    return db


class ReusedConnection(SQLiteConnection):
    """A SQLite connection that close() gives back to its thread, with nothing in progress, instead of closing."""

    def close(self):
        """Roll back whatever is left in progress, and keep the connection for this thread's next request."""
        if sys.exc_info()[1] is not None or failed_request():  # it may have left a statement half-read: not kept
            self.discard()
            return
        if self.in_transaction:
            self.rollback()
        idle_connections[self.key] = self

    def discard(self):
        """Really close the connection: it is not kept."""
        sqlite3.Connection.close(self)


def failed_request():
    """Return True if the request being answered ends in a 5xx (a 503 from database trouble, say)."""
    try:
        return response.status_code >= 500
    except RuntimeError:  # outside any request (a command, a test): nothing failed
        return False


def close_idle_connections():
    """Really close the connections this process keeps idle, as it stops."""
    for key in [key for key in idle_connections if key[1] == os.getpid()]:
        idle_connections.pop(key).discard()


idle_connections = {}  # (database, pid, thread): a connection between two requests; no data, no transaction


class LeanCookieSession(CookieSession):
    """Beaker's signed cookie session, read from its one cookie, in plain JSON, sent only when it changes."""

    # Written against Beaker 1.14.1, whose cookie it keeps: the value is Beaker's HMAC-SHA1
    # signature (SignedCookie.value_encode) of the base64 of the session's data. Beaker's own
    # CookieSession parses the whole Cookie header with http.cookies, draws a session id from
    # os.urandom that a cookie session never uses, then signs the cookie it has just read and
    # marks it to be sent back; it writes its bookkeeping (that id, two times, the path) into
    # the cookie beside the session's fields, so every request carries twice the bytes; and its
    # "json" serializer runs the JSON through zlib. Here __init__ sets what Beaker's sets, reads
    # the one cookie and checks its signature with Beaker's SignedCookie; a save signs only the
    # session's own fields, with the attributes Beaker would set (todo sets no cookie domain or
    # timeout). tests/test_speed_ups.py pins each against Beaker's own.

    def __init__(self, request, key, validate_key, cookie_expires, httponly, samesite, secure, **options):
        """Set up the session as Beaker's CookieSession.__init__ does; load the site's cookie if its signature holds."""
        dict.__init__(self)
        self._config = {"_domain": None, "_path": "/"}  # Beaker's defaults, kept in the dict by clear()
        self.clear()
        self.request, self.key, self.validate_key, self.cookie_expires = request, key, validate_key, cookie_expires
        self.httponly, self.samesite, self.secure, self.invalidate_corrupt = httponly, samesite, secure, True
        self.timeout, self.save_atime, self.encrypt_key = None, options.get("save_accessed_time", True), None
        self._set_serializer(options.get("data_serializer"))
        self.cookie = SignedCookie(validate_key)  # Beaker's signature: value_decode() and value_encode()
        self.is_new, request["set_cookie"] = True, False
        header = request.get("cookie") or ""
        value = cookie_value(header, self.key)
        if not value:  # none, or emptied: as Beaker, a new session, not a corrupt one
            return
        import base64  # here and in _create_cookie: only the speed-ups use it

        self.is_new = False
        payload, _ = self.cookie.value_decode(value)  # Beaker's check, in constant time
        try:
            if not payload:  # a bad signature (InvalidSignature is false)
                raise ValueError("invalid signature")
            self.update(PLAIN_JSON.loads(base64.b64decode(payload)))
        except (ValueError, TypeError) as error:  # as Beaker's invalidate_corrupt: a warning, a new empty session
            import warnings

            from beaker.exceptions import BeakerWarning

            warnings.warn(f"Invalidating corrupt session; error was: {error}.", BeakerWarning, stacklevel=2)
            self.invalidate()
        self.accessed_dict = self.copy()

    @property
    def id(self):
        """Beaker's session id, drawn only if Beaker asks for it (deleting the cookie does): the cookie carries none."""
        if "_id" not in self:
            self["_id"] = secrets.token_hex(16)  # as random as Beaker's uuid4().hex, and as long
        return self["_id"]

    def _create_cookie(self):
        """Sign the session's own fields into the Set-Cookie header that Beaker's middleware sends."""
        import base64

        fields = {key: value for key, value in self.items() if not key.startswith("_")}  # not Beaker's bookkeeping
        _, signed = self.cookie.value_encode(base64.b64encode(PLAIN_JSON.dumps(fields)).decode("ascii"))
        if len(signed) > 4064:  # as Beaker: a browser may drop a longer cookie
            from beaker.exceptions import BeakerException

            raise BeakerException("Cookie value is too long to store")
        expires = self.serialize_cookie_date(datetime.now(UTC) + self.cookie_expires)
        header = f" {self.key}={signed}; expires={expires}" + "; HttpOnly" * bool(self.httponly)
        header += f"; Path=/; SameSite={self.samesite}" + "; Secure" * bool(self.secure)  # Beaker's order
        self.request["cookie_out"], self.request["set_cookie"] = header, True

    def _set_serializer(self, data_serializer):
        """Read and write the cookie's data as plain JSON (session_options asks for "json": never pickle)."""
        self.data_serializer, self.serializer = data_serializer, PLAIN_JSON


def cookie_value(header, name):
    """Return the named cookie's value from a Cookie header, or None; the last if sent twice, as http.cookies."""
    value = None
    for pair in header.split(";"):
        key, equals, text = pair.partition("=")
        if equals and key.strip() == name:
            value = text.strip().strip('"')  # a quoted value, as http.cookies reads it for Beaker
    return value


class PlainJson:
    """JSON text as bytes, the way Beaker's serializers are called."""

    def loads(self, data):
        """Return the session's data from the cookie's bytes."""
        return json.loads(data)

    def dumps(self, data):
        """Return the session's data as the cookie's bytes."""
        return json.dumps(data).encode()  # json's default settings: its one encoder made once, not per call


PLAIN_JSON = PlainJson()  # no state: the same for every session


def escape_html(value):
    """Return the value as text with &, <, >, " and ' escaped, as Bottle's html_escape does."""
    if type(value) is int:
        return str(value)  # digits and a minus sign: nothing to escape
    text = value.decode() if isinstance(value, bytes) else "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;").replace("'", "&#039;")


class PageTemplate(bottle.SimpleTemplate):
    """Bottle's SimpleTemplate, escaping each {{value}} in one call and freeing a page's values at once."""

    def execute(self, _stdout, kwargs):
        """Run the compiled template as Bottle 0.13.4 does, with escape_html, then empty its namespace."""
        # Written against Bottle 0.13.4's SimpleTemplate.execute. Bottle wraps
        # its escaping in a lambda and a text conversion: several calls for
        # every {{value}}, most of them item numbers. And its include() and
        # rebase() refer to the namespace they live in, a cycle that keeps the
        # page's items alive until Python's cycle collector runs; emptying the
        # namespace when the page is done frees them at once.
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


if __name__ == "__main__":
    main()  # serve, or a command: each opens the database only as far as it needs (--help: not at all)
else:
    # The WSGI callable, made once every piece above is defined: `waitress-serve
    # todo:app`, `gunicorn todo:app`, and PythonAnywhere's WSGI file
    # (`from todo import application`).
    app = application = create_app()
