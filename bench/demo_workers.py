"""Demo 3 of 3: with several worker processes, a global counter gives duplicates, goes back, and forgets.

    python bench/demo_workers.py                  # 1,000 requests, 100 at a time; about 10 s
    python bench/demo_workers.py --requests 200

It starts bench/seed_global.py (a module-global counter) under `gunicorn -w 4` on a free
loopback port. Every request should get the next number, 1, 2, 3... But each worker process
has a counter of its own. Three loads show it:

- 1,000 requests, 100 at a time: four workers each count from 1, so numbers come back twice or
  more (duplicates) and others are never handed out. Certain unless one worker took them all.
- One client asks 50 times in a row, a new connection each time, while three others keep the
  site busy: its requests land on whichever worker is free, and the count goes back whenever
  that worker has counted less. Very likely, not certain: the demo says what it saw.
- A restart (a deploy): the next number is 1 again. Certain.

Then the same three loads against todo itself, `gunicorn -w 4 todo:app` on a scratch SQLite
database, adding items to one list: numbers 1..N, no duplicates, no gaps, never going back,
and going on after the restart. todo gets this from add_item() and transaction(): the list's
counter and the new item change in one transaction under the database's write lock, whichever
worker runs it. The demo exits 1 if todo gets any of it wrong, never because the naive
counter happened to look right.
"""

import argparse
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

from run import Server, User, counter_value, hammer, started, todo_server

CONCURRENCY = 100
IN_A_ROW = 50  # the one client's requests
OTHERS = 3  # clients keeping the other workers busy meanwhile


@contextmanager
def others_busy(send):
    """Run OTHERS clients that call send() over and over until the block ends; re-raise what failed in them."""
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            send()

    with ThreadPoolExecutor(OTHERS) as pool:
        running = [pool.submit(loop) for _ in range(OTHERS)]
        try:
            yield
        finally:
            stop.set()
        for future in running:
            future.result()


def shown(numbers, count=15):
    """Return the first numbers, comma separated, and an ellipsis if there are more."""
    return ", ".join(map(str, numbers[:count])) + (", ..." if len(numbers) > count else "")


def naive(workdir, total):
    """Drive the global counter with the three loads and say what went wrong."""
    argv = [sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "4", "-b", "127.0.0.1:{port}"]
    server = Server("seed-global", [*argv, "seed_global:app"], workdir)
    print("The naive way: bench/seed_global.py, a module-global counter, under gunicorn -w 4.")
    with started(server):
        numbers = hammer(lambda: counter_value(server.url), total, CONCURRENCY)
        distinct = len(set(numbers))
        missing = len(set(range(1, total + 1)) - set(numbers))
        if distinct < total:
            print(
                f"  {total} requests, {CONCURRENCY} at a time: {distinct} distinct numbers, "
                f"{total - distinct} DUPLICATES, and {missing} of 1..{total} never handed out."
            )
        else:
            print(f"  {total} requests, {CONCURRENCY} at a time: no duplicates this run (one worker took them all).")
        with others_busy(lambda: counter_value(server.url)):
            in_a_row = [counter_value(server.url) for _ in range(IN_A_ROW)]
        back = sum(later < earlier for earlier, later in pairwise(in_a_row))
        row = f"  One client, {IN_A_ROW} requests in a row while {OTHERS} others use the site"
        if back:
            print(f"{row}: the count WENT BACK {back} times: {shown(in_a_row)}")
        else:
            print(f"{row}: it never went back this run (its requests found the workers in count order).")
        server.restart()
        after = counter_value(server.url)
        lost = "the count is LOST" if after <= max(numbers + in_a_row) else "the count went on"
        print(f"  After a restart (a deploy), the next number is {after}: {lost}.")


def todo(workdir, total):
    """Drive todo's add with the same three loads; return what it got wrong (nothing, if all is well)."""
    server = todo_server("todo", workdir, workdir / "todo.db", gunicorn_workers=4)
    print("todo, the same loads: gunicorn -w 4 todo:app on a scratch SQLite database, adding to one list.")
    wrong = []
    with started(server):
        user = User(server, "demo")
        statuses = hammer(user.add, total, CONCURRENCY)
        answered = statuses.count(303)
        numbers = user.numbers()
        refused = f" ({total - answered} refused: {sorted(set(statuses) - {303})})" if answered < total else ""
        if sorted(numbers) == list(range(1, answered + 1)):
            print(
                f"  {total} adds, {CONCURRENCY} at a time: {answered} added{refused}, numbered 1..{answered}, "
                "no duplicates, no gaps."
            )
        else:
            wrong.append(
                f"{answered} adds answered, but the list's numbers are not 1..{answered}: {shown(sorted(numbers))}"
            )
        with others_busy(lambda: user.add("another tab's item")):
            statuses = [user.add(f"in a row {n}") for n in range(IN_A_ROW)]
        items = user.http.get(server.url + "/export.json", timeout=30).json()["items"]
        mine = {item["title"]: item["no"] for item in items}
        in_a_row = [mine.get(f"in a row {n}") for n in range(IN_A_ROW)]
        row = f"  One client, {IN_A_ROW} adds in a row while {OTHERS} others add to the list"
        if statuses == [303] * IN_A_ROW and all(a < b for a, b in pairwise(in_a_row)):
            print(f"{row}: its numbers only went up: {shown(in_a_row)}")
        else:
            wrong.append(f"the client's adds answered {set(statuses)} and got numbers {in_a_row}")
        numbers = [item["no"] for item in items]
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            wrong.append(f"after the adds in a row, the list's {len(numbers)} numbers are not 1..{len(numbers)}")
        server.restart()
        status = user.add("after the restart")
        after = max(user.numbers())
        if status == 303 and after == max(numbers) + 1:
            print(f"  After a restart, the next add is #{after}: the count goes on.")
        else:
            wrong.append(
                f"after a restart the add answered {status} and the last number is {after}, not {max(numbers) + 1}"
            )
    return wrong


def main():
    """Show the naive counter going wrong, then todo getting it right under the same loads."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests sent at once (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="todo-demo-") as workdir:
        naive(Path(workdir), args.requests)
        wrong = todo(Path(workdir), args.requests)
    for failure in wrong:
        print(f"FAIL: todo got it wrong: {failure}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
