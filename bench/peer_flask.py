"""A by-the-book Flask peer of todo's list page and add, for bench/run.py to measure beside todo.

Written the way Flask's official tutorial (flaskr) writes its blog, in one file: an application
factory, blueprints, Flask's signed-cookie session holding `user_id`, a `sqlite3` connection per
request kept on `g` (get_db, and close_db at teardown), `render_template` with Jinja2 templates
(bench/peer_templates/), `url_for` for every address in a page, `login_required`, and werkzeug's
password hashes. Like the tutorial it has no CSRF protection: its forms carry no token, and it
checks none (todo's do, and it does).

Two departures, both so that the comparison is of speed, not of correctness or durability:

- The add reads max(no) + 1 and inserts inside `BEGIN IMMEDIATE`. The tutorial's pattern (a
  read, then an INSERT, which Python's sqlite3 begins as a deferred transaction) lets two adds
  read the same max: one of them fails on the primary key, or, without one, both get the number.
- `PRAGMA synchronous = NORMAL` on each connection, as todo does in WAL mode: no fsync per commit.

    flask --app peer_flask init-db                     # in bench/, FLASK_DATABASE=... (default peer.db)
    python bench/peer_flask.py --port 8081             # waitress, 8 threads, one process (like todo.py)
    gunicorn -w 4 --chdir bench 'peer_flask:create_app()'

Configuration from the environment, Flask's way (`from_prefixed_env`): FLASK_SECRET_KEY (every
gunicorn worker must have the same) and FLASK_DATABASE.
"""

import argparse
import functools
import logging
import sqlite3
from pathlib import Path

import click
from flask import Blueprint, Flask, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

HERE = Path(__file__).resolve().parent
MAX_TITLE = 500  # characters, after trimming: todo's limit
FILTERS = {"index": (0, 1), "active": (0, 0), "completed": (1, 1)}  # each page's values of `done`

SCHEMA = """
DROP TABLE IF EXISTS items;
DROP TABLE IF EXISTS users;
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT UNIQUE NOT NULL,
    password TEXT NOT NULL
);
CREATE TABLE items (
    user_id INTEGER NOT NULL REFERENCES users (id),
    no INTEGER NOT NULL,
    title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, no)
);
"""


# --- db.py --------------------------------------------------------------------------------------


def get_db():
    """Return this request's connection, opened on first use and kept on `g` until the request ends."""
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
        g.db.row_factory = sqlite3.Row
        g.db.execute("PRAGMA synchronous = NORMAL")  # not the tutorial's: todo's durability in WAL mode
    return g.db


def close_db(e=None):
    """Close the request's connection, if it opened one."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db():
    """Create the tables, empty, in WAL mode (kept in the file)."""
    db = get_db()
    db.executescript(SCHEMA)
    db.execute("PRAGMA journal_mode = WAL")


@click.command("init-db")
def init_db_command():
    """Clear the existing data and create new tables."""
    init_db()
    click.echo("Initialized the database.")


# --- auth.py ------------------------------------------------------------------------------------

auth = Blueprint("auth", __name__, url_prefix="/auth")


@auth.route("/register", methods=("GET", "POST"))
def register():
    """Register a user: a username and a password."""
    if request.method == "POST":
        username, password = request.form["username"], request.form["password"]
        db = get_db()
        error = None
        if not username:
            error = "Username is required."
        elif not password:
            error = "Password is required."
        if error is None:
            try:
                db.execute(
                    "INSERT INTO users (username, password) VALUES (?, ?)", (username, generate_password_hash(password))
                )
                db.commit()
            except db.IntegrityError:
                error = f"User {username} is already registered."
            else:
                return redirect(url_for("auth.login"))
        flash(error)
    return render_template("auth/register.html")


@auth.route("/login", methods=("GET", "POST"))
def login():
    """Sign a user in: their id in the session."""
    if request.method == "POST":
        username, password = request.form["username"], request.form["password"]
        user = get_db().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        if user is None or not check_password_hash(user["password"], password):
            flash("Incorrect username or password.")
        else:
            session.clear()
            session["user_id"] = user["id"]
            return redirect(url_for("items.index"))
    return render_template("auth/login.html")


@auth.before_app_request
def load_logged_in_user():
    """Put the signed-in user, read from the database, on `g` (None if nobody is signed in)."""
    user_id = session.get("user_id")
    g.user = None if user_id is None else get_db().execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()


@auth.route("/logout", methods=("POST",))
def logout():
    """Sign out."""
    session.clear()
    return redirect(url_for("items.index"))


def login_required(view):
    """Send whoever is not signed in to the sign-in page."""

    @functools.wraps(view)
    def wrapped_view(**kwargs):
        if g.user is None:
            return redirect(url_for("auth.login"))
        return view(**kwargs)

    return wrapped_view


# --- items.py -----------------------------------------------------------------------------------

items = Blueprint("items", __name__)


def show_list(page, status=200, title=""):
    """Render the signed-in user's items that the page shows; the footer counts all of them."""
    db = get_db()
    rows = db.execute(
        "SELECT no, title, done FROM items WHERE user_id = ? AND done IN (?, ?) ORDER BY no",
        (g.user["id"], *FILTERS[page]),
    ).fetchall()
    total, left = db.execute(
        "SELECT count(*), coalesce(sum(done = 0), 0) FROM items WHERE user_id = ?", (g.user["id"],)
    ).fetchone()
    return render_template("index.html", items=rows, total=total, left=left, page=page, title=title), status


@items.route("/")
@login_required
def index():
    """All the items."""
    return show_list("index")


@items.route("/active")
@login_required
def active():
    """The items not done."""
    return show_list("active")


@items.route("/completed")
@login_required
def completed():
    """The items done."""
    return show_list("completed")


def check_title(title):
    """Return why a (trimmed) title cannot be used, or None."""
    if not title:
        return "An item needs a title."
    if len(title) > MAX_TITLE:
        return f"A title has at most {MAX_TITLE} characters (this one has {len(title)})."
    return None


@items.route("/items", methods=("POST",))
@login_required
def add():
    """Add an item with the user's next number; the list again, with the reason, if the title will not do."""
    title = request.form["title"].strip()
    error = check_title(title)
    if error is not None:
        flash(error)
        return show_list("index", 400, title[: MAX_TITLE * 2])
    db = get_db()
    # The write lock first, then the read: two adds at once take turns, each reading the other's number.
    db.execute("BEGIN IMMEDIATE")
    no = db.execute("SELECT coalesce(max(no), 0) + 1 FROM items WHERE user_id = ?", (g.user["id"],)).fetchone()[0]
    db.execute("INSERT INTO items (user_id, no, title) VALUES (?, ?, ?)", (g.user["id"], no, title))
    db.commit()
    return redirect(url_for("items.index"))


def get_item(no):
    """Return the signed-in user's item, or 404."""
    item = get_db().execute("SELECT * FROM items WHERE user_id = ? AND no = ?", (g.user["id"], no)).fetchone()
    if item is None:
        abort(404, f"Item #{no} doesn't exist.")
    return item


@items.route("/items/<int:no>/toggle", methods=("POST",))
@login_required
def toggle(no):
    """Mark an item done, or not done."""
    get_item(no)
    db = get_db()
    db.execute("UPDATE items SET done = 1 - done WHERE user_id = ? AND no = ?", (g.user["id"], no))
    db.commit()
    return redirect(url_for("items.index"))


@items.route("/items/<int:no>/edit", methods=("GET", "POST"))
@login_required
def edit(no):
    """Change an item's title."""
    item = get_item(no)
    if request.method == "POST":
        title = request.form["title"].strip()
        error = check_title(title)
        if error is not None:
            flash(error)
        else:
            db = get_db()
            db.execute("UPDATE items SET title = ? WHERE user_id = ? AND no = ?", (title, g.user["id"], no))
            db.commit()
            return redirect(url_for("items.index"))
    return render_template("edit.html", item=item)


@items.route("/items/<int:no>/delete", methods=("POST",))
@login_required
def delete(no):
    """Delete an item."""
    get_item(no)
    db = get_db()
    db.execute("DELETE FROM items WHERE user_id = ? AND no = ?", (g.user["id"], no))
    db.commit()
    return redirect(url_for("items.index"))


@items.route("/items/toggle-all", methods=("POST",))
@login_required
def toggle_all():
    """Mark every item done, or, if they all are, none."""
    db = get_db()
    db.execute(
        "UPDATE items SET done = (SELECT count(*) FROM items WHERE user_id = ? AND done = 0) > 0 WHERE user_id = ?",
        (g.user["id"], g.user["id"]),
    )
    db.commit()
    return redirect(url_for("items.index"))


@items.route("/items/clear-completed", methods=("POST",))
@login_required
def clear_completed():
    """Delete the items done."""
    db = get_db()
    db.execute("DELETE FROM items WHERE user_id = ? AND done = 1", (g.user["id"],))
    db.commit()
    return redirect(url_for("items.index"))


# --- __init__.py --------------------------------------------------------------------------------


def create_app(test_config=None):
    """Create and configure the app."""
    app = Flask(__name__, static_folder=str(HERE.parent / "static"), template_folder=str(HERE / "peer_templates"))
    app.config.from_mapping(SECRET_KEY="dev", DATABASE=str(HERE / "peer.db"))
    if test_config is None:
        app.config.from_prefixed_env()  # FLASK_SECRET_KEY, FLASK_DATABASE
    else:
        app.config.from_mapping(test_config)
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    app.register_blueprint(auth)
    app.register_blueprint(items)
    return app


def main():
    """Serve the app with waitress, 8 threads in one process, like `python todo.py`."""
    import waitress

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # as todo: no line per queued request
    waitress.serve(create_app(), host="127.0.0.1", port=args.port, threads=args.threads)


if __name__ == "__main__":
    main()
