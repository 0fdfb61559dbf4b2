"""Demo 1 of 3: data read at import goes stale until the server restarts.

    python bench/demo_stale.py                    # a few seconds

It starts bench/naive_stale.py under waitress on a free loopback port, on a scratch SQLite
database of two items. Then this script, another process, adds a third item, as another worker
or a command would. The server goes on serving two until it is restarted: every run, since it
read the items once, at import.

Then the same load against todo itself: `python todo.py` on a scratch SQLite database, where a
user adds the same two items; then a second `python todo.py` on the same file, another
process as another worker or host would be, adds the third. The first server's next page shows
all three, with no restart. todo gets this from get_db(): each request reads through a
connection with no transaction left open from an earlier one, so it sees what was committed.
The demo exits 1 if todo's page misses the item, never because the naive app happened to
serve it.
"""

import html
import re
import sqlite3
import sys
import tempfile
from pathlib import Path

import requests
from run import Server, User, started, todo_server

TITLES = ("Buy milk", "Write the report")
ANOTHER = "Call the plumber"


def naive(workdir):
    """Serve two items, add a third behind the server's back, and see what it serves."""
    database = workdir / "items.db"
    db = sqlite3.connect(database, isolation_level=None)  # each statement commits by itself
    try:
        db.execute("CREATE TABLE items (no INTEGER PRIMARY KEY, title TEXT)")
        db.executemany("INSERT INTO items (title) VALUES (?)", [(title,) for title in TITLES])
        argv = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "naive_stale:app"]
        server = Server("naive-stale", argv, workdir, env={"NAIVE_DATABASE": str(database)})
        print("The naive way: bench/naive_stale.py reads its items at import; waitress.")
        with started(server):
            print("  The server serves:", requests.get(server.url, timeout=30).json()["items"])
            db.execute("INSERT INTO items (title) VALUES (?)", (ANOTHER,))  # another process writes
            stored = db.execute("SELECT count(*) FROM items").fetchone()[0]
            served = requests.get(server.url, timeout=30).json()["items"]
            print(f"  Another process added an item: the database holds {stored} items.")
            if ANOTHER in served:
                print(f"  The server serves {len(served)}: it saw the item this run.", served)
            else:
                print(f"  STALE: the server still serves {len(served)}, read when it started:", served)
            server.restart()
            served = requests.get(server.url, timeout=30).json()["items"]
            print(f"  Only after a restart does it serve {len(served)}:", served)
    finally:
        db.close()


def page_titles(user, server):
    """Return the titles on the user's list page, as served by this server."""
    page = user.http.get(server.url + "/", timeout=30)
    page.raise_for_status()
    return [html.unescape(title) for title in re.findall(r'<span class="title">(.*?)</span>', page.text)]


def todo(workdir):
    """The same on todo: two items, a third added by another process; return True if the page shows it."""
    database = workdir / "todo.db"
    first, second = todo_server("todo", workdir, database), todo_server("todo-2", workdir, database)
    print("todo, the same load: python todo.py on a scratch SQLite database.")
    with started(first, second):
        user = User(first, "demo")
        for title in TITLES:
            if (status := user.add(title)) != 303:
                raise SystemExit(f"FAIL: todo answered {status} to the add of {title!r}")
        print("  The server serves:", page_titles(user, first))
        form = {"title": ANOTHER, "csrf_token": user.token}  # the same browser, its cookie sent to the other process
        status = user.http.post(second.url + "/items", form, allow_redirects=False, timeout=30).status_code
        if status != 303:
            raise SystemExit(f"FAIL: the second todo answered {status} to the add of {ANOTHER!r}")
        print("  Another process (a second python todo.py on the same file) added an item.")
        served = page_titles(user, first)
        print(f"  The first server's next page shows {len(served)}, with no restart:", served)
    return served == [*TITLES, ANOTHER]


def main():
    """Show the naive app serving stale data, then todo serving what another process added."""
    with tempfile.TemporaryDirectory(prefix="todo-demo-") as workdir:
        naive(Path(workdir))
        right = todo(Path(workdir))
    if not right:
        print(f"FAIL: todo's page does not show the item {ANOTHER!r} another process added", file=sys.stderr)
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())
