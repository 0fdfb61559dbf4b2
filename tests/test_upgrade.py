"""Databases made by every earlier schema's own code (tests/fixtures) come through today's todo.py whole.

Each fixture holds alice (items #1, #2 done, #4: #3 was deleted) and bob (#1); its JSON says what it holds
and each user's next number. Those made with lists (schema 2) also hold alice's Groceries, shared with bob,
under "lists" in the JSON. Four workers start on it at once: the first upgrades it, once, the others find
it done; then every user signs in and finds their items as they were, in their first list, "To do", and
every list they own or share, numbered on from where it was.
"""

import html
import itertools
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import POSTGRES, ROOT, Browser, database_environ, opened, running, sqlite_only, todo_servers

import todo

VERSION = str(todo.SCHEMA_VERSION)  # what every upgrade ends at

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDS = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.glob("*.json"))}
postgres_only = pytest.mark.skipif(
    not POSTGRES, reason="needs PostgreSQL: run under pg_virtualenv with DATABASE_URL=postgresql:///"
)
SQLITE = [name for name, record in RECORDS.items() if record["engine"] == "sqlite"]
EVERY_FIXTURE = [
    pytest.param(name, marks=sqlite_only if record["engine"] == "sqlite" else postgres_only)
    for name, record in RECORDS.items()
]
ITEM = re.compile(r'<li data-no="(\d+)" class="(active|completed)">.*?<span class="title">(.*?)</span>', re.S)
LIST_NAME = re.compile(r'<h1 id="list-heading">(.*?)</h1>')


def load(name, database):
    """Put a copy of the fixture in the test's database (the fixture itself is never opened for writing)."""
    record = RECORDS[name]
    if record["engine"] == "sqlite":
        shutil.copyfile(FIXTURES / record["file"], database)
    else:  # plain SQL from pg_dump; it sets its session's search_path, so it runs on a connection of its own
        with psycopg.connect(database, autocommit=True) as db:
            db.execute((FIXTURES / record["file"]).read_text(encoding="utf-8"))
    return record


def rows_of(path):
    """Return every row of every table of a SQLite file, read without writing to it (nor beside it)."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
        return {table: sorted(db.execute(f'SELECT * FROM "{table}"').fetchall()) for table in tables}


def run_todo(database, *args):
    """Run a `python todo.py` command on this database to its end; return the finished process."""
    env = {**os.environ, **database_environ(database)}
    return subprocess.run(
        [sys.executable, str(ROOT / "todo.py"), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=90
    )


def server_logs(urls):
    """Return what every server of a running() block has written so far, as one text."""
    return "".join(path.read_text() for path in sorted(urls._start.log_dir.glob("server-*.log")))


def kept_copies(database):
    """Return the copies an upgrade keeps beside a SQLite file (none on PostgreSQL)."""
    return sorted(database.parent.glob(f"{database.name}.before-*")) if isinstance(database, Path) else []


def signed_in(url, username):
    """Return a browser signed in as the user, with the fixture's password, through the sign-in form."""
    browser = Browser()
    answer = browser.login(url, username)
    assert answer.status_code == 303, f"{username} cannot sign in: {answer.status_code}"
    return browser


def items_on_page(page):
    """Return the items a list page shows: number, title and done state."""
    return [
        {"no": int(no), "title": html.unescape(title), "done": state == "completed"}
        for no, state, title in ITEM.findall(page)
    ]


def exported(items):
    """Return an export's items without their creation times."""
    return [{key: item[key] for key in ("no", "title", "done")} for item in items]


def lists_of(record, user):
    """Return the fixture's lists (besides the first ones) that the user owns or shares, in their order."""
    username = user["username"]
    return [found for found in record.get("lists", []) if username == found["owner"] or username in found["members"]]


def check_user_finds_everything(browser, url, record, user):
    """The user's first list is "To do" and holds the fixture's items, on `/` and in the export; then their lists."""
    page = browser.http.get(url + "/")
    assert page.status_code == 200
    assert LIST_NAME.search(page.text).group(1) == "To do"
    assert items_on_page(page.text) == user["items"]
    export = browser.http.get(url + "/export.json").json()
    assert exported(export["items"]) == user["items"]
    expected = [("To do", user["username"]), *((found["name"], found["owner"]) for found in lists_of(record, user))]
    assert [(found["name"], found["owner"]) for found in export["lists"]] == expected
    return {found["name"]: found["id"] for found in export["lists"][1:]}  # the fixture's names are distinct


def check_user_finds_their_lists(browser, url, record, user, list_ids):
    """Every other list the user owns or shares opens, named, with its items, on its page and in its export."""
    for found in lists_of(record, user):
        page = browser.http.get(f"{url}/lists/{list_ids[found['name']]}")
        assert page.status_code == 200, page.text
        assert LIST_NAME.search(page.text).group(1) == html.escape(found["name"])
        assert items_on_page(page.text) == found["items"]
        answer = browser.http.get(f"{url}/lists/{list_ids[found['name']]}/export.json").json()
        assert (answer["name"], answer["owner"], exported(answer["items"])) == (
            found["name"],
            found["owner"],
            found["items"],
        )


def check_next_add_continues_the_numbering(browser, url, user):
    """The user's next add gets the fixture's next number (alice's #3 was deleted: never given again)."""
    assert browser.post(url, "/items", title="after the upgrade").status_code == 303
    assert f"Added #{user['next_no']}." in browser.http.get(url + "/").text
    last = exported(browser.export(url))[-1]
    assert last == {"no": user["next_no"], "title": "after the upgrade", "done": False}


def check_every_user_finds_everything_and_numbering_goes_on(urls, record):
    """Each user signs in, finds their items and lists, and adds; then a member of each shared list adds to it.

    Every step goes to the next of the servers. The adds get the fixture's next numbers: the user's first
    list's, and each shared list's own (its counter as the fixture left it), which its owner then sees.
    """
    steps = itertools.count()
    browsers, list_ids = {}, {}

    def url():
        return urls[next(steps) % len(urls)]

    for user in record["users"]:
        browser = browsers[user["username"]] = signed_in(url(), user["username"])
        list_ids.update(check_user_finds_everything(browser, url(), record, user))
        check_user_finds_their_lists(browser, url(), record, user, list_ids)
        check_next_add_continues_the_numbering(browser, url(), user)
    for found in record.get("lists", []):
        member, path, title = browsers[found["members"][0]], f"/lists/{list_ids[found['name']]}", "a member's add"
        answer = member.post(url(), f"{path}/items", title=title)
        assert answer.status_code == 303, answer.text
        assert f"Added #{found['next_no']}." in member.http.get(url() + path).text
        added = {"no": found["next_no"], "title": title, "done": False}
        assert items_on_page(browsers[found["owner"]].http.get(url() + path).text) == [*found["items"], added]


# --- Four workers start on an old database ------------------------------------


@pytest.mark.parametrize("name", EVERY_FIXTURE)
def test_four_workers_upgrade_an_old_database_once_and_every_user_finds_their_items(name, database):
    """Four servers start on it at once: one upgrade (one kept copy, named in the log), then nothing is lost."""
    record = load(name, database)
    with running(todo_servers(4), database) as urls:
        check_every_user_finds_everything_and_numbering_goes_on(urls, record)  # each step on another worker
        Browser().register(urls[3], "newcomer")
        upgrades = re.findall(r"Upgrading .*", server_logs(urls))
    assert len(upgrades) == 1, upgrades
    with opened(database) as db:
        assert db.execute("SELECT value FROM settings WHERE name = 'schema_version'").fetchone()[0] == VERSION
        # The newcomer's account and first list take ids after every one the upgrade kept.
        newcomer = db.execute("SELECT id, first_list_id FROM users WHERE username = 'newcomer'").fetchone()
        assert db.execute("SELECT max(id) FROM users WHERE username <> 'newcomer'").fetchone()[0] < newcomer[0]
        assert db.execute("SELECT max(id) FROM lists WHERE owner_id <> ?", (newcomer[0],)).fetchone()[0] < newcomer[1]
    if record["engine"] == "sqlite":
        (kept,) = kept_copies(database)
        assert kept.name.startswith(f"todo.db.before-v{VERSION}-") and str(kept) in upgrades[0]
        assert not Path(f"{kept}-wal").exists()  # one self-contained file
        with sqlite3.connect(kept) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert rows_of(kept) == rows_of(FIXTURES / record["file"])  # the database exactly as it was


@pytest.mark.parametrize("name", EVERY_FIXTURE)
def test_a_restart_on_the_upgraded_database_upgrades_nothing_again(name, database):
    """The first start upgrades; four servers started again on it upgrade nothing and keep no second copy."""
    record = load(name, database)
    with running(todo_servers(1), database) as urls:
        assert "Upgrading" in server_logs(urls)
    assert len(kept_copies(database)) == (1 if record["engine"] == "sqlite" else 0)
    with running(todo_servers(4), database) as urls:
        for index, user in enumerate(record["users"]):
            browser = signed_in(urls[index], user["username"])
            list_ids = check_user_finds_everything(browser, urls[3 - index], record, user)
            check_user_finds_their_lists(browser, urls[(index + 2) % 4], record, user, list_ids)
        assert "Upgrading" not in server_logs(urls)
    assert len(kept_copies(database)) == (1 if record["engine"] == "sqlite" else 0)


# --- Backup and restore (SQLite's commands) -------------------------------------


def add(browser, url, list_id, title):
    """Add an item to the list through the form; insist it was added."""
    assert browser.post(url, f"/lists/{list_id}/items", title=title).status_code == 303


def list_export(browser, url, list_id):
    """Return (name, owner, items) of one list, as its export gives them."""
    answer = browser.http.get(f"{url}/lists/{list_id}/export.json")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    return found["name"], found["owner"], [(item["no"], item["title"]) for item in found["items"]]


def share_a_list(url):
    """On an upgraded site, alice makes Groceries (#1, #2), shares it with bob, who adds #3; return ids, browsers."""
    alice, bob = signed_in(url, "alice"), signed_in(url, "bob")
    groceries = alice.new_list(url, "Groceries")
    add(alice, url, groceries, "apples")
    add(alice, url, groceries, "pears")
    assert alice.post(url, f"/lists/{groceries}/members", username="bob").status_code == 303
    add(bob, url, groceries, "bob's bread")
    first_list = alice.http.get(url + "/export.json").json()["lists"][0]["id"]
    return alice, bob, groceries, first_list


GROCERIES = [(1, "apples"), (2, "pears"), (3, "bob's bread")]


def fixture_list_names(record, username):
    """Return the names of the fixture's own lists (made before the upgrade) that the user owns or shares."""
    return [found["name"] for found in lists_of(record, {"username": username})]


@sqlite_only  # `python todo.py backup` and `restore` copy SQLite files (PostgreSQL has pg_dump and pg_restore)
@pytest.mark.parametrize("name", SQLITE)
def test_backup_then_restore_of_an_upgraded_site_brings_back_its_lists_members_and_numbering(name, database, tmp_path):
    """What changed after the backup (an add, a member removed, a list made) is undone; numbering resumes."""
    record, saved = load(name, database), tmp_path / "saved.db"
    alice_next = record["users"][0]["next_no"]
    with running(todo_servers(2), database) as urls:
        alice, bob, groceries, _ = share_a_list(urls[0])
        backed_up = run_todo(database, "backup", str(saved))
        assert backed_up.returncode == 0, backed_up.stderr
        add(alice, urls[1], groceries, "after the backup")  # #4, undone by the restore
        assert alice.post(urls[1], f"/lists/{groceries}/members/remove", username="bob").status_code == 303
        assert alice.post(urls[1], "/items", title="after the backup").status_code == 303  # alice's next_no
        alice.new_list(urls[1], "Made after the backup")
        assert bob.http.get(f"{urls[1]}/lists/{groceries}").status_code == 404

        restored = run_todo(database, "restore", str(saved))
        assert restored.returncode == 0, restored.stderr
        assert list_export(bob, urls[1], groceries) == ("Groceries", "alice", GROCERIES)  # bob shares it again
        names = [found["name"] for found in alice.http.get(urls[0] + "/export.json").json()["lists"]]
        assert names == ["To do", *fixture_list_names(record, "alice"), "Groceries"]
        add(bob, urls[0], groceries, "bob's second")  # the list's counter as the backup left it
        assert list_export(alice, urls[1], groceries)[2][-1] == (4, "bob's second")
        assert alice.post(urls[1], "/items", title="after the restore").status_code == 303
        assert exported(alice.export(urls[0]))[-1]["no"] == alice_next


@sqlite_only  # `python todo.py restore` reads a SQLite file
@pytest.mark.parametrize("name", SQLITE)
def test_restore_of_a_backup_made_by_an_older_schema_gives_a_current_site_the_upgraded_data(name, database, tmp_path):
    """A backup from an older todo restored into today's site: every user's items, lists and numbering."""
    record, old_backup = RECORDS[name], tmp_path / "old-backup.db"
    shutil.copyfile(FIXTURES / record["file"], old_backup)
    with running(todo_servers(2), database) as urls:
        newer = Browser()
        newer.register(urls[0], "carol")  # only on today's site: gone after the restore
        restored = run_todo(database, "restore", str(old_backup))
        assert restored.returncode == 0, restored.stderr + restored.stdout
        assert newer.http.get(urls[1] + "/", allow_redirects=False).status_code == 303  # no such account now
        check_every_user_finds_everything_and_numbering_goes_on(urls, record)
    with opened(database) as db:
        assert db.execute("SELECT value FROM settings WHERE name = 'schema_version'").fetchone()[0] == VERSION
    assert old_backup.read_bytes() == (FIXTURES / record["file"]).read_bytes()  # the backup is left as it was
    assert sorted(path.name for path in tmp_path.iterdir() if "before" in path.name) == []


# --- copy-to: a SQLite site moves to PostgreSQL ---------------------------------


@postgres_only
@pytest.mark.parametrize("name", SQLITE)
def test_copy_to_carries_lists_members_numbering_and_ids_to_postgresql(name, database, tmp_path):
    """An upgraded SQLite site with a shared list moves whole: browsers stay in, numbers and ids continue."""
    sqlite_file = tmp_path / "todo.db"
    record = load(name, sqlite_file)
    alice_next = record["users"][0]["next_no"]
    with running(todo_servers(1), sqlite_file) as (url,):
        alice, bob, groceries, first_list = share_a_list(url)
        gone = alice.new_list(url, "Gone")  # the last list id SQLite gave; deleted, and never to be given again
        assert alice.post(url, f"/lists/{gone}/delete").status_code == 303
        on_sqlite = [(found["id"], found["name"]) for found in alice.http.get(url + "/export.json").json()["lists"]]
    names = ["To do", *fixture_list_names(record, "alice"), "Groceries"]
    assert [name for _, name in on_sqlite] == names and on_sqlite[0][0] == first_list and on_sqlite[-1][0] == groceries
    copied = run_todo(sqlite_file, "copy-to", database)
    assert copied.returncode == 0, copied.stderr
    with running(todo_servers(2), database) as urls:
        page = alice.http.get(urls[0] + "/", allow_redirects=False)  # the same key and secrets: still signed in
        assert page.status_code == 200 and LIST_NAME.search(page.text).group(1) == "To do"
        assert exported(alice.export(urls[0]))[: len(record["users"][0]["items"])] == record["users"][0]["items"]
        lists = alice.http.get(urls[1] + "/export.json").json()["lists"]
        assert [(found["id"], found["name"]) for found in lists] == on_sqlite  # the same ids
        assert list_export(bob, urls[1], groceries) == ("Groceries", "alice", GROCERIES)
        add(bob, urls[1], groceries, "bob's second")
        assert list_export(alice, urls[0], groceries)[2][-1] == (4, "bob's second")
        assert alice.post(urls[0], "/items", title="on PostgreSQL").status_code == 303
        assert exported(alice.export(urls[1]))[-1] == {"no": alice_next, "title": "on PostgreSQL", "done": False}
        assert alice.new_list(urls[0], "Made on PostgreSQL") > gone
        Browser().register(urls[1], "newcomer")
    with opened(database) as db:
        newcomer = db.execute("SELECT id, first_list_id FROM users WHERE username = 'newcomer'").fetchone()
        assert db.execute("SELECT max(id) FROM users WHERE username <> 'newcomer'").fetchone()[0] < newcomer[0]
        assert newcomer[1] > gone


@postgres_only
@pytest.mark.parametrize("name", SQLITE)
def test_copy_to_straight_from_a_database_made_by_an_older_schema(name, database, tmp_path):
    """copy-to on a file no server of today has opened: it upgrades it first, and PostgreSQL gets every item."""
    sqlite_file = tmp_path / "todo.db"
    record = load(name, sqlite_file)
    copied = run_todo(sqlite_file, "copy-to", database)
    assert copied.returncode == 0, copied.stderr
    with running(todo_servers(2), database) as urls:
        check_every_user_finds_everything_and_numbering_goes_on(urls, record)
