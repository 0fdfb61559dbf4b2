"""Benchmark todo side by side with the seed recipes; print a markdown table.

    python bench/run.py            # about 7 minutes: 3 runs of 5 s per row
    python bench/run.py --quick    # about 2 minutes: 3 runs of 1 s per row (CI runs this)
    DATABASE_URL=postgresql:/// python bench/run.py   # and the PostgreSQL rows: about 3 minutes more
    python bench/run.py --rows "shared|16 users"      # only the rows whose label matches this regular expression

Needs wrk (Debian: `apt-get install wrk`) and the dev requirements (gunicorn, requests).
It starts every server itself on free loopback ports, in a scratch directory, and
stops them all at the end. Every throughput is the median of the runs, and is also
given as a ratio to the bare waitress "hello" app measured in the same run: the
machine's noise moves both, so the ratio is the figure to compare.

Given a PostgreSQL server, it also measures todo's list page and add on PostgreSQL, in the
three shapes a deploy takes: one `python todo.py`, `gunicorn -w 4`, and two `python todo.py`
processes on one database (two hosts' worth), each row on a database of its own that it
creates on that server and drops at the end. On the two processes the add is measured twice:
as one user, every add to the one list, and as 16 users, each adding to their own list (on
PostgreSQL a write locks only its list's row, so adds to different lists need not wait). The
server is DATABASE_URL's, or --postgres URL's; without one, the table says in one line that the
PostgreSQL rows were skipped.

Beside todo's 50-item list page and add, in one process and under `gunicorn -w 4`, it measures the
same page and add in a by-the-book Flask peer (peer_flask.py, written the way Flask's tutorial
writes flaskr), each right after todo's row, and gives todo ÷ peer in a second table.
"""

import argparse
import atexit
import os
import platform
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from functools import partial
from pathlib import Path

import psycopg
import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# DATABASE_URL names the server the PostgreSQL rows create their databases on. It leaves this
# process's environment, which every server inherits: the SQLite rows must stay on SQLite.
DATABASE_URL = os.environ.pop("DATABASE_URL", None)
# This process uses todo's own connect() (either engine, ? placeholders), and importing todo
# builds its default app: on a scratch file, never data/todo.db.
IMPORT_SCRATCH = Path(tempfile.mkdtemp(prefix="todo-bench-import-"))
atexit.register(shutil.rmtree, IMPORT_SCRATCH, ignore_errors=True)
os.environ["TODO_DATABASE"] = str(IMPORT_SCRATCH / "todo.db")
sys.path.insert(0, str(ROOT))
import peer_flask  # noqa: E402  (the Flask peer, beside this file)

import todo as site  # noqa: E402  (as site: in run(), `todo` is the server)

CONNECTIONS = 32  # wrk's open connections for every throughput row
USERS = 16  # the "16 users" add row's users, each adding to their own list
CREATED = "2024-01-01T00:00:00+00:00"
MAX_ITEMS = 10_000_000  # TODO_MAX_ITEMS: an add row gives one user tens of thousands of items, past the default
ROWS_IN_BIG_DATABASE = 1_000_000
STEP_SECONDS = 30  # longest wait for a server to answer


def free_port():
    """Return a TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port, process, log, path=None):
    """Wait until the port accepts connections (and answers 200 on path, if given)."""
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if path is None:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)  # not listening yet: poll again
    raise TimeoutError(f"port {port} did not answer within {STEP_SECONDS} s:\n{log.read_text()}")


class Server:
    """One server command (a process, or a process group such as gunicorn's master and workers)."""

    def __init__(self, name, argv, workdir, env=None, ready_path=None, port=None):
        self.name, self.argv, self.ready_path = name, argv, ready_path
        self.port = port or free_port()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log = workdir / f"{name}.log"
        self.process = None

    @property
    def url(self):
        """Return the server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Start the server and wait until it answers."""
        argv = [part.format(port=self.port) for part in self.argv]
        with open(self.log, "ab") as log:  # a file, not a pipe: a full pipe would block the server
            self.process = subprocess.Popen(argv, cwd=BENCH, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.port, self.process, self.log, self.ready_path)
        return self

    def stop(self):
        """Stop the server: politely, then for sure."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self):
        """Stop the server and start it again on the same port."""
        self.stop()
        return self.start()


@contextmanager
def started(*servers):
    """Start the servers in order and always stop them all, in reverse order."""
    with ExitStack() as stack:
        for server in servers:
            stack.callback(server.stop)
            server.start()
        yield servers


def todo_server(name, workdir, database, gunicorn_workers=None):
    """Return a todo server on a SQLite file or a PostgreSQL URL: `python todo.py`, or `gunicorn -w N todo:app`."""
    if gunicorn_workers:
        argv = [
            "gunicorn",
            "--no-control-socket",
            "-w",
            str(gunicorn_workers),
            "-b",
            "127.0.0.1:{port}",
            "--chdir",
            str(ROOT),
            "todo:app",
        ]
    else:
        argv = [sys.executable, str(ROOT / "todo.py"), "--quiet", "--port", "{port}"]
    where = {"DATABASE_URL": database} if is_postgres(database) else {"TODO_DATABASE": str(database)}
    return Server(name, argv, workdir, env={**where, "TODO_MAX_ITEMS": str(MAX_ITEMS)}, ready_path="/healthz")


def peer_server(name, workdir, database, gunicorn_workers=None):
    """Return the Flask peer on a new SQLite file: waitress with 8 threads, or `gunicorn -w N`; its tables made now."""
    app = peer_flask.create_app({"DATABASE": str(database)})
    with app.app_context():  # the tutorial's `flask init-db`, in this process
        peer_flask.init_db()
        peer_flask.close_db()
    if gunicorn_workers:
        argv = ["gunicorn", "--no-control-socket", "-w", str(gunicorn_workers), "-b", "127.0.0.1:{port}"]
        argv.append("peer_flask:create_app()")
    else:
        argv = [sys.executable, "peer_flask.py", "--port", "{port}"]
    env = {"FLASK_DATABASE": str(database), "FLASK_SECRET_KEY": secrets.token_hex(16)}  # one key for all workers
    return Server(name, argv, workdir, env=env, ready_path="/auth/login")


def is_postgres(database):
    """Tell whether a database is a PostgreSQL URL (else it is a SQLite file's path)."""
    return str(database).startswith(("postgresql://", "postgres://"))


def database_of(server):
    """Return the database a todo server runs on: its DATABASE_URL, else its SQLite file."""
    return server.env.get("DATABASE_URL") or server.env["TODO_DATABASE"]


@contextmanager
def opened(database):
    """Open a SQLite file or a PostgreSQL URL with todo's own connect(): ? placeholders on either engine."""
    db = site.connect(str(database) if is_postgres(database) else Path(database))
    try:
        yield db
    finally:
        db.close()


class User:
    """A signed-in user of a running todo: the cookie and form token wrk sends."""

    def __init__(self, server, username):
        self.server, self.http = server, requests.Session()
        page = self.http.get(server.url + "/register")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        answer = self.http.post(
            server.url + "/register",
            {"username": username, "password": "benchmark password", "csrf_token": token},
            allow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        # Signing in starts a new session with a new token; the list page shows
        # it (and clears the welcome message, so wrk's cookie carries none).
        page = self.http.get(server.url + "/")
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        self.cookie = "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())
        with opened(database_of(server)) as db:
            self.id = db.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]

    def add(self, title="benchmark item"):
        """Add an item over HTTP; return the status code."""
        return self.http.post(
            self.server.url + "/items", {"title": title, "csrf_token": self.token}, allow_redirects=False
        ).status_code

    def numbers(self):
        """Return the item numbers the export gives."""
        return [item["no"] for item in self.http.get(self.server.url + "/export.json").json()["items"]]


class PeerUser:
    """A signed-in user of a running Flask peer: registered, then signed in, as its tutorial does; the cookie wrk
    sends (no form token: the tutorial has none)."""

    def __init__(self, server, username):
        self.server, self.http = server, requests.Session()
        form = {"username": username, "password": "benchmark password"}
        answer = self.http.post(server.url + "/auth/register", form, allow_redirects=False)
        assert answer.status_code == 302, answer.text
        answer = self.http.post(server.url + "/auth/login", form, allow_redirects=False)
        assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text
        self.cookie = "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())
        with closing(sqlite3.connect(server.env["FLASK_DATABASE"])) as db:
            self.id = db.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]


def fill_peer(user, count):
    """Give the peer's user `count` items, numbered 1..count, straight into its database."""
    with closing(sqlite3.connect(user.server.env["FLASK_DATABASE"])) as db, db:
        db.executemany(
            "INSERT INTO items (user_id, no, title) VALUES (?, ?, ?)",
            ((user.id, no, f"Item number {no}") for no in range(1, count + 1)),
        )
    answer = user.http.get(user.server.url + "/", allow_redirects=False)
    assert answer.status_code == 200 and answer.text.count("Item number") == count, answer.status_code


def peer_add_script(workdir, user):
    """Return a wrk script that POSTs the peer's add form as the user."""
    return lua_script(workdir, f"post-{user.server.name}-{user.id}", "POST", user.cookie, "title=Benchmark+item")


def peer_ratios(rates):
    """Return the table of todo ÷ Flask peer: for each pair measured, the median of the runs' ratios (their range)."""
    # In each run the two rows of a pair are measured one right after the other, so the ratio of
    # their requests per second is taken at one moment, with no hello in between: the hello
    # measured right after an add runs slow (the kernel is still writing that add's pages out),
    # and dividing by it would favour whichever row came second. Which comes first alternates
    # from run to run (pairs_in_turn), so neither always runs in the other's wake.
    cells = {}
    for (what, deploy), (todo_label, peer_label) in PEER_PAIRS.items():
        if todo_label in rates and peer_label in rates:
            runs = [mine / theirs for mine, theirs in zip(rates[todo_label], rates[peer_label], strict=True)]
            cells[what, deploy] = f"{statistics.median(runs):.2f} ({min(runs):.2f}-{max(runs):.2f})"
    if not cells:
        return []
    deploys = ("one process (waitress, 8 threads)", "gunicorn -w 4")
    heading = "| todo ÷ Flask peer, requests/s of the two measured back to back: median of the runs (lowest-highest) | "
    lines = ["", heading + " | ".join(deploys) + " |", "|---|---:|---:|"]
    for what in ("list page, 50 items", "add item"):
        lines.append(f"| {what} | " + " | ".join(cells.get((what, deploy), "") for deploy in deploys) + " |")
    return [*lines, ""]


PEER_PAIRS = {  # (what, deploy): (todo's row, the peer's row)
    ("list page, 50 items", "one process (waitress, 8 threads)"): (
        "todo list page, 50 items",
        "Flask peer list page, 50 items",
    ),
    ("add item", "one process (waitress, 8 threads)"): ("todo add item (POST, 303)", "Flask peer add item (POST, 302)"),
    ("list page, 50 items", "gunicorn -w 4"): (
        "todo list page, 50 items, gunicorn -w 4",
        "Flask peer list page, 50 items, gunicorn -w 4",
    ),
    ("add item", "gunicorn -w 4"): ("todo add item, gunicorn -w 4", "Flask peer add item, gunicorn -w 4"),
}


def pairs_in_turn(rows, number):
    """Return the rows for run `number`: in every other run, each todo row and its peer's row change places."""
    rows = list(rows)
    if number % 2:
        for todo_label, peer_label in PEER_PAIRS.values():
            labels = [label for label, _, _ in rows]
            if todo_label in labels and peer_label in labels:
                first, second = labels.index(todo_label), labels.index(peer_label)
                rows[first], rows[second] = rows[second], rows[first]
    return rows


def fill(database, user_id, count, first_other_user=None, others=0, per_other_user=1000):
    """Give the user's first list `count` items, and `others` items to other users' first lists, straight into the
    database (either engine); each other user's id is also their list's id."""
    with opened(database) as db, site.transaction(db):
        list_id = db.execute("SELECT first_list_id FROM users WHERE id = ?", (user_id,)).fetchone()[0]
        db.execute("UPDATE lists SET last_item_no = ? WHERE id = ?", (count, list_id))
        db.executemany(
            "INSERT INTO items (list_id, no, title, created) VALUES (?, ?, ?, ?)",
            ((list_id, no, f"Item number {no}", CREATED) for no in range(1, count + 1)),
        )
        if others:
            users = [first_other_user + n for n in range((others + per_other_user - 1) // per_other_user)]
            db.executemany(
                "INSERT INTO users (id, username, password_hash, session_secret, first_list_id, created) "
                "VALUES (?, ?, '-', '-', ?, ?)",
                ((n, f"other{n}", n, CREATED) for n in users),
            )
            db.executemany(
                "INSERT INTO lists (id, owner_id, name, last_item_no, created) VALUES (?, ?, 'To do', ?, ?)",
                ((n, n, per_other_user, CREATED) for n in users),
            )
            # One statement generates the rows inside SQLite: a million rows take about a second.
            db.execute(
                "INSERT INTO items (list_id, no, title, created) "
                "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < ? - 1) "
                "SELECT ? + x / ?, 1 + x % ?, 'Somebody else''s item ' || x, ? FROM n",
                (others, first_other_user, per_other_user, per_other_user, CREATED),
            )


def share_first_list(owner, member, member_name):
    """Share the owner's first list with the member, over HTTP as the owner; return its path, /lists/<id>."""
    with opened(database_of(owner.server)) as db:
        list_id = db.execute("SELECT first_list_id FROM users WHERE id = ?", (owner.id,)).fetchone()[0]
    path = f"/lists/{list_id}"
    form = {"username": member_name, "csrf_token": owner.token}
    answer = owner.http.post(owner.server.url + path + "/members", form, allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return path


def lua_script(workdir, name, method="GET", cookie=None, body=None):
    """Write a wrk script that sends the method, the session cookie and a form body."""
    lines = [f'wrk.method = "{method}"']
    if cookie:
        lines.append(f'wrk.headers["Cookie"] = "{cookie}"')
    if body:
        lines.append('wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"')
        lines.append(f'wrk.body = "{body}"')
    path = workdir / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def page_script(workdir, user):
    """Return a wrk script that GETs a page as the user."""
    return lua_script(workdir, f"get-{user.server.name}-{user.id}", "GET", user.cookie)


def form_script(workdir, user, fields=""):
    """Return a wrk script that POSTs a form as the user, with the session's token."""
    body = f"csrf_token={user.token}{fields}"
    return lua_script(workdir, f"post-{user.server.name}-{user.id}", "POST", user.cookie, body)


def users_script(workdir, name, users, fields=""):
    """Return a wrk script that POSTs a form as each of the users in turn: each request is the next user's."""
    # wrk's Lua cannot tell its connections apart, so the users take turns by request: with
    # N users and C connections, about C / N of the requests in flight are any one user's.
    forms = ", ".join(f'{{"{user.cookie}", "csrf_token={user.token}{fields}"}}' for user in users)
    lines = [
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"',
        f"local users = {{{forms}}}",
        "local requests, turn = {}, 0",
        "function init(args)  -- each wrk thread formats each user's request once",
        "  for n, user in ipairs(users) do",
        '    wrk.headers["Cookie"] = user[1]',
        "    requests[n] = wrk.format(nil, nil, nil, user[2])",
        "  end",
        "end",
        "function request()",
        "  turn = turn % #requests + 1",
        "  return requests[turn]",
        "end",
    ]
    path = workdir / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(url, seconds, script=None, connections=CONNECTIONS, threads=2):
    """Drive the URL with wrk; return (requests per second, failed responses and socket errors)."""
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", url]
    if script:
        argv[1:1] = ["-s", str(script)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    failed += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rate, failed


def drive(urls, seconds, script=None):
    """Drive one URL with wrk, or several at once; return (requests per second, failures), summed."""
    # Several: servers on one database, as on two hosts. Each gets its share of wrk's
    # threads and connections, all run at the same time, and their rates add up.
    urls = [urls] if isinstance(urls, str) else urls
    share = len(urls)
    with ThreadPoolExecutor(share) as pool:
        results = list(pool.map(lambda url: wrk(url, seconds, script, CONNECTIONS // share, max(1, 2 // share)), urls))
    return sum(rate for rate, _ in results), sum(failed for _, failed in results)


def hammer(send, requests_total=1000, concurrency=50):
    """Send the requests from `concurrency` threads at once; return what each answered."""
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: send(), range(requests_total)))


def counter_value(url):
    """Ask a seed counter for its next number."""
    with urllib.request.urlopen(url + "/", timeout=30) as answer:
        return int(answer.read())


def restart_all(servers):
    """Stop the whole recipe, then start it again in order, as a deploy or a reboot does."""
    for server in servers:
        server.stop()
    for server in servers:
        server.start()


def check_counter(servers, url):
    """Hammer a counter: return (distinct numbers in 1,000 answers, does the count survive a restart)."""
    # From a fresh start: after the throughput rows each worker's own count
    # sits in a range of its own, and duplicates would not show.
    restart_all(servers)
    numbers = hammer(lambda: counter_value(url))
    restart_all(servers)
    return len(set(numbers)), counter_value(url) > max(numbers)


def check_todo(server, username):
    """Hammer todo's add: return (distinct numbers among the answered adds, do they survive a restart)."""
    user = User(server, username)
    answered = sum(status == 303 for status in hammer(user.add))
    numbers = user.numbers()
    assert len(numbers) == answered, f"{answered} adds answered 303, but the export has {len(numbers)} items"
    assert sorted(numbers) == list(range(1, answered + 1)), "the numbers are not 1..N"
    server.restart()
    user.add()
    return len(set(numbers)), max(user.numbers()) == answered + 1


POSTGRES_SHAPES = (  # (how a row names the deploy, todo processes on the row's database, gunicorn workers)
    ("PostgreSQL", 1, None),
    ("PostgreSQL, gunicorn -w 4", 1, 4),
    (f"PostgreSQL, two `python todo.py` on one database, {CONNECTIONS // 2} connections each", 2, None),
)


def new_database(server_url, name):
    """Create an empty database on the URL's PostgreSQL server; return its URL (user, host and options kept)."""
    with psycopg.connect(server_url, autocommit=True) as admin:  # CREATE DATABASE cannot run in a transaction
        admin.execute(f'CREATE DATABASE "{name}"')
    base, question, options = server_url.partition("?")
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{name}{question}{options}"


def drop_database(server_url, name):
    """Drop a database new_database() created, with whatever connections are still open to it."""
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_rows(server_url, workdir, cleanup):
    """Start the PostgreSQL rows' servers, each row on a fresh database; return the rows (label, URLs, script)."""
    rows = []
    for number, (deploy, processes, workers) in enumerate(POSTGRES_SHAPES):
        for page in ("list", "add"):
            # A database per row, so that no row reads another's items; it is dropped after its servers stop.
            name = f"todo_bench_{os.getpid()}_{number}_{page}"
            url = new_database(server_url, name)
            cleanup.callback(drop_database, server_url, name)
            servers = [todo_server(f"pg{number}-{page}-{n}", workdir, url, workers) for n in range(processes)]
            cleanup.enter_context(started(*servers))
            user = User(servers[0], page)
            items = 50 if page == "list" else 0
            if items:
                fill(url, user.id, items)
            for server in servers:  # the one cookie signs in on every process: wrk must not measure a redirect
                answer = user.http.get(server.url + "/", allow_redirects=False)
                assert answer.status_code == 200 and answer.text.count("Item number") == items, answer.status_code
            if page == "list":
                label, path, script = f"todo list page, 50 items, {deploy}", "/", page_script(workdir, user)
            else:
                label, path = f"todo add item, {deploy}", "/items"
                script = form_script(workdir, user, "&title=Benchmark+item")
            rows.append((label, [server.url + path for server in servers], script))
            if page == "add" and processes > 1:  # on the same processes and database: many users, many lists
                rows.append(users_row(workdir, deploy, servers))
    return rows


def users_row(workdir, deploy, servers):
    """Register USERS users on the servers; return the row (label, URLs, script) of their adds to their own lists."""
    users = [User(servers[n % len(servers)], f"adder{n}") for n in range(1, USERS + 1)]
    for user in users:  # each cookie signs in on every process: wrk must not measure a redirect
        for server in servers:
            answer = user.http.get(server.url + "/", allow_redirects=False)
            assert answer.status_code == 200, answer.status_code
    script = users_script(workdir, f"post-{servers[0].name}-users", users, "&title=Benchmark+item")
    label = f"todo add item by {USERS} users, each to their own list, {deploy}"
    return label, [server.url + "/items" for server in servers], script


def postgres_server(server_url):
    """Describe the PostgreSQL server: its version, how it is reached, and whether it syncs to disk."""
    with psycopg.connect(server_url) as admin:
        version = admin.execute("SHOW server_version").fetchone()[0].split()[0]
        fsync = admin.execute("SHOW fsync").fetchone()[0]
        host = admin.info.host
    where = f"over a Unix socket in {host}" if host.startswith("/") else f"over TCP to {host}"
    return f"PostgreSQL {version} {where}, fsync={fsync}"


def memory_mb(pid):
    """Return the process's resident memory now (VmRSS) and at its peak (VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return tuple(int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024 for field in ("VmRSS", "VmHWM"))


def children(pid):
    """Return the ids of the process's children (gunicorn's workers)."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split()]


def machine():
    """Describe the machine: cores, CPU model, Python, SQLite."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def main():
    """Start everything, measure every row, print the table, stop everything."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s per measurement: checks that it all still runs")
    parser.add_argument("--seconds", type=float, help="seconds per measurement (default 5, or 1 with --quick)")
    parser.add_argument("--runs", type=int, default=3, help="runs per row; each figure is their median (default 3)")
    parser.add_argument(
        "--rows",
        metavar="REGEX",
        type=re.compile,
        help='measure only the rows whose label matches this regular expression (e.g. "shared|16 users")',
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=DATABASE_URL,
        help="a PostgreSQL server to add the PostgreSQL rows on, a fresh database each (default $DATABASE_URL)",
    )
    args = parser.parse_args()
    seconds = args.seconds or (1 if args.quick else 5)
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: install it with `apt-get install wrk` (Debian, Ubuntu).")
    workdir = Path(tempfile.mkdtemp(prefix="todo-bench-"))
    try:
        print(run(workdir, seconds, args.runs, args.postgres, args.rows))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir, seconds, runs, postgres=None, only=None):
    """Measure every row, or only those whose label matches the pattern `only` (the PostgreSQL rows on the
    `postgres` server's URL, if given); return the markdown table."""
    python = sys.executable
    manager_port = free_port()
    manager_env = {"SEED_MANAGER_PORT": str(manager_port)}
    hello = Server("hello", [python, "hello.py", "--port", "{port}"], workdir)
    todo = todo_server("todo", workdir, workdir / "todo.db")
    small = todo_server("todo-1k-others", workdir, workdir / "small.db")
    big = todo_server("todo-1m-others", workdir, workdir / "big.db")
    todo4 = todo_server("todo-gunicorn", workdir, workdir / "todo4.db", gunicorn_workers=4)
    naive = Server(
        "naive", ["gunicorn", "--no-control-socket", "-w", "4", "-b", "127.0.0.1:{port}", "seed_global:app"], workdir
    )
    manager = Server("manager", [python, "seed_manager.py"], workdir, env=manager_env, port=manager_port)
    peer = peer_server("peer", workdir, workdir / "peer.db")
    peer4 = peer_server("peer-gunicorn", workdir, workdir / "peer4.db", gunicorn_workers=4)
    shared = Server(
        "manager-gunicorn",
        ["gunicorn", "--no-control-socket", "-w", "4", "-b", "127.0.0.1:{port}", "seed_manager:app"],
        workdir,
        manager_env,
    )
    servers = (hello, todo, small, big, todo4, naive, manager, shared, peer, peer4)
    with started(*servers), ExitStack() as postgres_cleanup:
        list50, list1000, adder, toggler = (User(todo, name) for name in ("list50", "list1000", "adder", "toggler"))
        fill(todo.env["TODO_DATABASE"], list50.id, 50)
        fill(todo.env["TODO_DATABASE"], list1000.id, 1000)
        fill(todo.env["TODO_DATABASE"], toggler.id, 1)
        owner50, member50 = User(todo, "owner50"), User(todo, "member50")  # a list shared: the member loads it
        fill(todo.env["TODO_DATABASE"], owner50.id, 50)
        shared_path = share_first_list(owner50, member50, "member50")
        answer = member50.http.get(todo.url + shared_path, allow_redirects=False)
        assert answer.status_code == 200 and answer.text.count("Item number") == 50, answer.status_code
        small_user, big_user = User(small, "list50"), User(big, "list50")
        fill(small.env["TODO_DATABASE"], small_user.id, 50, first_other_user=1000, others=1000)
        fill(big.env["TODO_DATABASE"], big_user.id, 50, first_other_user=1000, others=ROWS_IN_BIG_DATABASE)
        adder4, list50_4, list1000_4 = (User(todo4, name) for name in ("adder", "list50", "list1000"))
        fill(todo4.env["TODO_DATABASE"], list50_4.id, 50)
        fill(todo4.env["TODO_DATABASE"], list1000_4.id, 1000)
        peer_list50, peer_adder, peer4_list50, peer4_adder = (
            PeerUser(server, name) for server in (peer, peer4) for name in ("list50", "adder")
        )
        fill_peer(peer_list50, 50)
        fill_peer(peer4_list50, 50)

        page, form = partial(page_script, workdir), partial(form_script, workdir)
        big_label = f"todo list page, 50 items; {ROWS_IN_BIG_DATABASE:,} other items in the database"
        small_label = "todo list page, 50 items; 1,000 other items in the database"
        naive_label = "seed: naive global counter, gunicorn -w 4"
        manager_label = "seed: BaseManager dict + lock, gunicorn -w 4"
        add4_label = "todo add item, gunicorn -w 4"
        rows = [
            ("bare waitress hello (the ceiling)", hello.url + "/", None),
            ("todo list page, 50 items", todo.url + "/", page(list50)),
            ("Flask peer list page, 50 items", peer.url + "/", page(peer_list50)),
            ("todo shared list's page, 50 items, as its member (/lists/<id>)", todo.url + shared_path, page(member50)),
            ("todo add item (POST, 303)", todo.url + "/items", form(adder, "&title=Benchmark+item")),
            ("Flask peer add item (POST, 302)", peer.url + "/items", peer_add_script(workdir, peer_adder)),
            ("todo toggle (POST, 303)", todo.url + "/items/1/toggle", form(toggler)),
            ("todo list page, 1,000 items", todo.url + "/", page(list1000)),
            (small_label, small.url + "/", page(small_user)),
            (big_label, big.url + "/", page(big_user)),
            (naive_label, naive.url + "/", None),
            (manager_label, shared.url + "/", None),
            (add4_label, todo4.url + "/items", form(adder4, "&title=Benchmark+item")),
            ("Flask peer add item, gunicorn -w 4", peer4.url + "/items", peer_add_script(workdir, peer4_adder)),
            ("todo list page, 50 items, gunicorn -w 4", todo4.url + "/", page(list50_4)),
            ("Flask peer list page, 50 items, gunicorn -w 4", peer4.url + "/", page(peer4_list50)),
            ("todo list page, 1,000 items, gunicorn -w 4", todo4.url + "/", page(list1000_4)),
        ]
        if postgres:  # last, after the SQLite rows
            rows += postgres_rows(postgres, workdir, postgres_cleanup)
        if only:  # the hello, and the rows asked for
            rows = rows[:1] + [row for row in rows[1:] if only.search(row[0])]
        rates = {label: [] for label, _, _ in rows}
        ratios = {label: [] for label, _, _ in rows}
        failures = {}
        hello_label, hello_url, _ = rows[0]
        for number in range(runs):
            print(f"run {number + 1} of {runs} ...", file=sys.stderr, flush=True)
            for label, url, script in pairs_in_turn(rows[1:], number):
                # The ceiling is measured again right before each row: on a
                # shared machine it drifts within a minute, and a ratio is
                # only fair against the hello of the same moment.
                hello_rate, failed = wrk(hello_url, seconds)
                rates[hello_label].append(hello_rate)
                ratios[hello_label].append(1.0)
                rate, failed_here = drive(url, seconds, script)
                rates[label].append(rate)
                ratios[label].append(rate / hello_rate)
                for name, count in ((hello_label, failed), (label, failed_here)):
                    if count:
                        failures[name] = failures.get(name, 0) + count
        rss, peak = memory_mb(todo.process.pid)
        worker_rss, worker_peak = max(memory_mb(pid) for pid in children(todo4.process.pid))

        checks = {
            naive_label: lambda: check_counter([naive], naive.url),
            manager_label: lambda: check_counter([manager, shared], shared.url),
            add4_label: lambda: check_todo(todo4, "hammer"),
        }
        if any(label in rates for label in checks):
            print("correctness: 1,000 requests at concurrency 50, then a restart ...", file=sys.stderr, flush=True)
        correctness = {label: check() for label, check in checks.items() if label in rates}

    lines = [
        f"| what ({CONNECTIONS} connections) | req/s | × hello | distinct numbers in 1,000 | survives a restart |",
        "|---|---:|---:|---:|---|",
    ]
    for label, _, _ in rows:
        distinct, survives = correctness.get(label, (None, None))
        distinct = "" if distinct is None else f"{distinct:,}"
        survives = "" if survives is None else "yes" if survives else "no"
        rate, ratio = statistics.median(rates[label]), statistics.median(ratios[label])
        lines.append(f"| {label} | {rate:,.0f} | {ratio:.2f} | {distinct} | {survives} |")
    lines += [
        "",
        f"Each figure: the median of {runs} runs of {seconds:g} s with wrk over loopback; each ratio is to the "
        "hello measured just before that row.",
    ]
    lines += peer_ratios(rates)
    if small_label in rates and big_label in rates:
        slowdown = statistics.median(rates[small_label]) / statistics.median(rates[big_label])
        versus = f"List page with {ROWS_IN_BIG_DATABASE:,} other items vs 1,000"
        lines.append(f"{versus}: {slowdown:.2f}x the time per request.")
    lines += [
        f"Memory of the `python todo.py` process (8 threads) after its load: RSS {rss:.1f} MiB, peak {peak:.1f} MiB.",
        f"Memory of the largest `gunicorn -w 4` worker after its load: RSS {worker_rss:.1f} MiB, "
        f"peak {worker_peak:.1f} MiB.",
        f"Machine: {machine()}.",
    ]
    if postgres:
        lines.append(
            f"PostgreSQL rows: {postgres_server(postgres)}, a fresh database for each row; the two-process rows drive "
            f"both processes at once, {CONNECTIONS // 2} connections and 1 wrk thread each, and add their rates; "
            f"the {USERS} users' adds run on the one-user add's processes and database, each request the next "
            "user's in turn."
        )
    else:
        lines.append("PostgreSQL rows: skipped, no server to run them on (set DATABASE_URL or pass --postgres URL).")
    if failures:
        lines.append(f"FAILED responses or socket errors: {failures}")
    table = "\n".join(lines)
    if failures:
        print(table)
        sys.exit("some requests failed: see the last line of the table")
    return table


if __name__ == "__main__":
    main()
