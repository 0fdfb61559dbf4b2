"""A naive app that reads its data once, at import, and serves that copy until it restarts.

    NAIVE_DATABASE=items.db waitress-serve naive_stale:app

Whatever another process (another worker, a command, a backup restore) writes to the
database afterwards, this server goes on answering with what it read when it started.
bench/demo_stale.py shows it.
"""

import os
import sqlite3

import bottle

# The mistake: the items are read here, when the server imports this module, and kept in a global.
_db = sqlite3.connect(os.environ["NAIVE_DATABASE"])
ITEMS = [title for (title,) in _db.execute("SELECT title FROM items ORDER BY no")]
_db.close()

app = bottle.Bottle()


@app.get("/")
def list_page():
    """Answer the items, as read at import."""
    return {"items": ITEMS}
