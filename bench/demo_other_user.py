"""Demo 2 of 3: with a global for "who is asking", one user sees another's data.

    python bench/demo_other_user.py               # 400 requests, 16 at a time
    python bench/demo_other_user.py --requests 40

It starts bench/naive_user.py under waitress (8 threads, like todo) on a free loopback port.
Four users ask for their lists one at a time, and each gets their own: a test that clicks
through the site passes. Then they ask at once, and many are sent somebody else's list. todo
avoids this with current_user(): who you are is read from the signed cookie of each request,
and every query is scoped by that user's id.
"""

import argparse
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from naive_user import USERS
from run import Server, started


def owner(url, user):
    """Ask for the user's list; return whose items came back."""
    items = requests.get(url, cookies={"user": user}, timeout=10).json()["items"]
    return items[0].split("'")[0]


def main():
    """Ask one at a time, then all at once, and count the lists that went to the wrong user."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests sent at once (default 400)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="todo-demo-") as workdir:
        argv = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "--threads=8", "naive_user:app"]
        server = Server("naive-user", argv, Path(workdir))
        with started(server):
            right = sum(owner(server.url, user) == user for user in USERS)
            print(f"One at a time: {right} of {len(USERS)} users got their own list.")
            users = [USERS[number % len(USERS)] for number in range(args.requests)]
            with ThreadPoolExecutor(16) as pool:
                owners = list(pool.map(lambda user: owner(server.url, user), users))
    wrong = Counter((user, got) for user, got in zip(users, owners, strict=True) if user != got)
    print(f"{args.requests} requests, 16 at a time: {wrong.total()} got ANOTHER USER'S list.")
    for (user, got), count in wrong.most_common(3):
        print(f"  {user} was sent {got}'s items {count} times")


if __name__ == "__main__":
    main()
