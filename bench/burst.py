"""A burst of 30 sign-ins at once against one `python todo.py` process: the list page's latency and the memory.

    python bench/burst.py                                  # about 20 s: 5 runs
    python bench/burst.py --quick                          # about 5 s: 1 run, to check that it still runs
    python bench/burst.py --todo /tmp/before/todo.py       # another checkout's todo.py (a git worktree)

Needs the dev requirements (requests). It starts `python todo.py` (8 threads, the default) itself
on a free loopback port with a scratch database, registers one user with 50 items, and always
stops the server at the end. Each run first times the user's list page alone (the baseline),
then releases 30 threads together through a barrier, each POSTing /login from its own session
(with its own form token) for an unknown username and a wrong password: every one costs an argon2
hash. While they wait for their answers, the signed-in user requests the list page in a loop and
times each request. Memory comes from /proc/PID/status: VmRSS just before the burst, and VmHWM,
the peak, reset before each burst through /proc/PID/clear_refs. It prints each run, then a
markdown table of the medians over the runs.
"""

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
from run import ROOT, Server, User, fill, machine, started

SIGN_INS = 30  # concurrent POST /login in one burst
ITEMS = 50  # on the signed-in user's list page
TIMEOUT = 60  # seconds any one request may take
WRONG_PASSWORD = "not the password"


def todo_server(todo, workdir):
    """Return `python todo.py` (8 threads) for the given todo.py, on a scratch database."""
    argv = [sys.executable, str(todo), "--quiet", "--port", "{port}"]
    return Server("todo", argv, workdir, env={"TODO_DATABASE": str(workdir / "todo.db")}, ready_path="/healthz")


def memory_field(pid, field):
    """Return one memory figure of the process from /proc/PID/status (VmRSS, VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024


def reset_peak(pid):
    """Reset the process's VmHWM to its VmRSS now; return False if Linux does not let us."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak resident set size
    except OSError:
        return False
    return True


def list_latency(user):
    """Request the user's list page once; return (seconds taken, status)."""
    start = time.perf_counter()
    status = user.http.get(user.server.url + "/", timeout=TIMEOUT).status_code
    return time.perf_counter() - start, status


def baseline(user, seconds):
    """Time the list page, one request after another, for `seconds` with nothing else running."""
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        latencies.append(list_latency(user)[0])
    return latencies


def sign_in_attempt(url, username, barrier, answers):
    """Fetch the sign-in form in a session of its own, wait at the barrier, then POST a wrong password."""
    http = requests.Session()
    try:
        page = http.get(url + "/login", timeout=TIMEOUT)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        form = {"username": username, "password": WRONG_PASSWORD, "csrf_token": token}
    finally:
        barrier.wait()  # even a failed preparation must release the others
    try:
        status = http.post(url + "/login", form, allow_redirects=False, timeout=TIMEOUT).status_code
    except requests.RequestException as error:
        status = type(error).__name__
    answers.append((status, time.perf_counter()))


def burst(user, run_number):
    """Send SIGN_INS sign-ins at once while the user loads the list page; return this run's figures."""
    server, pid = user.server, user.server.process.pid
    time.sleep(0.5)  # let the last run's and the baseline's memory settle
    peak_reset = reset_peak(pid)
    rss_before = memory_field(pid, "VmRSS")
    barrier, answers = threading.Barrier(SIGN_INS + 1), []
    threads = [
        threading.Thread(target=sign_in_attempt, args=(server.url, f"nobody-{run_number}-{n}", barrier, answers))
        for n in range(SIGN_INS)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    start, latencies, list_statuses = time.perf_counter(), [], Counter()
    while True:  # at least one list page, even if the burst were over at once
        seconds, status = list_latency(user)
        latencies.append(seconds)
        list_statuses[status] += 1
        if len(answers) == SIGN_INS or not any(thread.is_alive() for thread in threads):
            break
    for thread in threads:
        thread.join()
    return {
        "list median": statistics.median(latencies),
        "list max": max(latencies),
        "list pages": len(latencies),
        "list statuses": list_statuses,
        "duration": max(at for _, at in answers) - start if answers else float("nan"),
        "statuses": Counter(status for status, _ in answers),
        "rss before": rss_before,
        "peak above": memory_field(pid, "VmHWM") - rss_before,
        "peak reset": peak_reset,
    }


def counts(counter):
    """Write a count per status as `30 × 400`, most frequent first."""
    return ", ".join(f"{n} × {status}" for status, n in counter.most_common())


def table(todo, runs, quiet, loud):
    """Return the markdown table of the medians over the runs, and the lines under it."""
    calm_median = statistics.median(statistics.median(latencies) for latencies in quiet)
    calm_max = statistics.median(max(latencies) for latencies in quiet)

    def median(key):
        """Return the median over the runs of one figure."""
        return statistics.median(result[key] for result in loud)

    answers = {counts(result["statuses"]) for result in loud}
    list_answers = sum((result["list statuses"] for result in loud), Counter())
    rows = [
        ("list page, no burst: median latency", f"{calm_median * 1000:.1f} ms", ""),
        ("list page, no burst: max latency", f"{calm_max * 1000:.1f} ms", ""),
        (
            "list page during the burst: median latency",
            f"{median('list median') * 1000:.0f} ms",
            f"{median('list median') / calm_median:.0f}×",
        ),
        (
            "list page during the burst: max latency",
            f"{median('list max') * 1000:.0f} ms",
            f"{median('list max') / calm_max:.0f}×",
        ),
        ("list pages served during the burst", f"{median('list pages'):g}", ""),
        (f"the burst: {SIGN_INS} sign-ins released together to the last answer", f"{median('duration'):.2f} s", ""),
        (f"answers to the {SIGN_INS} sign-ins", "; ".join(sorted(answers)), ""),
        ("RSS just before the burst", f"{median('rss before'):.1f} MiB", ""),
        ("peak during the burst above it (VmHWM − RSS before)", f"{median('peak above'):.1f} MiB", ""),
    ]
    lines = ["| figure (median of the runs) | value | × no burst |", "|---|---:|---:|"]
    lines += [f"| {label} | {value} | {ratio} |" for label, value, ratio in rows]
    lines += [
        "",
        f"`{todo}`, one `python todo.py` process with 8 threads; {runs} run{'s' if runs > 1 else ''}; "
        f"the list pages answered during the bursts: {counts(list_answers)}.",
        f"Machine: {machine()}.",
    ]
    if not all(result["peak reset"] for result in loud):
        lines.append("The peak could not be reset (/proc/PID/clear_refs): VmHWM is the process's lifetime peak.")
    return "\n".join(lines)


def main():
    """Start the server, measure every run, print the table, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--todo", type=Path, default=ROOT / "todo.py", help="the todo.py to serve (default: this one)")
    parser.add_argument("--runs", type=int, default=5, help="bursts; each figure is their median (default 5)")
    parser.add_argument("--quick", action="store_true", help="one run with a short baseline: checks that it runs")
    args = parser.parse_args()
    todo, runs, calm_seconds = args.todo.resolve(), 1 if args.quick else args.runs, 0.5 if args.quick else 2
    workdir = Path(tempfile.mkdtemp(prefix="todo-burst-"))
    try:
        with started(todo_server(todo, workdir)) as (server,):
            user = User(server, "reader")
            fill(server.env["TODO_DATABASE"], user.id, ITEMS)
            assert user.http.get(server.url + "/", timeout=TIMEOUT).text.count("Item number") == ITEMS
            quiet, loud = [], []
            for number in range(1, runs + 1):
                quiet.append(baseline(user, calm_seconds))
                loud.append(burst(user, number))
                result = loud[-1]
                print(
                    f"run {number} of {runs}: list page {statistics.median(quiet[-1]) * 1000:.1f} ms alone, "
                    f"median {result['list median'] * 1000:.0f} ms and max {result['list max'] * 1000:.0f} ms "
                    f"in the burst ({result['list pages']} pages); burst {result['duration']:.2f} s, "
                    f"{counts(result['statuses'])}; RSS {result['rss before']:.1f} MiB, "
                    f"peak +{result['peak above']:.1f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
        print(table(todo, runs, quiet, loud))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
