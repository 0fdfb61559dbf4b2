"""Bounded work: a long list comes in pages, a list has a size limit, and password hashing has a memory ceiling.

Big lists are written straight into the database (as a long-used list would be), not
through thousands of requests; what is asserted is what a user sees: the items on each
page, the links between pages, the footer's count, the status and where a form leads next.
"""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Browser, csrf_of, fill_items, opened, post, register, running, todo_servers

import todo


def numbers(page):
    """Return the item numbers a list page shows, in the order it shows them."""
    return [int(no) for no in re.findall(r'data-no="(\d+)"', page.text)]


def page_links(page):
    """Return the page's rel="prev" / rel="next" links as {rel: href}."""
    return {rel: href for href, rel in re.findall(r'<a href="([^"]*)" rel="(prev|next)"', page.text)}


def items_left(page):
    """Return the footer's count of items not done, as the page says it."""
    return re.search(r'class="count">(\d+) items? left<', page.text).group(1)


def alert(page):
    """Return the text of the page's error message (the form's reason), or None."""
    found = re.search(r'role="alert">([^<]*)<', page.text)
    return found and found.group(1)


def counter(database, username="alice"):
    """Return the user's first list's item counter: the number the last added item got."""
    with opened(database) as db:
        sql = "SELECT last_item_no FROM lists JOIN users ON users.first_list_id = lists.id WHERE username = ?"
        return db.execute(sql, (username,)).fetchone()[0]


# --- Pages of the list -------------------------------------------------------


def test_1201_items_come_in_three_pages_of_500_in_number_order(alice, database):
    """#1-#500 on /, #501-#1000 on ?page=2, #1001-#1201 on ?page=3: each item once, the footer counting all."""
    fill_items(database, "alice", 1201)
    first, second, third = (alice.get(path) for path in ("/", "/?page=2", "/?page=3"))
    assert numbers(first) == list(range(1, 501)), f"page 1 shows {len(numbers(first))} items"
    assert numbers(second) == list(range(501, 1001)), f"page 2 shows {len(numbers(second))} items"
    assert numbers(third) == list(range(1001, 1202)), f"page 3 shows {len(numbers(third))} items"
    # Each item on exactly one page, and none left out.
    assert numbers(first) + numbers(second) + numbers(third) == list(range(1, 1202))
    assert page_links(first) == {"next": "/?page=2"}  # no way back from the first page
    assert page_links(second) == {"prev": "/?page=1", "next": "/?page=3"}
    assert page_links(third) == {"prev": "/?page=2"}  # the last page: nothing further
    # The footer counts every item not done, not just the page's.
    assert [items_left(page) for page in (first, second, third)] == ["1201"] * 3


def test_a_list_that_fits_one_page_has_no_page_links(alice, database):
    """Exactly 500 items: one page, no next link, and ?page=2 leads back to the first."""
    fill_items(database, "alice", 500)
    page = alice.get("/")
    assert numbers(page) == list(range(1, 501)) and page_links(page) == {}
    assert past_the_end(alice, "/?page=2") == "/"


def test_the_filters_come_in_pages_too(alice, database):
    """With every third item done: /active and /completed page their own items, the footer still counting all."""
    fill_items(database, "alice", 1201)
    with opened(database) as db:
        # Every third item (in integer arithmetic: psycopg reads a % as a placeholder): 400 done, 801 not.
        db.execute("UPDATE items SET done = 1 WHERE no / 3 * 3 = no")
    active = [no for no in range(1, 1202) if no % 3]
    completed = [no for no in range(1, 1202) if not no % 3]
    pages = {path: alice.get(path) for path in ("/active", "/active?page=2", "/completed")}
    assert numbers(pages["/active"]) == active[:500]
    assert numbers(pages["/active?page=2"]) == active[500:]  # the 301 after the first 500
    assert numbers(pages["/completed"]) == completed  # all 400 fit on one page
    assert page_links(pages["/active"]) == {"next": "/active?page=2"}
    assert page_links(pages["/active?page=2"]) == {"prev": "/active?page=1"}
    assert page_links(pages["/completed"]) == {}
    assert {items_left(page) for page in pages.values()} == {"801"}
    # The "All" list still holds every item, done or not, on its own pages.
    assert numbers(alice.get("/?page=3")) == list(range(1001, 1202))
    assert past_the_end(alice, "/active?page=3") == "/active?page=2"
    assert past_the_end(alice, "/completed?page=2") == "/completed"


def past_the_end(app, path):
    """Return where a page past the end of the list sends the browser (a 303 to the last page)."""
    answer = app.get(path, expect_errors=True)
    assert answer.status_int == 303, f"{path} gave {answer.status}"
    return answer.headers["Location"]


@pytest.mark.parametrize("query", ["?page=4", "?page=999999999"])
def test_a_page_past_the_end_leads_to_the_last_page(alice, database, query):
    """Typed, or kept in a tab while items went: the list's last page, not an error."""
    fill_items(database, "alice", 1201)
    assert past_the_end(alice, "/" + query) == "/?page=3"


@pytest.mark.parametrize("query", ["?page=0", "?page=abc", "?page=-1", "?page=1.5", "?page=" + "9" * 30])
def test_a_page_that_cannot_exist_is_404_never_500(alice, database, query):
    """Zero, negative, not a number or absurdly large: 404 (the test app fails on any 5xx)."""
    fill_items(database, "alice", 1201)
    answer = alice.get("/" + query, expect_errors=True)
    assert answer.status_int == 404, f"/{query} gave {answer.status}"


def test_deleting_the_only_item_of_the_last_page_lands_on_the_page_before(alice, database):
    """501 items: deleting #501 from page 2 empties it, and the browser ends on page 1, not on a 404."""
    fill_items(database, "alice", 501)
    answer = post(alice, "/items/501/delete", back="/?page=2")
    assert answer.status_int == 303 and answer.headers["Location"] == "/?page=2"
    assert past_the_end(alice, "/?page=2") == "/"
    assert "Deleted #501." in alice.get("/").text


def test_an_empty_list_has_a_first_page_and_no_second(alice):
    """A new user's list opens (200) with no page links; ?page=2 leads back to it."""
    page = alice.get("/")
    assert page.status_int == 200 and numbers(page) == [] and page_links(page) == {}
    assert past_the_end(alice, "/?page=2") == "/"


def test_an_action_on_page_2_leads_back_to_page_2(alice, database):
    """Toggling, deleting or adding from page 2 of a filter redirects to that very page, which shows the change."""
    fill_items(database, "alice", 1201)
    page = alice.get("/?page=2")
    # The page's own forms carry where they came from: the user does not type it.
    assert 'name="back" value="/?page=2"' in page.text
    answer = post(alice, "/items/700/toggle", back="/?page=2")
    assert answer.status_int == 303 and answer.headers["Location"] == "/?page=2"
    page = alice.get("/?page=2")
    assert 'data-no="700" class="completed"' in page.text and items_left(page) == "1200"
    answer = post(alice, "/items/701/delete", back="/?page=2")
    assert answer.status_int == 303 and answer.headers["Location"] == "/?page=2"
    assert 701 not in numbers(alice.get("/?page=2"))
    answer = post(alice, "/items", title="one more", back="/active?page=2")
    assert answer.status_int == 303 and answer.headers["Location"] == "/active?page=2"


@pytest.mark.parametrize(
    "back",
    ["//evil.example", "https://evil.example/", "/?page=../x", "/admin", "/?page=2//evil.example", "/?page=0"],
)
def test_a_forged_back_value_leads_to_the_list_only(alice, database, back):
    """A back value that is not a list page (and its page) redirects to / and nowhere else."""
    fill_items(database, "alice", 1201)
    answer = post(alice, "/items/700/toggle", back=back)
    assert answer.status_int == 303 and answer.headers["Location"] == "/", f"back={back!r} led to {answer.location}"


# --- The item limit -------------------------------------------------------------


def test_an_add_past_the_limit_is_refused_with_the_reason_and_stores_nothing(make_app, database):
    """TODO_MAX_ITEMS=3: the 4th add is 400 with the form again; the counter stays, so the next item is #4."""
    app = make_app(TODO_MAX_ITEMS="3")
    register(app)
    for title in ("one", "two", "three"):
        assert post(app, "/items", title=title).status_int == 303
    answer = post(app, "/items", title="four")
    assert answer.status_int == 400, f"the 4th add gave {answer.status}"
    reason = alert(answer) or ""
    assert "3 items" in reason and "the most one list may hold" in reason, f"the reason given: {reason!r}"
    assert 'value="four"' in answer.text  # the form again, with the title as typed
    assert numbers(answer) == [1, 2, 3]
    assert counter(database) == 3, "a refused add moved the counter"
    # Deleting one makes room; the new item gets the next number, #4, never a refused one.
    assert post(app, "/items/2/delete").status_int == 303
    assert post(app, "/items", title="four again").status_int == 303
    assert numbers(app.get("/")) == [1, 3, 4]
    assert counter(database) == 4


def test_a_user_at_the_limit_can_still_toggle_and_delete(make_app):
    """A full list is not a locked one: toggling and deleting work, and deleting makes room."""
    app = make_app(TODO_MAX_ITEMS="3")
    register(app)
    for title in ("one", "two", "three"):
        post(app, "/items", title=title)
    assert post(app, "/items", title="four").status_int == 400
    assert post(app, "/items/1/toggle").status_int == 303
    assert 'data-no="1" class="completed"' in app.get("/").text
    assert post(app, "/items/toggle-all").status_int == 303
    assert post(app, "/items/clear-completed").status_int == 303
    assert numbers(app.get("/")) == []
    assert post(app, "/items", title="room again").status_int == 303


def test_an_add_at_the_limit_from_page_2_shows_page_2_with_the_reason(make_app, database):
    """At the limit, the refused add from page 2 answers 400 with page 2's items, not a 404 or page 1."""
    app = make_app(TODO_MAX_ITEMS="600")
    register(app)
    fill_items(database, "alice", 600)
    answer = post(app, "/items", title="six hundred and one", back="/?page=2")
    assert answer.status_int == 400, f"gave {answer.status}"
    assert "600 items" in (alert(answer) or "") and numbers(answer) == list(range(501, 601))
    assert counter(database) == 600


def test_the_default_limit_is_10000_items(app, database):
    """Without TODO_MAX_ITEMS a list holds 10,000 items; the 10,001st is refused."""
    assert todo.read_config({})["max_items"] == 10_000
    register(app)
    fill_items(database, "alice", 10_000)
    answer = post(app, "/items", title="one too many")
    assert answer.status_int == 400 and "10,000 items" in (alert(answer) or ""), answer.status
    assert counter(database) == 10_000


# --- Password hashing is bounded per process -----------------------------------------


def memory_kib(pid, field):
    """Return a /proc/<pid>/status memory field (VmRSS, VmHWM) in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process's memory from /proc (Linux)")
def test_30_sign_ins_at_once_cost_a_bounded_amount_of_memory(database):
    """30 sign-ins and sign-ups at once: the server's peak grows by 80 MiB at most, and every one is answered."""
    with running(todo_servers(1), database) as servers:
        url, pid = servers[0], servers.processes[0].pid
        # Warm-up: one sign-up and one sign-in load argon2, the templates and the database.
        warm = Browser()
        warm.register(url, "warm")
        assert warm.login(url, "warm").status_code == 303
        # Each client gets its form first (which also runs every server thread once), so
        # what is fired together below is only the hashing POSTs.
        browsers = [Browser() for _ in range(30)]
        with ThreadPoolExecutor(max_workers=30) as pool:
            tokens = list(pool.map(lambda browser: csrf_of(browser.http.get(url + "/login")), browsers))
        before = memory_kib(pid, "VmRSS")
        try:  # start the peak afresh (Linux 4.0+), so the warm-up's own hash is not counted
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass  # the peak since start is still an upper bound: the test is only stricter
        start = threading.Barrier(30)

        def attempt(index):
            """Sign in with a wrong password (even index) or sign up (odd), all at the same moment."""
            browser, path = browsers[index], "/login" if index % 2 == 0 else "/register"
            form = {"username": f"crowd{index}", "password": f"wrong password {index}", "csrf_token": tokens[index]}
            start.wait()
            return browser.http.post(url + path, form, allow_redirects=False, timeout=120)

        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(attempt, range(30)))
        peak = memory_kib(pid, "VmHWM")
    grown_mib = (peak - before) / 1024
    statuses = [answer.status_code for answer in answers]
    # 400 (wrong password), 303 (signed up), or 503 with Retry-After when the site sheds load; never 500.
    assert all(status in (400, 303, 503) for status in statuses), statuses
    assert all(answer.headers.get("Retry-After") for answer in answers if answer.status_code == 503), statuses
    assert grown_mib <= 80, (
        f"30 sign-ins at once took the server from {before / 1024:.0f} MiB to a peak of {peak / 1024:.0f} MiB"
        f" (+{grown_mib:.0f} MiB): each argon2 hash holds 19 MiB, so hashes at once must be bounded"
    )
    # The sign-ups that were answered 303 really created their accounts.
    with opened(database) as db:
        created = {row[0] for row in db.execute("SELECT username FROM users WHERE username LIKE ?", ("crowd%",))}
    assert created == {f"crowd{index}" for index, answer in enumerate(answers) if answer.status_code == 303}
