"""Demo 1 of 3: data read at import goes stale until the server restarts.

    python bench/demo_stale.py

It starts bench/naive_stale.py under waitress on a free loopback port, on a scratch SQLite
database of two items. Then this script, another process, adds a third item, as another worker
or a command would. The server goes on serving two until it is restarted. todo avoids this
with get_db(): a connection opened for each request, so every read sees what was committed.
"""

import sqlite3
import sys
import tempfile
from pathlib import Path

import requests
from run import Server, started


def main():
    """Serve two items, add a third behind the server's back, and see what it serves."""
    with tempfile.TemporaryDirectory(prefix="todo-demo-") as workdir:
        database = Path(workdir) / "items.db"
        db = sqlite3.connect(database, isolation_level=None)  # each statement commits by itself
        db.execute("CREATE TABLE items (no INTEGER PRIMARY KEY, title TEXT)")
        db.executemany("INSERT INTO items (title) VALUES (?)", [("Buy milk",), ("Write the report",)])
        argv = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "naive_stale:app"]
        server = Server("naive-stale", argv, Path(workdir), env={"NAIVE_DATABASE": str(database)})
        with started(server):
            print("The server serves:", requests.get(server.url, timeout=10).json()["items"])
            db.execute("INSERT INTO items (title) VALUES ('Call the plumber')")  # another process writes
            stored = db.execute("SELECT count(*) FROM items").fetchone()[0]
            served = requests.get(server.url, timeout=10).json()["items"]
            print(f"Another process added an item: the database holds {stored} items.")
            print(f"STALE: the server still serves {len(served)}, read when it started:", served)
            server.restart()
            served = requests.get(server.url, timeout=10).json()["items"]
            print(f"Only after a restart does it serve {len(served)}:", served)
        db.close()


if __name__ == "__main__":
    main()
