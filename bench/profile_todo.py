"""Profile todo in-process: microseconds per request for each page, then where the time goes.

    python bench/profile_todo.py            # timings only
    python bench/profile_todo.py --profile  # and a pyinstrument profile (pip install -r bench/requirements.txt)

It calls the WSGI app directly, with no server and no network, on a scratch database.
"""

import argparse
import os
import re
import sqlite3
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
DATABASE = Path(tempfile.mkdtemp(prefix="todo-profile-")) / "todo.db"
os.environ["TODO_DATABASE"] = str(DATABASE)
sys.path.insert(0, str(ROOT))

import todo  # noqa: E402


def call(method, path, cookie="", body=b""):
    """Call the WSGI app once; return (status, headers, body)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "wsgi.url_scheme": "http",
        "wsgi.input": BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_COOKIE": cookie,
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        """Keep the status and headers."""
        answer.update(status=status, headers=headers)

    content = b"".join(todo.app(environ, start_response))
    return answer["status"], answer["headers"], content


def sign_up(username):
    """Register a user; return (cookie, csrf token, user id)."""
    _, headers, page = call("GET", "/register")
    cookie = dict(headers)["Set-cookie"].split(";")[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    form = urlencode({"username": username, "password": "profile password", "csrf_token": token}).encode()
    _, headers, _ = call("POST", "/register", cookie, form)
    cookie = dict(headers)["Set-cookie"].split(";")[0]
    _, headers, page = call("GET", "/", cookie)  # clears the welcome message
    cookie = dict(headers).get("Set-cookie", cookie).split(";")[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    db = sqlite3.connect(DATABASE)
    user_id = db.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]
    db.close()
    return cookie, token, user_id


def fill(user_id, count):
    """Give the user's first list `count` items, straight into the database."""
    db = sqlite3.connect(DATABASE, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    list_id = db.execute("SELECT first_list_id FROM users WHERE id = ?", (user_id,)).fetchone()[0]
    db.execute("UPDATE lists SET last_item_no = ? WHERE id = ?", (count, list_id))
    db.executemany(
        "INSERT INTO items (list_id, no, title, created) VALUES (?, ?, ?, ?)",
        ((list_id, no, f"Item number {no}", "2026-01-01T00:00:00+00:00") for no in range(1, count + 1)),
    )
    db.execute("COMMIT")
    db.close()


# The pages measured here and by bench/count.py: their names, and how they are printed.
PAGES = {
    "list50": "GET / (50 items)",
    "add": "POST /items (add)",
    "toggle": "POST /items/1/toggle",
    "list1000": "GET / (1,000 items)",
}


def page_request(page):
    """Sign up a user for one of PAGES; return (a function that requests the page once, the user's id)."""
    cookie, token, user_id = sign_up(page)
    fill(user_id, {"list50": 50, "list1000": 1000, "toggle": 1}.get(page, 0))
    if page == "add":
        form = urlencode({"title": "An item", "csrf_token": token}).encode()
        return (lambda: call("POST", "/items", cookie, form)), user_id
    if page == "toggle":
        form = urlencode({"csrf_token": token}).encode()
        return (lambda: call("POST", "/items/1/toggle", cookie, form)), user_id
    return (lambda: call("GET", "/", cookie)), user_id


def per_request_us(function, repeat, batches=5):
    """Return the mean microseconds of one call, from the fastest of a few batches (the least disturbed)."""
    function()  # warm up: compiles templates, fills caches
    best = float("inf")
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def main():
    """Time each page, and the parts of a request, then optionally profile them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile of each page")
    parser.add_argument("--repeat", type=int, default=200, help="calls per batch (a tenth for 1,000 items)")
    args = parser.parse_args()
    pages = {}
    for page, name in PAGES.items():
        pages[name], user_id = page_request(page)
        if page == "list50":
            id50 = user_id
    for name, page in pages.items():
        status = page()[0]
        assert status.startswith(("200", "303")), f"{name}: {status}"
        repeat = args.repeat // 10 if "1,000" in name else args.repeat
        sent = "Set-cookie" in dict(page()[1])
        print(f"{name:24} {per_request_us(page, repeat):8.0f} us   Set-Cookie sent: {sent}")

    def open_and_query():
        """Open a connection the way a request does, run one query, close it."""
        db = todo.connect(DATABASE)
        db.execute("SELECT id, username, first_list_id FROM users WHERE id = ?", (id50,)).fetchone()
        db.close()

    keep_open = sqlite3.connect(DATABASE)  # another open connection: closing ours is not the last close
    keep_open.execute("SELECT count(*) FROM sqlite_schema").fetchall()  # reads the file: attaches to the WAL
    print(
        f"{'connect+query+close':24} {per_request_us(open_and_query, args.repeat):8.0f} us   (another connection open)"
    )
    keep_open.close()
    print(f"{'connect+query+close':24} {per_request_us(open_and_query, args.repeat):8.0f} us   (the only connection)")
    if args.profile:
        from pyinstrument import Profiler

        for name, page in pages.items():
            profiler = Profiler(interval=0.0001)
            with profiler:
                for _ in range(args.repeat // 10 if "1,000" in name else args.repeat):
                    page()
            print(f"\n===== {name}")
            print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
