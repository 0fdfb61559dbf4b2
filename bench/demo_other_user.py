"""Demo 2 of 3: with a global for "who is asking", one user sees another's data.

    python bench/demo_other_user.py               # 16 users at once, 25 requests each; a few seconds
    python bench/demo_other_user.py --requests 40

It starts bench/naive_user.py under waitress (8 threads, like todo) on a free loopback port.
Sixteen users ask for their lists one at a time, and each gets their own: a test that clicks
through the site passes. Then they ask at once, and many are sent somebody else's list: the
app waits 5 ms for its "query" with the global set, and with sixteen users asking, another
request sets it meanwhile nearly every time.

Then the same loads against todo itself, `python todo.py` on a scratch SQLite database: sixteen
users sign up and add three items each, and every list page any of them is sent, one at a time
or all at once, holds their own three items and nobody else's. todo gets this from
current_user(): who you are is read from the signed cookie of each request, and every query is
scoped by that user's id. The demo exits 1 if todo sends anybody a list not their own, never
because the naive app happened to get it right.
"""

import argparse
import html
import re
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from naive_user import ITEMS, USERS
from run import Server, User, started, todo_server


def at_once(ask, rounds):
    """Every user asks `rounds` times, all sixteen at once; return (user, whose list came back) for each answer."""
    with ThreadPoolExecutor(len(USERS)) as pool:
        answers = pool.map(lambda user: [(user, ask(user)) for _ in range(rounds)], USERS)
        return [answer for answers_of_one_user in answers for answer in answers_of_one_user]


def say(one_at_a_time, answers):
    """Print how many users got their own list one at a time, and how many answers went to another user."""
    right = sum(user == got for user, got in one_at_a_time)
    print(f"  One at a time: {right} of {len(USERS)} users got their own list.")
    wrong = Counter((user, got) for user, got in answers if user != got)
    rounds = len(answers) // len(USERS)
    what = f"{wrong.total()} answers were ANOTHER USER'S list" if wrong else "every one got their own list"
    print(f"  {len(USERS)} users at once, {rounds} requests each ({len(answers)} in all): {what}.")
    for (user, got), count in wrong.most_common(3):
        print(f"    {user} was sent {got}'s list {count} times")
    return wrong.total() + len(USERS) - right


def owner(titles):
    """Return whose items the titles are ("alice's item 1": alice), or what else came back."""
    owners = {title.split("'")[0] for title in titles}
    return owners.pop() if len(owners) == 1 else f"a mixed list {sorted(owners)}"


def naive(workdir, rounds):
    """Ask naive_user.py one at a time, then all at once, and count the lists that went to the wrong user."""
    argv = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "--threads=8", "naive_user:app"]
    server = Server("naive-user", argv, workdir)
    print("The naive way: bench/naive_user.py keeps who is asking in a module global; waitress, 8 threads.")
    with started(server):

        def ask(user):
            return owner(requests.get(server.url, cookies={"user": user}, timeout=30).json()["items"])

        say([(user, ask(user)) for user in USERS], at_once(ask, rounds))


def todo(workdir, rounds):
    """Ask todo the same way, each user signed in with their own cookie; return how many answers were wrong."""
    server = todo_server("todo", workdir, workdir / "todo.db")
    print(f"todo, the same loads: python todo.py (waitress, 8 threads), {len(USERS)} users who each added 3 items.")
    with started(server):
        users = {}
        for name in USERS:
            users[name] = User(server, name)
            for title in ITEMS[name]:
                if (status := users[name].add(title)) != 303:
                    raise SystemExit(f"FAIL: todo answered {status} to {name}'s add of {title!r}")

        def ask(name):
            page = users[name].http.get(server.url + "/", timeout=30)
            titles = [html.unescape(title) for title in re.findall(r'<span class="title">(.*?)</span>', page.text)]
            got = owner(titles) if page.status_code == 200 else f"an answer {page.status_code}"
            return got if got != name or titles == ITEMS[name] else f"a list of {len(titles)} items"

        return say([(name, ask(name)) for name in USERS], at_once(ask, rounds))


def main():
    """Show the naive global sending users each other's lists, then todo under the same loads."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests sent at once, in all (default 400)")
    args = parser.parse_args()
    rounds = max(1, args.requests // len(USERS))
    with tempfile.TemporaryDirectory(prefix="todo-demo-") as workdir:
        naive(Path(workdir), rounds)
        wrong = todo(Path(workdir), rounds)
    if wrong:
        print(f"FAIL: todo sent {wrong} answers to the wrong user, or not their whole list", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
