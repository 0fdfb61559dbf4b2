"""PostgreSQL past one host (SPEC "Past one host: PostgreSQL"), with real `python todo.py` processes.

Run only when DATABASE_URL names a PostgreSQL server; .ci/run runs the suite a second time inside
a throwaway cluster made by pg_virtualenv, which also lets the restart test restart that cluster.
Throttling across workers is not repeated here: tests/test_security_workers.py runs on both engines.
"""

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import PASSWORD, POSTGRES, ROOT, Browser, free_port, opened, running, todo_servers

import todo

pytestmark = pytest.mark.skipif(
    not POSTGRES,
    reason="PostgreSQL only: set DATABASE_URL (CI runs these under pg_virtualenv: "
    "pg_virtualenv -o fsync=off sh -c 'DATABASE_URL=postgresql:/// python -m pytest')",
)

TODO = [sys.executable, str(ROOT / "todo.py")]


def environment(**settings):
    """Return this process's environment without DATABASE_URL or TODO_DATABASE, plus the given settings."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "TODO_DATABASE")}
    env.update(settings)
    return env


def run_todo(*args, env, stdin=""):
    """Run `python todo.py ARGS` to its end (90 s at most); return the finished process and its seconds."""
    started = time.monotonic()
    try:
        result = subprocess.run(
            [*TODO, *args], env=env, input=stdin, capture_output=True, text=True, timeout=90, cwd=ROOT
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"todo.py {' '.join(args)} still ran after 90 s: {error.stdout!r} {error.stderr!r}")
    return result, time.monotonic() - started


def is_sqlite_file(path):
    """Return whether the file is a SQLite database (or its -wal / -shm companion)."""
    if path.name.endswith(("-wal", "-shm", "-journal")):
        return True
    with open(path, "rb") as file:
        return file.read(16) == b"SQLite format 3\0"


def add_form(token, title):
    """Return the fields of the add form."""
    return {"title": title, "csrf_token": token}


def wait_for(condition, timeout, message):
    """Poll the condition every 50 ms until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


def table_rows(database):
    """Return every row of the site's tables, in a stable order."""
    with opened(database) as db:
        return {
            "users": [tuple(row) for row in db.execute("SELECT * FROM users ORDER BY id")],
            "lists": [tuple(row) for row in db.execute("SELECT * FROM lists ORDER BY id")],
            "members": [tuple(row) for row in db.execute("SELECT * FROM members ORDER BY list_id, user_id")],
            "items": [tuple(row) for row in db.execute("SELECT * FROM items ORDER BY list_id, no")],
            "settings": [tuple(row) for row in db.execute("SELECT * FROM settings ORDER BY name")],
        }


# --- Two hosts --------------------------------------------------------------


def test_two_hosts_sharing_only_the_database_url_agree(database, tmp_path):
    """Two copies of the project, in two directories, share nothing but DATABASE_URL: one site."""
    hosts = []
    for name in ("host-a", "host-b"):
        copy = tmp_path / name
        copy.mkdir()
        shutil.copy2(ROOT / "todo.py", copy / "todo.py")
        shutil.copytree(ROOT / "views", copy / "views")
        shutil.copytree(ROOT / "static", copy / "static")
        hosts.append(copy)
    # Each from its own directory, with TODO_DATABASE unset: a fall back to SQLite would make data/todo.db there.
    commands = [
        ["env", "-u", "TODO_DATABASE", "-C", str(copy), sys.executable, "todo.py", "--quiet", "--port", "{port}"]
        for copy in hosts
    ]
    with running(commands, database) as urls:
        for process, copy in zip(urls.processes, hosts, strict=True):  # as meant: its own directory, no SQLite file
            assert Path(f"/proc/{process.pid}/cwd").resolve() == copy.resolve()
            assert b"TODO_DATABASE=" not in Path(f"/proc/{process.pid}/environ").read_bytes()
        url_a, url_b = urls
        browser = Browser()
        browser.register(url_a)
        page = browser.http.get(url_b + "/", allow_redirects=False)
        assert page.status_code == 200 and "alice" in page.text  # host B honours host A's cookie

        token, cookies = browser.token(url_b), dict(browser.http.cookies)
        start = threading.Barrier(100)

        def add(index):
            start.wait()  # all at once, half on each host
            url = (url_a, url_b)[index % 2]
            return requests.post(
                url + "/items", add_form(token, f"task {index}"), cookies=cookies, allow_redirects=False, timeout=60
            )

        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(add, range(100)))
        assert Counter(answer.status_code for answer in answers) == {303: 100}
        for url in (url_a, url_b):
            items = browser.export(url)
            assert [item["no"] for item in items] == list(range(1, 101))
            assert sorted(item["title"] for item in items) == sorted(f"task {index}" for index in range(100))
    for copy in hosts:
        assert not (copy / "data").exists()
        sqlite_files = [path for path in copy.rglob("*") if path.is_file() and is_sqlite_file(path)]
        assert sqlite_files == []


# --- The database restarts under load ----------------------------------------


def cluster(action):
    """Start, stop or restart pg_virtualenv's throwaway cluster, the one DATABASE_URL names."""
    subprocess.run(["pg_ctlcluster", os.environ["PGVERSION"], "regress", action], check=True, timeout=120)


def health(url):
    """Return /healthz's status and Retry-After now, or None when the server cannot be reached."""
    try:
        answer = requests.get(url + "/healthz", timeout=10)
    except requests.RequestException:
        return None
    return answer.status_code, answer.headers.get("Retry-After")


def test_database_restart_under_write_load_gives_503s_then_serves_again_without_losing_an_answered_add(database):
    if not (os.environ.get("PGVERSION") and shutil.which("pg_ctlcluster")):
        pytest.skip("restarts pg_virtualenv's cluster (pg_ctlcluster $PGVERSION regress): run under pg_virtualenv")
    with running(todo_servers(2), database) as urls:
        browser = Browser()
        browser.register(urls[0])
        token, cookies = browser.token(urls[0]), dict(browser.http.cookies)
        answered, statuses, without_retry_after, stop = [], Counter(), [], threading.Event()

        def write():
            """Add items round-robin until told to stop, recording every answer."""
            number = 0
            while not stop.is_set():
                url, title = urls[number % 2], f"load {number}"
                number += 1
                try:
                    answer = requests.post(
                        url + "/items", add_form(token, title), cookies=cookies, allow_redirects=False, timeout=30
                    )
                except requests.RequestException:
                    statuses["connection error"] += 1
                    time.sleep(0.02)  # pace the retries while the server cannot be reached
                    continue
                statuses[answer.status_code] += 1
                if answer.status_code == 303:
                    answered.append(title)
                else:
                    if answer.status_code == 503 and "Retry-After" not in answer.headers:
                        without_retry_after.append(title)
                    time.sleep(0.02)  # pace the retries while the database is away

        def adds_go_on(what):
            """Wait until both servers' /healthz answer 200 again by themselves, and ten more adds succeed."""
            wait_for(lambda: [health(url) for url in urls] == [(200, None)] * 2, 30, f"not healthy 30 s {what}")
            assert all(process.poll() is None for process in urls.processes)  # nobody restarted them
            before = len(answered)
            wait_for(lambda: len(answered) >= before + 10, 30, f"adds do not succeed {what}: {statuses}")

        writer, stopped = threading.Thread(target=write), False
        writer.start()
        try:
            wait_for(lambda: len(answered) >= 10, 30, "no adds succeeded before the restart")
            # A restart: every connection in the servers' pools is cut (the outage is too short to see).
            cluster("restart")
            adds_go_on("after a restart")
            # Down for a while: the adds and /healthz answer 503, then it comes back.
            cluster("stop")
            stopped = True
            seen_503 = statuses[503]
            wait_for(lambda: statuses[503] >= seen_503 + 2, 30, f"no 503 while the database is down: {statuses}")
            assert [health(url) for url in urls] == [(503, "5")] * 2
            cluster("start")
            stopped = False
            adds_go_on("after the database came back")
        finally:
            stop.set()
            writer.join(timeout=60)
            if stopped:
                cluster("start")  # for the tests after this one
        assert not writer.is_alive()
        for url in urls:  # and on each server, from here too
            assert browser.post(url, "/items", title=f"after the restart on {url}").status_code == 303
            answered.append(f"after the restart on {url}")

    assert 500 not in statuses, statuses
    assert set(statuses) <= {303, 503, "connection error"}, statuses
    assert without_retry_after == []
    with opened(database) as db:
        stored = [tuple(row) for row in db.execute("SELECT no, title FROM items ORDER BY no")]
    assert [no for no, _ in stored] == list(range(1, len(stored) + 1))  # no number skipped or repeated
    assert set(answered) <= {title for _, title in stored}  # every add answered 303 is there


# --- copy-to ---------------------------------------------------------------


def test_copy_to_moves_a_sqlite_site_and_a_signed_in_browser_stays_signed_in(database, tmp_path):
    sqlite_file = tmp_path / "todo.db"
    assert "DATABASE_URL" not in os.environ  # conftest took it: the SQLite server below never sees it
    alice, bob = Browser(), Browser()
    with running(todo_servers(1), sqlite_file) as (url,):
        alice.register(url)
        for title in ("first", "second", "third"):
            assert alice.post(url, "/items", title=title).status_code == 303
        assert alice.post(url, "/items/3/toggle").status_code == 303
        assert alice.post(url, "/items/2/delete").status_code == 303
        items_before = alice.export(url)
        assert [item["no"] for item in items_before] == [1, 3]
        bob.register(url, "bob")
        with opened(sqlite_file) as db:
            bob_id = db.execute("SELECT id FROM users WHERE username = 'bob'").fetchone()[0]
            alice_id = db.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()[0]
        assert bob.post(url, "/account/delete", password=PASSWORD).status_code == 303
    assert bob_id > alice_id

    sqlite_env = environment(TODO_DATABASE=str(sqlite_file))
    result, _ = run_todo("copy-to", database, env=sqlite_env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\b1 users?\b", result.stdout) and re.search(r"\b2 items\b", result.stdout), result.stdout

    with running(todo_servers(1), database) as (url,):
        page = alice.http.get(url + "/", allow_redirects=False)  # the cookie SQLite's site gave
        assert page.status_code == 200 and "alice" in page.text
        assert alice.export(url) == items_before  # numbers, titles, done and created, as they were
        assert [(item["title"], item["done"]) for item in items_before] == [("first", False), ("third", True)]
        assert alice.post(url, "/items", title="fourth").status_code == 303
        assert [item["no"] for item in alice.export(url)] == [1, 3, 4]
        Browser().register(url, "carol")
    with opened(database) as db:
        assert db.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()[0] == alice_id
        assert db.execute("SELECT id FROM users WHERE username = 'carol'").fetchone()[0] > bob_id

    before = table_rows(database)
    result, _ = run_todo("copy-to", database, env=sqlite_env)
    assert result.returncode != 0
    assert "already holds accounts" in result.stderr and "Copied" not in result.stdout, result
    assert table_rows(database) == before


# --- Bad URLs and commands that are SQLite's -------------------------------

BAD_URLS = {  # what DATABASE_URL says, and the password in it that must never be printed
    "not PostgreSQL": ("mysql://u:pw@h/db", "pw"),
    "unparseable": ("postgresql://[bad", None),
    "unparseable, with a password": ("postgresql://someone:s3cr3t-pw@[bad", "s3cr3t-pw"),  # libpq quotes the URL
    "a bad %-token in the password": ("postgresql://someone:s3cr3t%zz@db.example/todo", "s3cr3t"),  # quoted alone
    "nothing listening": ("postgresql://someone:s3cr3t-pw@127.0.0.1:{free_port}/todo", "s3cr3t-pw"),
    "a server that never answers": ("postgresql://someone:s3cr3t-pw@127.0.0.1:{silent_port}/todo", "s3cr3t-pw"),
}


@pytest.mark.parametrize("command", [["--port", "{port}"], ["adduser", "x"]], ids=["serve", "adduser"])
@pytest.mark.parametrize("kind", BAD_URLS)
def test_a_bad_database_url_stops_at_once_with_one_line_and_no_password(kind, command):
    url, password = BAD_URLS[kind]
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts: connections hang
        url = url.format(free_port=free_port(), silent_port=silent.getsockname()[1])
        args = [part.format(port=free_port()) for part in command]
        result, seconds = run_todo(*args, env=environment(DATABASE_URL=url), stdin=PASSWORD + "\n")
    assert result.returncode != 0
    assert seconds < 60  # a few seconds: connect_timeout is 5
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), result.stderr
    assert "Traceback" not in result.stderr
    if password:
        assert password not in result.stdout + result.stderr


def test_backup_and_restore_on_postgresql_name_pg_dump_and_pg_restore_and_write_nothing(database, tmp_path):
    env = environment(DATABASE_URL=database)
    todo.init_db(database)  # a site that has served: its tables are there to be left alone
    target = tmp_path / "todo.backup"
    result, _ = run_todo("backup", str(target), env=env)
    assert result.returncode != 0 and "pg_dump" in result.stderr, result
    assert not target.exists()

    backup_file = tmp_path / "backup.db"  # a real todo backup, holding an account
    todo.init_db(backup_file)
    db = todo.connect(backup_file)
    try:
        todo.create_user(db, "mallory", PASSWORD)
    finally:
        db.close()
    files_before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    rows_before = table_rows(database)
    result, _ = run_todo("restore", str(backup_file), env=env)
    assert result.returncode != 0 and "pg_restore" in result.stderr, result
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == files_before
    assert table_rows(database) == rows_before
    with sqlite3.connect(backup_file) as backup:
        assert backup.execute("SELECT username FROM users").fetchall() == [("mallory",)]


# --- Start-up together -----------------------------------------------------


def test_four_servers_starting_together_on_an_empty_database_make_one_schema_and_one_key(database):
    with opened(database) as db:
        assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
    with running(todo_servers(4), database) as urls:  # started at once; each must answer /healthz
        with opened(database) as db:
            assert db.execute("SELECT count(*) FROM settings WHERE name = 'secret_key'").fetchone()[0] == 1
        browser = Browser()
        browser.register(urls[2])
        for url in urls:
            page = browser.http.get(url + "/", allow_redirects=False)
            assert page.status_code == 200 and "alice" in page.text


def test_starts_at_the_same_instant_on_an_empty_database_all_succeed(database):
    """Processes seldom start within the same millisecond; eight connections starting the app at once do."""
    start = threading.Barrier(8)

    def start_app(_):
        start.wait()
        try:
            return callable(todo.create_app({"DATABASE_URL": database}))
        except SystemExit as error:  # create_app's one-line reason
            return str(error)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(start_app, range(8))) == [True] * 8
    with opened(database) as db:
        assert db.execute("SELECT count(*) FROM settings WHERE name = 'secret_key'").fetchone()[0] == 1


def test_copy_to_a_database_a_site_already_started_on(database, tmp_path):
    """The usual order on a platform: the add-on is attached, the app boots once (making a key), then the move."""
    sqlite_file = tmp_path / "todo.db"
    env = {**os.environ, "TODO_DATABASE": str(sqlite_file)}  # PG*: the server; DATABASE_URL: conftest took it
    todo_py = [sys.executable, str(ROOT / "todo.py")]
    added = subprocess.run([*todo_py, "adduser", "alice"], input="long enough pw\n", text=True, env=env, timeout=60)
    assert added.returncode == 0
    todo.create_app({"TODO_DATABASE": str(sqlite_file)})  # the SQLite site served: it has a key, browsers hold it
    todo.create_app({"DATABASE_URL": database})  # the first boot on PostgreSQL: schema and a key of its own
    moved = subprocess.run([*todo_py, "copy-to", database], env=env, capture_output=True, text=True, timeout=60)
    assert moved.returncode == 0, moved.stderr
    with sqlite3.connect(sqlite_file) as db:
        sqlite_key = db.execute("SELECT value FROM settings WHERE name = 'secret_key'").fetchone()[0]
    with opened(database) as db:  # SQLite's key replaced the first boot's: its browsers stay signed in
        assert db.execute("SELECT value FROM settings WHERE name = 'secret_key'").fetchone()[0] == sqlite_key
        assert [row[0] for row in db.execute("SELECT username FROM users")] == ["alice"]


def test_sql_with_a_literal_question_mark_or_percent_runs_as_written(database):
    """The ? placeholders become psycopg's %s by a parse: a ? or % in quotes, comments or an operator stays."""
    with opened(database) as db:
        row = db.execute("SELECT '?', '100%', ? || '?', 7 % 4 -- what? 5%\n", ("x",)).fetchone()
        assert tuple(row) == ("?", "100%", "x?", 3)
        assert tuple(db.execute("SELECT 'it''s ?', 9 % 5").fetchone()) == ("it's ?", 4)
