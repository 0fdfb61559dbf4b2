"""Count the CPU instructions and the GIL releases of one request, under valgrind's callgrind.

    python bench/count.py              # each page, 50 requests (about 2 minutes)
    python bench/count.py --requests 20 list50 shared50

Needs valgrind (Debian: `apt-get install valgrind`). A timing moves with whatever else the
machine is doing; an instruction count does not, so this is how to tell whether a change made a
request cheaper. The GIL releases are the calls to PyEval_SaveThread: each is a moment where,
under load, another of the server's threads takes over (Python's sqlite3 makes one around every
call into SQLite). It calls the WSGI app in-process, as bench/profile_todo.py does, once with no
requests and once with N, and gives the difference divided by N.
"""

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

# The keys of profile_todo.PAGES, named here so that this process need not import todo; and
# shared50, a member's view of a list another user owns and shares: /lists/<id> with 50 items.
PAGES = ("list50", "dated50", "shared50", "add", "toggle", "list1000")


def shared_request(profile_todo):
    """Share an owner's 50-item list with a member; return a function that loads it once as the member."""
    _, _, owner_id = profile_todo.sign_up("owner")
    member_cookie, _, _ = profile_todo.sign_up("member")
    profile_todo.fill(owner_id, 50)
    db = sqlite3.connect(profile_todo.DATABASE)
    with db:
        list_id = db.execute("SELECT first_list_id FROM users WHERE id = ?", (owner_id,)).fetchone()[0]
        sql = "INSERT INTO members (list_id, user_id) SELECT ?, id FROM users WHERE username = 'member'"
        db.execute(sql, (list_id,))
    db.close()
    page = f"/lists/{list_id}"
    status, _, body = profile_todo.call("GET", page, member_cookie)
    assert status.startswith("200") and body.count(b"Item number") == 50, f"{page}: {status}"
    return lambda: profile_todo.call("GET", page, member_cookie)


def dated_request(profile_todo):
    """Give a user 50 items with due dates (a third overdue, a third repeating); return a function loading the page."""
    request, user_id = profile_todo.page_request("list50")
    db = sqlite3.connect(profile_todo.DATABASE)
    with db:
        sql = """UPDATE items SET due = date('now', (no % 30 - 10) || ' days'),
        repeat = CASE no % 3 WHEN 0 THEN 'weekly' ELSE '' END
        WHERE list_id = (SELECT first_list_id FROM users WHERE id = ?)"""
        db.execute(sql, (user_id,))
    db.close()
    status, _, body = request()
    assert status.startswith("200") and body.count(b"<time datetime=") == 50 and b"overdue" in body, status
    return request


def child(page, requests):
    """Set up a user for the page, then make the requests (this runs under valgrind)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import profile_todo

    if page == "shared50":
        request = shared_request(profile_todo)
    elif page == "dated50":
        request = dated_request(profile_todo)
    else:
        request = profile_todo.page_request(page)[0]
    for _ in range(3):  # warm up: compile the templates
        assert request()[0].startswith(("200", "303"))
    for _ in range(requests):
        request()


def callgrind(page, requests, workdir):
    """Run the child under callgrind; return (instructions, GIL releases) for the whole run."""
    out = workdir / f"{page}-{requests}.callgrind"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        + ["--child", page, "--requests", str(requests)],
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts on every run
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    instructions = int(re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE).group(1))
    # Callgrind names a function once, "fn=(7) PyEval_SaveThread", then writes only "(7)"; each
    # call site is a "cfn=(7)" line followed by "calls=COUNT ...".
    number = re.search(r"^c?fn=\((\d+)\) PyEval_SaveThread\b", text, re.MULTILINE).group(1)
    calls = re.findall(rf"^cfn=\({number}\)[^\n]*\ncalls=(\d+)", text, re.MULTILINE)
    releases = sum(int(count) for count in calls)
    return instructions, releases


def main():
    """Count each page and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pages", nargs="*", metavar="PAGE", help=f"some of {', '.join(PAGES)} (default: all)")
    parser.add_argument("--requests", type=int, default=50, help="requests counted per page (default 50)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.requests)
    unknown = set(args.pages) - set(PAGES)
    if unknown:
        parser.error(f"unknown page {', '.join(sorted(unknown))}: choose from {', '.join(PAGES)}")
    workdir = Path(tempfile.mkdtemp(prefix="todo-count-"))
    print("| request | instructions | GIL releases |\n|---|---:|---:|")
    for page in args.pages or PAGES:
        requests = max(1, args.requests // 10) if page == "list1000" else args.requests
        base_instructions, base_releases = callgrind(page, 0, workdir)
        instructions, releases = callgrind(page, requests, workdir)
        per_request = (instructions - base_instructions) / requests, (releases - base_releases) / requests
        print(f"| {page} | {per_request[0]:,.0f} | {per_request[1]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
