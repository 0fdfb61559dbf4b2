"""Shared lists on real processes: every worker reads who shares a list, and its counter, from the database."""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest
import requests
from conftest import (
    POSTGRES,
    Browser,
    csrf_of,
    fresh_database,
    login,
    opened,
    post,
    register,
    running,
    todo_servers,
)

import todo

postgres_only = pytest.mark.skipif(not POSTGRES, reason="SQLite has one writer by design")


@pytest.fixture(scope="module")
def four_workers(tmp_path_factory):
    """Four `python todo.py` processes started together on one new database."""
    with fresh_database(tmp_path_factory.mktemp("lists")) as database, running(todo_servers(4), database) as urls:
        yield urls, database


def list_items(browser, url, list_id):
    """Return the list's items as its export gives them."""
    answer = browser.http.get(f"{url}/lists/{list_id}/export.json")
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_two_members_adding_at_once_on_four_workers_get_numbers_1_to_100(four_workers):
    """Alice and Bob add 50 items each to one shared list, all at once over four workers: exactly #1 to #100."""
    urls, _ = four_workers
    alice, bob = Browser(), Browser()
    alice.register(urls[0], "alice1")
    bob.register(urls[1], "bob1")
    list_id = alice.new_list(urls[0], "Shopping")
    alice.share(urls[0], list_id, "bob1")
    senders = [(browser, browser.token(urls[0]), dict(browser.http.cookies)) for browser in (alice, bob)]
    start = threading.Barrier(20)

    def add(index):
        """Send one add as alice (even) or bob (odd) to a worker chosen round-robin, on its own connection."""
        _, token, cookies = senders[index % 2]
        if index < 20:
            start.wait(timeout=30)  # the first twenty leave together
        return requests.post(
            f"{urls[index % 4]}/lists/{list_id}/items",
            {"title": f"added by {'alice' if index % 2 == 0 else 'bob'} {index}", "csrf_token": token},
            cookies=cookies,
            allow_redirects=False,
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(add, range(100)))
    assert Counter(statuses) == {303: 100}
    for browser, url in ((alice, urls[2]), (bob, urls[3])):  # both members, on two more workers, read the same
        items = list_items(browser, url, list_id)
        assert [item["no"] for item in items] == list(range(1, 101))
        assert sorted(item["title"] for item in items) == sorted(
            f"added by {'alice' if index % 2 == 0 else 'bob'} {index}" for index in range(100)
        )


def shared_and_open(url_a, url_b, suffix, name, title):
    """Alice makes a list with one item on worker A and shares it with Bob, who has it open on worker B.

    Return (alice, bob, the list's id, the form token on Bob's screen, loaded from worker B).
    """
    alice, bob = Browser(), Browser()
    alice.register(url_a, f"alice{suffix}")
    bob.register(url_b, f"bob{suffix}")
    list_id = alice.new_list(url_a, name)
    assert alice.post(url_a, f"/lists/{list_id}/items", title=title).status_code == 303
    alice.share(url_a, list_id, f"bob{suffix}")
    page = bob.http.get(f"{url_b}/lists/{list_id}")
    assert page.status_code == 200 and todo.escape_html(title) in page.text
    return alice, bob, list_id, bob.token(url_b)


def test_a_member_removed_on_one_worker_is_out_at_his_next_request_on_another(four_workers):
    """Bob has the list open on worker B; Alice removes him through worker A; B refuses him at once, adds included."""
    (url_a, url_b, *_), database = four_workers
    alice, bob, list_id, token = shared_and_open(url_a, url_b, "2", "Plans", "alice's plan")

    answer = alice.post(url_a, f"/lists/{list_id}/members/remove", username="bob2")
    assert answer.status_code == 303

    assert bob.http.get(f"{url_b}/lists/{list_id}").status_code == 404
    refused = bob.http.post(
        f"{url_b}/lists/{list_id}/items", {"title": "bob's late add", "csrf_token": token}, allow_redirects=False
    )
    assert refused.status_code == 404
    assert "Plans" not in bob.http.get(f"{url_b}/lists").text
    assert [item["title"] for item in list_items(alice, url_b, list_id)] == ["alice's plan"]
    with opened(database) as db:
        assert db.execute("SELECT last_item_no FROM lists WHERE id = ?", (list_id,)).fetchone()[0] == 1


def test_a_list_deleted_on_one_worker_is_gone_at_a_members_next_request_on_another(four_workers):
    """Bob has the list open on worker B; Alice deletes it through worker A; B answers 404 and stores nothing."""
    (url_a, url_b, *_), database = four_workers
    alice, bob, list_id, token = shared_and_open(url_a, url_b, "3", "Party", "balloons")

    answer = alice.post(url_a, f"/lists/{list_id}/delete")
    assert answer.status_code == 303 and answer.headers["Location"] == "/lists"

    assert bob.http.get(f"{url_b}/lists/{list_id}").status_code == 404
    refused = bob.http.post(
        f"{url_b}/lists/{list_id}/items", {"title": "cake", "csrf_token": token}, allow_redirects=False
    )
    assert refused.status_code == 404
    assert "Party" not in bob.http.get(f"{url_b}/lists").text
    with opened(database) as db:
        assert db.execute("SELECT count(*) FROM lists WHERE id = ?", (list_id,)).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM items WHERE list_id = ?", (list_id,)).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM members WHERE list_id = ?", (list_id,)).fetchone()[0] == 0


# --- PostgreSQL: a write locks only what it depends on --------------------------


@contextmanager
def held(database, what, key):
    """Hold a write open on a connection of its own, begun as the app's are, that has locked what the app locks."""
    holder = todo.connect(database)
    try:
        holder.execute(holder.begin_write)  # whatever every write of the app takes first
        holder.lock(what, key)  # the list's row, or the username's advisory lock
        yield holder.connection.info.backend_pid
    finally:
        holder.rollback()
        holder.close()


def wait_until_blocked_by(database, pid, timeout=1.5):
    """Wait until some session of the database waits for a lock that session `pid` holds; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database, autocommit=True) as watcher:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY (pg_blocking_pids(pid))"
        while not watcher.execute(sql, (pid,)).fetchone()[0]:
            if time.monotonic() > deadline:
                pytest.fail(f"after {timeout} s, still nothing waits for the lock the holder holds")
            time.sleep(0.01)  # polled: a readiness check, not a guess


def timed(action):
    """Run the action; return its result and the seconds it took."""
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


@postgres_only
def test_a_held_write_on_one_list_does_not_hold_up_an_add_to_another(make_app, database):
    """List A's row locked by another session: an add to list B answers at once; an add to A waits for the lock."""
    app = make_app()
    register(app, "alice")
    list_a = int(post(app, "/lists", name="A").headers["Location"].rsplit("/", 1)[1])
    list_b = int(post(app, "/lists", name="B").headers["Location"].rsplit("/", 1)[1])
    token = csrf_of(app.get("/"))

    def add(list_id, title):
        """Add an item to the list through the app."""
        return app.post(f"/lists/{list_id}/items", {"title": title, "csrf_token": token})

    with ThreadPoolExecutor(max_workers=1) as pool:
        with held(database, "list", list_a) as holder:
            answer, seconds = timed(lambda: add(list_b, "to B"))
            assert answer.status_int == 303 and seconds < 1, f"an add to list B took {seconds:.2f} s"
            waiting = pool.submit(add, list_a, "to A")  # the control: an add to A itself waits for the holder
            wait_until_blocked_by(database, holder)
            assert not waiting.done()
        assert waiting.result(timeout=10).status_int == 303  # the holder rolled back: the add goes through
    with opened(database) as db:
        rows = db.execute("SELECT list_id, no, title FROM items ORDER BY list_id").fetchall()
    assert [tuple(row) for row in rows] == [(list_a, 1, "to A"), (list_b, 1, "to B")]


@postgres_only
def test_a_held_sign_in_throttle_for_one_name_does_not_hold_up_another_names_sign_in(make_app, database):
    """The throttle's lock on "alice" held by another session: bob signs in at once; alice's sign-in waits for it."""
    register(make_app(), "alice")
    register(make_app(), "bob")
    with ThreadPoolExecutor(max_workers=1) as pool:
        bob, alice = make_app(), make_app()  # browsers without a device cookie: their failures count by name
        with held(database, "name", "alice") as holder:
            answer, seconds = timed(lambda: login(bob, "bob"))
            assert answer.status_int == 303 and seconds < 1, f"bob's sign-in took {seconds:.2f} s"
            waiting = pool.submit(login, alice, "Alice")  # the control: counted under the lowercased name
            wait_until_blocked_by(database, holder)
            assert not waiting.done()
        assert waiting.result(timeout=10).status_int == 303
    assert alice.get("/").status_int == 200 and bob.get("/").status_int == 200
