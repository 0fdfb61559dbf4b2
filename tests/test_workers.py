"""Real processes sharing one database: every worker must agree, whatever serves the request."""

import re
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from conftest import (
    Browser,
    csrf_of,
    forge_cookie,
    fresh_database,
    json_payload,
    opened,
    running,
    todo_servers,
)


@pytest.fixture(scope="module")
def four_workers(tmp_path_factory):
    """Four `python todo.py` processes started together on one new database, no TODO_SECRET_KEY."""
    with fresh_database(tmp_path_factory.mktemp("workers")) as database, running(todo_servers(4), database) as urls:
        yield urls, database


def test_workers_started_together_all_sign_with_the_one_key_kept_in_the_database(four_workers):
    """One key is stored, and a cookie signed with it (by nobody but this test) opens the list on all four."""
    urls, database = four_workers
    Browser().register(urls[0], "bianca")
    with opened(database) as db:
        keys = db.execute("SELECT value FROM settings WHERE name = 'secret_key'").fetchall()
        user_id, secret = db.execute("SELECT id, session_secret FROM users WHERE username = 'bianca'").fetchone()
    assert len(keys) == 1
    session = {"uid": user_id, "secret": secret, "since": int(time.time()), "csrf": "t"}
    cookie = {"todo_session": forge_cookie(keys[0][0], json_payload(session))}
    for url in urls:
        page = requests.get(url + "/", cookies=cookie, allow_redirects=False)
        assert page.status_code == 200 and "bianca" in page.text


def test_cookie_from_one_worker_works_on_all(four_workers):
    urls, _ = four_workers
    browser = Browser()
    browser.register(urls[0], "carol")
    for url in urls:
        page = browser.http.get(url + "/", allow_redirects=False)
        assert page.status_code == 200 and "carol" in page.text


def test_adds_round_robin_are_seen_from_every_worker(four_workers):
    urls, _ = four_workers
    browser = Browser()
    browser.register(urls[1], "dave")
    for index in range(8):
        answer = browser.post(urls[index % 4], "/items", title=f"item {index}")
        assert answer.status_code == 303
    for url in urls:
        assert [item["title"] for item in browser.export(url)] == [f"item {index}" for index in range(8)]
        page = browser.http.get(url + "/").text
        assert "8 items left" in page and "item 7" in page


def test_a_flash_message_shows_on_whichever_worker_serves_the_next_page(four_workers):
    urls, _ = four_workers
    browser = Browser()
    browser.register(urls[0], "erin")
    browser.post(urls[0], "/items", title="first")
    assert "Added #1." in browser.http.get(urls[3] + "/").text


def test_100_concurrent_adds_over_four_workers_get_numbers_1_to_100(four_workers):
    urls, _ = four_workers
    browser = Browser()
    browser.register(urls[2], "frank")
    token = browser.token(urls[2])
    cookies = browser.http.cookies.get_dict()

    def add(index):
        """Send one add to a worker chosen round-robin, with its own connection."""
        answer = requests.post(
            urls[index % 4] + "/items",
            {"title": f"concurrent {index}", "csrf_token": token},
            cookies=cookies,
            allow_redirects=False,
            timeout=60,
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(add, range(100)))
    assert statuses == [303] * 100
    items = browser.export(urls[0])
    assert [item["no"] for item in items] == list(range(1, 101))
    assert sorted(item["title"] for item in items) == sorted(f"concurrent {index}" for index in range(100))


def test_a_change_written_by_another_program_shows_on_the_next_page(four_workers):
    urls, database = four_workers
    browser = Browser()
    browser.register(urls[0], "grace")
    browser.post(urls[0], "/items", title="before")
    for url in urls:  # every worker has read the page once already
        assert "before" in browser.http.get(url + "/").text
    with opened(database) as db:
        db.execute(
            "UPDATE items SET title = 'changed behind its back', done = 1 "
            "WHERE list_id = (SELECT first_list_id FROM users WHERE username = 'grace')"
        )
    for url in urls:
        page = browser.http.get(url + "/").text
        assert "changed behind its back" in page and "0 items left" in page


def test_users_never_see_each_other_across_workers(four_workers):
    urls, _ = four_workers
    henry, iris = Browser(), Browser()
    henry.register(urls[0], "henry")
    iris.register(urls[1], "iris")
    henry.post(urls[2], "/items", title="henry's secret")
    for url in urls:
        assert "henry's secret" not in iris.http.get(url + "/").text
        assert iris.export(url) == []
        assert iris.post(url, "/items/1/toggle").status_code == 404


def exercise(urls):
    """Register, add round-robin, and read back from every URL: the same list everywhere."""
    browser = Browser()
    browser.register(urls[0], "jules")
    for index in range(6):
        assert browser.post(urls[index % len(urls)], "/items", title=f"t{index}").status_code == 303
    for url in urls:
        assert [item["no"] for item in browser.export(url)] == [1, 2, 3, 4, 5, 6]
    return browser


def test_waitress_serve_serves_todo_app(database):
    command = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "todo:app"]
    with running([command, command], database) as urls:
        exercise(urls)


def test_gunicorn_four_workers_serve_todo_app(database):
    command = [sys.executable, "-m", "gunicorn", "-w", "4", "-b", "127.0.0.1:{port}", "todo:app"]
    with running([command], database) as urls:
        browser = exercise(urls * 4)  # one URL, four worker processes behind it
        token = browser.token(urls[0])
        cookies = browser.http.cookies.get_dict()

        def add(index):
            """Send one add over its own connection."""
            return requests.post(
                urls[0] + "/items",
                {"title": f"g{index}", "csrf_token": token},
                cookies=cookies,
                allow_redirects=False,
                timeout=60,
            ).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            assert list(pool.map(add, range(50))) == [303] * 50
        assert [item["no"] for item in browser.export(urls[0])] == list(range(1, 57))


def test_gunicorn_chunked_body_is_read(database):
    """gunicorn hands over a de-chunked body that still says chunked; the app copes, and limits it."""
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "todo:app"]
    with running([command], database) as urls:
        browser = Browser()
        browser.register(urls[0], "kim")
        token = browser.token(urls[0])

        def chunks(body):
            """Yield the body in pieces, so requests sends it chunked."""
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        small = f"csrf_token={token}&title=sent+in+chunks".encode()
        answer = browser.http.post(urls[0] + "/items", data=chunks(small), headers=headers, allow_redirects=False)
        assert answer.status_code == 303
        big = f"csrf_token={token}&title=".encode() + b"x" * (70 * 1024)
        answer = browser.http.post(urls[0] + "/items", data=chunks(big), headers=headers, allow_redirects=False)
        assert answer.status_code == 413
        assert [item["title"] for item in browser.export(urls[0])] == ["sent in chunks"]


def test_todo_py_refuses_big_chunked_body(database):
    with running(todo_servers(1), database) as urls:
        browser = Browser()
        browser.register(urls[0], "lee")
        token = browser.token(urls[0])
        body = f"csrf_token={token}&title=".encode() + b"x" * (70 * 1024)
        answer = browser.http.post(
            urls[0] + "/items",
            data=iter([body[:30000], body[30000:]]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )
        assert answer.status_code == 413
        assert browser.export(urls[0]) == []


def test_login_page_token_works_on_another_worker(four_workers):
    urls, _ = four_workers
    http = requests.Session()
    token = csrf_of(http.get(urls[0] + "/register"))
    answer = http.post(
        urls[3] + "/register",
        {"username": "mia", "password": "long enough pw", "csrf_token": token},
        allow_redirects=False,
    )
    assert answer.status_code == 303


def add_items_in_a_loop(database, list_id, count, start):
    """Worker process: wait until all are ready, then add `count` items to the list as fast as it can."""
    import todo

    db = todo.connect(database)
    start.wait(timeout=60)
    errors = 0
    for index in range(count):
        try:
            todo.add_item(db, list_id, f"item {index}")
        except (sqlite3.Error, psycopg.Error):
            errors += 1
    db.close()
    return errors


def test_add_item_under_four_processes_in_tight_loops(database):
    """The counter itself, without HTTP in the way: 4 processes x 250 adds at full speed, no loss."""
    import multiprocessing

    import todo

    todo.init_db(database)
    db = todo.connect(database)
    user_id, _ = todo.create_user(db, "nina", "long enough pw")
    list_id = db.execute("SELECT first_list_id FROM users WHERE id = ?", (user_id,)).fetchone()[0]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(4)  # all four begin together, not one after another
        with context.Pool(4) as pool:
            results = [pool.apply_async(add_items_in_a_loop, (database, list_id, 250, start)) for _ in range(4)]
            errors = [result.get(timeout=120) for result in results]
    assert errors == [0, 0, 0, 0]
    numbers = [row[0] for row in db.execute("SELECT no FROM items WHERE list_id = ? ORDER BY no", (list_id,))]
    assert numbers == list(range(1, 1001))
    db.close()


def start_together(database, start):
    """Worker process: wait for the others, then prepare the database as every start does."""
    import todo

    start.wait(timeout=60)
    try:
        todo.init_db(database)
        return todo.shared_secret_key(database)
    except (sqlite3.Error, psycopg.Error) as error:
        return f"failed: {error}"


def test_workers_creating_a_new_database_together_all_start(tmp_path):
    """Eight workers creating one new database at the same moment all start, sharing one key (SQLite: in WAL)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(8) as pool:
        for round_ in range(5):
            with fresh_database(tmp_path / f"round-{round_}") as database:
                start = manager.Barrier(8)
                keys = [
                    result.get(timeout=120)
                    for result in [pool.apply_async(start_together, (database, start)) for _ in range(8)]
                ]
                assert len(set(keys)) == 1 and not keys[0].startswith("failed"), keys
                if isinstance(database, Path):  # WAL is SQLite's journal, kept in the file
                    assert sqlite3.connect(database).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process's memory from /proc (Linux)")
def test_a_worker_gives_back_the_memory_of_password_hashes(database):
    """Eight sign-ups at once hash on eight threads (19 MiB each); afterwards the worker is small again."""
    with running(todo_servers(1), database) as servers:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda index: Browser().register(servers[0], f"member{index}"), range(8)))
        status = Path(f"/proc/{servers.processes[0].pid}/status").read_text()
        rss_mib = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024
        assert rss_mib < 100, f"the worker holds {rss_mib:.0f} MiB after eight sign-ups"
