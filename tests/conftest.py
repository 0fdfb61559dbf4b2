"""Fixtures: a fresh database per test, in-process apps, and real server processes."""

import base64
import copy
import hashlib
import hmac
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import webtest

ROOT = Path(__file__).resolve().parent.parent

# DATABASE_URL set: the whole suite runs on PostgreSQL, each test on a database of its own
# (.ci/run runs it once on SQLite, once in a throwaway cluster made by pg_virtualenv).
POSTGRES = os.environ.pop("DATABASE_URL", None)
# Importing todo builds its default app: point that at a scratch database, never data/todo.db.
os.environ["TODO_DATABASE"] = str(Path(tempfile.mkdtemp(prefix="todo-import-")) / "todo.db")
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

import todo  # noqa: E402

sqlite_only = pytest.mark.skipif(bool(POSTGRES), reason="SQLite's own behaviour: this run is on PostgreSQL")

PASSWORD = "correct horse battery"


class TestApp(webtest.TestApp):
    """WebTest's app that fails the test on any 5xx: a 500 is always a bug."""

    def do_request(self, req, status=None, expect_errors=None):
        """Send the request, then insist the answer is not a server error."""
        answer = super().do_request(req, status=status, expect_errors=True)
        path = req.environ["PATH_INFO"]  # not req.path: that fails on a path that is not UTF-8
        assert answer.status_int < 500, f"{req.method} {path} gave {answer.status}:\n{answer.errors}"
        if not expect_errors:
            self._check_status(status, answer)
            self._check_errors(answer)
        return answer


@pytest.fixture(autouse=True)
def no_idle_connections_left():
    """Close the SQLite connections this process keeps idle between requests once a test is done (3 files each)."""
    yield
    todo.close_idle_connections()


@pytest.fixture
def database(tmp_path):
    """Return this test's fresh database: a SQLite file's path, or on PostgreSQL a new database's URL."""
    with fresh_database(tmp_path) as database:
        yield database


@contextmanager
def fresh_database(directory):
    """Yield a new, empty database of this run's engine: directory/todo.db, or a PostgreSQL database dropped after."""
    if not POSTGRES:
        yield directory / "todo.db"
        return
    url = new_postgres_database()
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1].split("?")[0]}" WITH (FORCE)')


def new_postgres_database():
    """Create an empty PostgreSQL database beside DATABASE_URL's and return its URL."""
    name = f"todo_test_{os.getpid()}_{next(DATABASE_NUMBERS)}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, query = POSTGRES.partition("?")
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


DATABASE_NUMBERS = itertools.count()


def database_environ(database):
    """Return the environment that points todo at this database."""
    return {"TODO_DATABASE": str(database)} if isinstance(database, Path) else {"DATABASE_URL": database}


@contextmanager
def opened(database):
    """Open the test's database straight (either engine), as another program would; ? placeholders."""
    db = todo.connect(database)
    try:
        yield db
    finally:
        db.close()


def fill_items(database, username, count, title="item number {no}"):
    """Give the user items #1 to #count straight in the database (one transaction), as a long-used list has."""
    with opened(database) as db, todo.transaction(db):
        list_id = db.execute("SELECT first_list_id FROM users WHERE username = ?", (username,)).fetchone()[0]
        db.execute("UPDATE lists SET last_item_no = ? WHERE id = ?", (count, list_id))
        db.executemany(
            "INSERT INTO items (list_id, no, title, created) VALUES (?, ?, ?, '2026-01-01T00:00:00+00:00')",
            ((list_id, no, title.format(no=no)) for no in range(1, count + 1)),
        )


@pytest.fixture
def make_app(database):
    """Return a factory for in-process test apps on this test's database, with extra settings."""

    def make(**settings):
        environ = {**database_environ(database), **settings}
        return TestApp(todo.create_app(environ))

    return make


@pytest.fixture
def app(make_app):
    """Return a WebTest app on a fresh database, signed out."""
    return make_app()


def csrf_of(page):
    """Return the csrf_token of the first form on a page."""
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def register(app, username="alice", password=PASSWORD):
    """Create an account through the form; the app is then signed in as that user."""
    page = app.get("/register")
    return app.post("/register", {"username": username, "password": password, "csrf_token": csrf_of(page)})


def login(app, username="alice", password=PASSWORD):
    """Sign in through the form; return the answer, whatever it is."""
    page = app.get("/login")
    return app.post(
        "/login", {"username": username, "password": password, "csrf_token": csrf_of(page)}, expect_errors=True
    )


def copy_session(source, target):
    """Give the target app a copy of the source app's cookies: a second browser, or a stolen cookie."""
    for cookie in source.cookiejar:
        target.cookiejar.set_cookie(copy.copy(cookie))
    return target


def forge_cookie(secret_key, payload):
    """Return a session cookie value for raw payload bytes, signed the way Beaker signs it.

    Beaker's cookie is the HMAC-SHA1 of the base64 payload (40 hex digits), then that base64;
    todo's payload is JSON (Beaker's own JSON serializer compresses it with zlib first), a
    pickle serializer's a pickle.
    """
    value = base64.b64encode(payload).decode("ascii")
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha1).hexdigest() + value


def json_payload(data):
    """Return session data the way todo stores it: plain JSON (see LeanCookieSession)."""
    return json.dumps(data).encode()


def cookie_data(app):
    """Return what the app's session cookie holds (signed, not encrypted: anyone can read it)."""
    value = app.cookies["todo_session"].strip('"')
    return json.loads(base64.b64decode(value[40:]))  # after 40 hex digits of signature


def post(app, path, **fields):
    """POST a form the way a browser would, with the session's csrf_token."""
    token = csrf_of(app.get("/account" if path.startswith("/account") else "/"))
    return app.post(path, {"csrf_token": token, **fields}, expect_errors=True)


def new_list(app, name="Groceries"):
    """Make a list through the form; return its id, read from the 303's Location."""
    answer = post(app, "/lists", name=name)
    assert answer.status_int == 303, answer.text
    return int(re.fullmatch(r"/lists/(\d+)", answer.headers["Location"]).group(1))


def share(app, list_id, username):
    """Share the app's user's list with another account through the owner's form."""
    assert post(app, f"/lists/{list_id}/members", username=username).status_int == 303


@pytest.fixture
def alice(app):
    """Return the app signed in as a new user, alice."""
    register(app)
    return app


def free_port():
    """Return a TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url, process, log, timeout=30):
    """Poll /healthz until the server answers 200; fail at once if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{Path(log).read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)  # not ready yet: poll again
    raise TimeoutError(f"{url} did not start within {timeout} s:\n{Path(log).read_text()}")


def stop(processes):
    """Stop server processes: politely, then for sure."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Servers(list):
    """The base URLs of running servers, with the means to kill and restart one (crash tests)."""

    def __init__(self, urls, processes, start):
        super().__init__(urls)
        self.processes, self._start = processes, start

    def kill(self, index):
        """Kill server `index` with SIGKILL, as a crash would, and wait until it is gone."""
        self.processes[index].kill()
        self.processes[index].wait()

    def restart(self, index):
        """Start server `index` again on its port and wait until it serves."""
        self.processes[index] = self._start(index)
        wait_until_serving(self[index], self.processes[index], self._log(index))

    def _log(self, index):
        """Return the log file of server `index`."""
        return self._start.log_dir / f"server-{index}.log"


@contextmanager
def running(commands, database, extra_env=None, log_dir=None):
    """Start every command (argv lists with {port}) at once on one database; yield their base URLs.

    The servers get no TODO_SECRET_KEY unless extra_env gives one, and are
    always stopped, whatever happens in the block. What it yields is a list of
    URLs that can also kill and restart a server (see Servers).
    """
    env = {key: value for key, value in os.environ.items() if key != "TODO_SECRET_KEY"}
    env.update({**database_environ(database), "PYTHONUNBUFFERED": "1", **(extra_env or {})})
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="todo-logs-"))
    ports = [free_port() for _ in commands]
    processes = []

    def start(index):
        """Start command `index` on its port, its output appended to its log."""
        with open(log_dir / f"server-{index}.log", "ab") as log:  # a file, not a pipe: a full pipe would block
            return subprocess.Popen(
                [part.format(port=ports[index]) for part in commands[index]],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    start.log_dir = log_dir
    try:
        for index in range(len(commands)):
            processes.append(start(index))
        servers = Servers([f"http://127.0.0.1:{port}" for port in ports], processes, start)
        for index, process in enumerate(processes):
            wait_until_serving(servers[index], process, servers._log(index))
        yield servers
    finally:
        stop(processes)


def todo_servers(count, *options):
    """Return argv lists for `count` quiet `python todo.py` servers, each on its own {port}."""
    return [[sys.executable, str(ROOT / "todo.py"), "--quiet", "--port", "{port}", *options] for _ in range(count)]


class Browser:
    """A signed-in HTTP client for real servers: one cookie jar, any of the servers' URLs."""

    def __init__(self):
        self.http = requests.Session()

    def register(self, url, username="alice", password=PASSWORD):
        """Create an account and keep its session cookie."""
        token = csrf_of(self.http.get(url + "/register"))
        answer = self.http.post(
            url + "/register",
            {"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        return answer

    def login(self, url, username="alice", password=PASSWORD):
        """Sign in; return the answer (303 on success), redirects not followed."""
        token = csrf_of(self.http.get(url + "/login"))
        return self.http.post(
            url + "/login",
            {"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
        )

    def token(self, url):
        """Return the session's form token, read from the list page."""
        return csrf_of(self.http.get(url + "/"))

    def post(self, url, path, **fields):
        """POST a form with the session's token; redirects are not followed."""
        return self.http.post(url + path, {"csrf_token": self.token(url), **fields}, allow_redirects=False)

    def new_list(self, url, name):
        """Make a list through the form; return its id, read from the answer's Location."""
        answer = self.post(url, "/lists", name=name)
        assert answer.status_code == 303, answer.text
        return int(re.fullmatch(r"/lists/(\d+)", answer.headers["Location"]).group(1))

    def share(self, url, list_id, username):
        """Share the list with the account through the owner's form."""
        answer = self.post(url, f"/lists/{list_id}/members", username=username)
        assert answer.status_code == 303, answer.text

    def export(self, url):
        """Return the user's items as the export gives them."""
        answer = self.http.get(url + "/export.json")
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]
