"""Crash safety: adds answered 303 survive a kill -9 of a worker, and backups are consistent copies."""

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import requests
from conftest import ROOT, Browser, opened, running, sqlite_only, todo_servers

ADDS_BEFORE_KILL = 30  # answered adds through the worker that is then killed
ADDS_AFTER_RESTART = 30  # answered adds through the restarted worker before the stream stops


class AddStream:
    """Adds items one after another, round-robin over the servers, in a background thread."""

    def __init__(self, browser, urls):
        self.browser, self.urls = browser, urls
        self.token = browser.token(urls[0])  # the session's token stays valid for every form
        self.answered = []  # (server index, title) of every add answered 303, in order
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        """Add items until told to stop; a refused or broken connection is simply not answered."""
        sent = 0
        while not self.stopping.is_set():
            index, title = sent % len(self.urls), f"item {sent}"
            sent += 1
            try:
                answer = self.browser.http.post(
                    self.urls[index] + "/items",
                    {"title": title, "csrf_token": self.token},
                    allow_redirects=False,
                    timeout=30,
                )
            except requests.ConnectionError:
                continue  # that worker is down: this add was never answered
            if answer.status_code == 303:
                with self.changed:
                    self.answered.append((index, title))
                    self.changed.notify_all()

    def wait_for(self, count, index=None):
        """Wait until `count` more adds than now have been answered (by server `index`, if given)."""

        def done():
            """Count the matching answered adds."""
            return sum(1 for server, _ in self.answered if index is None or server == index)

        with self.changed:
            target = done() + count
            assert self.changed.wait_for(lambda: done() >= target, timeout=60), "the adds stopped"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=60)

    def titles(self):
        """Return the titles of the adds answered so far."""
        with self.changed:
            return [title for _, title in self.answered]


def integrity(database):
    """Return the database's own check of its storage: 'ok' when nothing is damaged."""
    if isinstance(database, Path):  # SQLite: every page, index and table of the file
        db = sqlite3.connect(database)
        try:
            return db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()
    # PostgreSQL: amcheck, its contrib module, reads every table's pages and every B-tree index,
    # checking that each index holds exactly the table's rows; a damaged one raises, or verify_heapam lists it.
    with opened(database) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        tables = [row[0] for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        damage = [row for table in tables for row in db.execute("SELECT * FROM verify_heapam(?::regclass)", (table,))]
        indexes = db.execute(
            "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relnamespace = 'public'::regnamespace"
        ).fetchall()
        for (index,) in indexes:
            db.execute("SELECT bt_index_check(?::regclass, true)", (index,))
        return "ok" if tables and indexes and not damage else f"damaged: {damage}"


def test_answered_adds_survive_a_worker_killed_mid_stream(database):
    """SIGKILL one of two workers while one user adds through both: every 303 is in the export."""
    with running(todo_servers(2), database) as servers:
        browser = Browser()
        browser.register(servers[0])
        with AddStream(browser, list(servers)) as stream:
            stream.wait_for(ADDS_BEFORE_KILL, index=1)
            servers.kill(1)
            stream.wait_for(5, index=0)  # the survivor goes on while the other is down
            servers.restart(1)
            stream.wait_for(ADDS_AFTER_RESTART, index=1)
        answered = stream.titles()
        items = browser.export(servers[1])
    exported = [item["title"] for item in items]
    assert not set(answered) - set(exported), "an add answered 303 is missing after the crash"
    assert [item["no"] for item in items] == list(range(1, len(items) + 1)), "numbers are not 1..N"
    assert integrity(database) == "ok"


@sqlite_only  # `python todo.py backup` copies the SQLite file (PostgreSQL has pg_dump)
def test_backup_is_a_consistent_copy_taken_while_adds_stream(database, tmp_path):
    """`python todo.py backup FILE` under load: intact, numbered 1..N, holding every add answered before it."""
    copy = tmp_path / "copy.db"
    with running(todo_servers(1), database) as servers:
        browser = Browser()
        browser.register(servers[0])
        with AddStream(browser, list(servers)) as stream:
            stream.wait_for(50)
            answered_before = stream.titles()
            backup = subprocess.run(
                [sys.executable, str(ROOT / "todo.py"), "backup", str(copy)],
                env={**os.environ, "TODO_DATABASE": str(database)},
                capture_output=True,
                text=True,
                timeout=60,
            )
            stream.wait_for(10)  # the site kept serving and writing after the copy
        assert backup.returncode == 0, backup.stderr
    assert integrity(copy) == "ok"
    db = sqlite3.connect(copy)
    rows = db.execute("SELECT no, title FROM items ORDER BY no").fetchall()
    (counter,) = db.execute("SELECT last_item_no FROM lists JOIN users ON users.first_list_id = lists.id").fetchone()
    db.close()
    assert [no for no, _ in rows] == list(range(1, len(rows) + 1)), "numbers in the copy are not 1..N"
    assert not set(answered_before) - {title for _, title in rows}, "an add answered before the backup is missing"
    assert len(rows) < len(stream.titles()), "the copy should not hold the adds made after it"
    # One moment for every table: a copy made table by table would pair an older counter with newer items.
    assert counter == len(rows), "the list's counter and the items are from different moments"
    # Restored, the copy is a working site: the same cookie is signed in, the next add gets the next number.
    with running(todo_servers(1), copy) as restored:
        assert browser.post(restored[0], "/items", title="after the restore").status_code == 303
        assert [item["no"] for item in browser.export(restored[0])][-1] == len(rows) + 1
