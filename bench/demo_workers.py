"""Demo 3 of 3: with several worker processes, a global counter gives duplicates, flips, and forgets.

    python bench/demo_workers.py                  # 1,000 requests, 100 at a time
    python bench/demo_workers.py --requests 200

It starts bench/seed_global.py (a module-global counter) under `gunicorn -w 4` on a free
loopback port. Every request should get the next number, 1, 2, 3... But each worker process
has a counter of its own: many clients at once get the same numbers, one client asking again
and again sees the count go back, and a restart starts it from 1. todo avoids this with
add_item() and transaction(): the user's counter and the new item change in one transaction
that holds the database's write lock (BEGIN IMMEDIATE), whichever worker runs it.
"""

import argparse
import sys
import tempfile
from itertools import pairwise
from pathlib import Path

from run import Server, counter_value, hammer, started


def main():
    """Hammer the counter, ask it in a row, restart it, and say what went wrong."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests sent at once (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="todo-demo-") as workdir:
        argv = [sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "4", "-b", "127.0.0.1:{port}"]
        server = Server("seed-global", [*argv, "seed_global:app"], Path(workdir))
        with started(server):
            numbers = hammer(lambda: counter_value(server.url), args.requests, concurrency=100)
            distinct = len(set(numbers))
            missing = len(set(range(1, len(numbers) + 1)) - set(numbers))
            print(
                f"{len(numbers)} requests, 100 at a time: {distinct} distinct numbers, "
                f"{len(numbers) - distinct} DUPLICATES, and {missing} of 1..{len(numbers)} never handed out."
            )
            in_a_row = [counter_value(server.url) for _ in range(12)]
            flips = sum(later < earlier for earlier, later in pairwise(in_a_row))
            print(f"One client, 12 requests in a row: {in_a_row}, the count FLIPPED back {flips} times.")
            server.restart()
            print(f"After a restart (a deploy), the next number is {counter_value(server.url)}: the count is LOST.")


if __name__ == "__main__":
    main()
