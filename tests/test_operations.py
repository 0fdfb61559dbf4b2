"""An operator's first weeks, on real processes: signals, restore, idle connections, a database that cannot be used."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT, Browser, fill_items, opened, running, sqlite_only, todo_servers

import todo


def fill(database, username, count):
    """Give the user `count` items of some length straight in the database, as a long-used list would have."""
    fill_items(database, username, count, "item number {no} " + "x" * 60)


def test_sigterm_finishes_the_answer_in_progress_exits_0_and_leaves_no_wal(database):
    """A large answer being read slowly when SIGTERM comes arrives whole; then the process exits 0, database closed."""
    with running(todo_servers(1), database) as servers:
        browser = Browser()
        browser.register(servers[0], "olga")
        fill(database, "olga", 20_000)
        answer = browser.http.get(servers[0] + "/export.json", stream=True)
        assert answer.status_code == 200
        servers.processes[0].send_signal(signal.SIGTERM)  # the headers are in; most of the body is not
        body = b""
        for chunk in answer.iter_content(64 * 1024):
            body += chunk
            time.sleep(0.01)  # a slow reader
        assert servers.processes[0].wait(timeout=15) == 0
    assert len(requests.models.complexjson.loads(body)["items"]) == 20_000
    if isinstance(database, Path):  # SQLite's WAL file: nothing for SQLite to lay over a restored copy
        assert not Path(f"{database}-wal").exists()
    assert "Stopped." in (servers._start.log_dir / "server-0.log").read_text()


def test_sighup_does_not_stop_the_server(database):
    """Log rotation and supervisors send SIGHUP: the server says so and keeps serving."""
    with running(todo_servers(1), database) as servers:
        servers.processes[0].send_signal(signal.SIGHUP)
        time.sleep(0.5)  # give a wrongly handled signal the time to kill it
        assert servers.processes[0].poll() is None
        assert requests.get(servers[0] + "/healthz", timeout=5).text == "ok"


def test_150_idle_connections_do_not_lock_new_visitors_out(database):
    """waitress' default of 100 connections, each idle for 120 s, would refuse the 101st visitor."""
    with running(todo_servers(1), database) as (url,):
        host, port = url.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(150)]
        try:
            for sock in idle[::2]:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # half a request: a slow client
            started = time.monotonic()
            assert requests.get(url + "/login", timeout=10).status_code == 200
            assert time.monotonic() - started < 5
        finally:
            for sock in idle:
                sock.close()


def run_todo(database, *args, stdin=None):
    """Run a todo.py command on this database; return the finished process."""
    env = {"TODO_DATABASE": str(database), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(ROOT / "todo.py"), *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


@sqlite_only  # `python todo.py backup/restore` copy SQLite files (PostgreSQL has pg_dump and pg_restore)
def test_restore_while_serving_makes_the_data_exactly_the_backups(tmp_path):
    """Writers wait, then every page shows the backup: its items, its numbering, only its accounts."""
    database, saved = tmp_path / "todo.db", tmp_path / "saved.db"
    with running(todo_servers(2), database) as urls:
        alice, bob = Browser(), Browser()
        alice.register(urls[0], "alice")
        for title in ("one", "two", "three"):
            alice.post(urls[0], "/items", title=title)
        assert run_todo(database, "backup", str(saved)).returncode == 0
        for title in ("four", "five"):
            alice.post(urls[1], "/items", title=title)
        bob.register(urls[1], "bob")  # not in the backup
        restored = run_todo(database, "restore", str(saved))
        assert restored.returncode == 0, restored.stderr
        for url in urls:
            assert [item["title"] for item in alice.export(url)] == ["one", "two", "three"]
            assert bob.http.get(url + "/", allow_redirects=False).status_code == 303  # signed out: no such account
        assert alice.post(urls[1], "/items", title="after").status_code == 303
        assert [item["no"] for item in alice.export(urls[0])] == [1, 2, 3, 4]  # the numbering continues the backup's
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not Path(f"{saved}-wal").exists() and not Path(f"{saved}-shm").exists()  # the backup is left as it was


@sqlite_only  # `python todo.py restore` reads a SQLite file
@pytest.mark.parametrize("content", [b"not a database at all, just text" * 40, None])
def test_restore_refuses_what_is_not_a_todo_backup_and_changes_nothing(tmp_path, content):
    database, other = tmp_path / "todo.db", tmp_path / "other.db"
    assert run_todo(database, "adduser", "alice", stdin="long enough pw\n").returncode == 0
    if content is None:
        sqlite3.connect(other).execute("CREATE TABLE notes (text)")  # a database, but not todo's
    else:
        other.write_bytes(content)
    refused = run_todo(database, "restore", str(other))
    assert refused.returncode != 0
    assert "nothing changed" in refused.stderr and "Traceback" not in refused.stderr
    assert sqlite3.connect(database).execute("SELECT username FROM users").fetchall() == [("alice",)]


@sqlite_only  # a start-up error about the SQLite file
def test_a_database_that_is_not_one_stops_the_start_with_one_line(tmp_path):
    database = tmp_path / "todo.db"
    database.write_bytes(b"this is some other file, not SQLite " * 100)
    failed = run_todo(database, "--port", "1")
    assert failed.returncode != 0
    assert failed.stderr.strip().splitlines() == [f"todo: cannot use the database {database}: file is not a database"]


@sqlite_only  # a start-up error about the SQLite file
def test_a_database_path_that_cannot_be_opened_stops_the_start_with_one_line(tmp_path):
    database = tmp_path / "a-directory"
    database.mkdir()
    failed = run_todo(database, "--port", "1")
    assert failed.returncode != 0
    assert failed.stderr.strip().splitlines() == [
        f"todo: cannot use the database {database}: unable to open database file"
    ]


@sqlite_only  # a start-up error about the SQLite file, faked by opening it read-only
def test_a_read_only_database_stops_the_start_with_one_line(tmp_path, monkeypatch):
    """Opened read-only (as a file without write permission is): the start says so instead of failing later."""
    todo.init_db(tmp_path / "todo.db")

    def read_only(path, timeout=10):
        """Open the file read-only, as SQLite opens a file it may not write."""
        db = sqlite3.connect(
            f"{Path(path).as_uri()}?mode=ro",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            factory=todo.SQLiteConnection,
        )
        db.row_factory = sqlite3.Row
        return db

    monkeypatch.setattr(todo, "connect", read_only)
    with pytest.raises(SystemExit) as stopped:
        todo.create_app({"TODO_DATABASE": str(tmp_path / "todo.db")})
    assert (
        str(stopped.value)
        == f"todo: cannot use the database {tmp_path / 'todo.db'}: attempt to write a readonly database"
    )


def test_adds_answered_before_sigterm_are_all_kept(database):
    """Adds racing a SIGTERM: the add in progress finishes and is answered; stored and answered are the same adds."""
    answered = []
    with running(todo_servers(1), database) as servers:
        browser = Browser()
        browser.register(servers[0], "sam")
        token = browser.token(servers[0])

        def add_until_refused():
            """Add items until the server stops answering."""
            for index in range(10_000):
                try:
                    answer = browser.http.post(
                        servers[0] + "/items", {"title": f"t{index}", "csrf_token": token}, allow_redirects=False
                    )
                except requests.ConnectionError:
                    return
                if answer.status_code == 303:
                    answered.append(f"t{index}")

        adder = threading.Thread(target=add_until_refused)
        adder.start()
        deadline = time.monotonic() + 30
        while len(answered) < 20 and time.monotonic() < deadline:  # adds are flowing
            time.sleep(0.01)
        servers.processes[0].send_signal(signal.SIGTERM)
        adder.join(timeout=30)
        assert servers.processes[0].wait(timeout=15) == 0
    with opened(database) as db:
        stored = {row[0] for row in db.execute("SELECT title FROM items")}
    assert len(answered) >= 20 and set(answered) == stored  # no add lost, none stored unanswered (a retry's double)


@sqlite_only  # the SQLite backup command
@pytest.mark.parametrize("target", ["/", "/no/such/directory/todo-backup.db"])
def test_a_backup_to_a_place_it_cannot_write_says_so_in_one_line(tmp_path, target):
    database = tmp_path / "todo.db"
    assert run_todo(database, "adduser", "alice", stdin="long enough pw\n").returncode == 0
    failed = run_todo(database, "backup", target)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and target in failed.stderr


@pytest.mark.parametrize(("name", "value"), [("TODO_MAX_ITEMS", "lots"), ("TODO_POOL_SIZE", "0")])
def test_a_setting_that_is_not_a_number_stops_the_start_with_one_line(tmp_path, name, value):
    env = {"TODO_DATABASE": str(tmp_path / "todo.db"), "PATH": "/usr/bin:/bin", name: value}
    failed = subprocess.run(
        [sys.executable, str(ROOT / "todo.py"), "--port", "1"], capture_output=True, text=True, env=env, timeout=60
    )
    assert failed.returncode != 0 and failed.stderr.strip().splitlines() == [
        f"todo: {name} must be a whole number from 1, not {value!r}"
    ]


# --- Commands that do not need the site's database do not open it --------------------------------


def test_help_opens_no_database_and_makes_no_file(tmp_path):
    """`python todo.py --help` prints the usage and creates nothing: no database file, no directory."""
    database = tmp_path / "data" / "todo.db"
    done = run_todo(database, "--help")
    assert done.returncode == 0 and "restore" in done.stdout
    assert list(tmp_path.iterdir()) == []


@sqlite_only
def test_backup_of_a_database_that_does_not_exist_is_refused_and_makes_nothing(tmp_path):
    """A mistyped TODO_DATABASE: backup says there is no database there, exits non-zero, and writes no file."""
    done = run_todo(tmp_path / "typo.db", "backup", str(tmp_path / "copy.db"))
    assert done.returncode != 0 and "no database" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@sqlite_only
@pytest.mark.parametrize("damage", ["junk bytes", "missing", "truncated"])
def test_restore_works_whatever_state_the_live_file_is_in(tmp_path, damage):
    """Restore brings the backup's data back over a live file of junk, a truncated one, or none at all."""
    database = tmp_path / "todo.db"
    assert run_todo(database, "adduser", "alice", stdin="correct horse battery\n").returncode == 0
    assert run_todo(database, "backup", str(tmp_path / "good.db")).returncode == 0
    if damage == "junk bytes":
        database.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        database.write_bytes(database.read_bytes()[:1000])
    else:
        database.unlink()
    done = run_todo(database, "restore", str(tmp_path / "good.db"))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT username FROM users").fetchall() == [("alice",)]
    if damage != "missing":  # the damaged file is kept aside, not destroyed, and the output says where
        (aside,) = [path for path in tmp_path.glob("todo.db.damaged-*") if not path.name.endswith(("-wal", "-shm"))]
        assert str(aside) in done.stdout


@sqlite_only  # `python todo.py restore` writes a SQLite file
@pytest.mark.parametrize("damage", ["missing", "junk bytes"])
def test_restore_over_a_lost_live_file_while_serving_needs_no_restart(tmp_path, damage):
    """The live file deleted or overwritten under a running site: after restore every page shows the backup, and
    an add answered afterwards is in the file, with no restart (no worker keeps the file that was there)."""
    database, saved = tmp_path / "todo.db", tmp_path / "saved.db"
    with running(todo_servers(1, "--threads", "2"), database) as urls:
        alice = Browser()
        alice.register(urls[0], "alice")
        alice.post(urls[0], "/items", title="in the backup")
        assert run_todo(database, "backup", str(saved)).returncode == 0
        for title in ("lost", "with the file"):
            alice.post(urls[0], "/items", title=title)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        if damage == "junk bytes":
            database.write_bytes(os.urandom(8192))
        restored = run_todo(database, "restore", str(saved))
        assert restored.returncode == 0, restored.stderr
        for _ in range(4):  # whichever thread answers
            assert [item["title"] for item in alice.export(urls[0])] == ["in the backup"]
        assert alice.post(urls[0], "/items", title="after the restore").status_code == 303
    with sqlite3.connect(database) as db:
        assert [row[0] for row in db.execute("SELECT title FROM items ORDER BY no")] == [
            "in the backup",
            "after the restore",
        ]
