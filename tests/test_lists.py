"""In-process tests of SPEC's "Lists, and lists shared" and its refusals, and of the device cookie, on either engine."""

import hashlib
import hmac
import html
import re
import time
from datetime import datetime

import pytest
from conftest import PASSWORD, copy_session, login, new_list, opened, post, register

import todo

MISSING = 999_999  # a list id no test makes: "a list that does not exist"
DEVICE_VALUE = re.compile(r"[A-Za-z0-9_-]{22}\.[0-9a-f]{64}")  # nonce.hex-signature, nothing else


# --- Helpers --------------------------------------------------------------------------


def alert(page):
    """Return the text of the page's first alert (an error's reason), unescaped."""
    return html.unescape(re.search(r'role="alert">([^<]*)<', page.text).group(1))


def shown_items(page):
    """Return (no, class, title) for each item a list page shows, in order."""
    pattern = r'<li data-no="(\d+)" class="(\w+)">.*?<span class="title">([^<]*)</span>'
    return [(int(no), kind, html.unescape(title)) for no, kind, title in re.findall(pattern, page.text, re.S)]


def shown_numbers(page):
    """Return the item numbers a list page shows, in order."""
    return [no for no, _, _ in shown_items(page)]


def index_entries(page):
    """Return (href, name, the rest of the entry's text) for each list in the /lists index, in order."""
    index = re.search(r'<ul class="lists-index">(.*?)</ul>', page.text, re.S).group(1)
    entries = []
    for entry in re.findall(r"<li[^>]*>(.*?)</li>", index, re.S):
        href, name = re.search(r'<a href="([^"]+)">([^<]*)</a>', entry).groups()
        rest = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", entry.split("</a>", 1)[1]).split()))
        entries.append((href, html.unescape(name), rest))
    return entries


def list_names(app):
    """Return the names of the lists the browser's user sees in the /lists index."""
    return [name for _, name, _ in index_entries(app.get("/lists"))]


def textarea(page):
    """Return what the page's textarea holds, unescaped."""
    return html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page.text, re.S).group(1))


def add(app, base, *titles):
    """Add items one by one to the list at base ("" for the first list, else /lists/<id>)."""
    for title in titles:
        assert post(app, f"{base}/items", title=title).status_int == 303


def rows(database, sql, *args):
    """Return every row a query gives, as tuples, read straight from the database."""
    with opened(database) as db:
        return [tuple(row) for row in db.execute(sql, args).fetchall()]


def items_of(database, list_id):
    """Return (no, title, done) of a list's items straight from the database."""
    return rows(database, "SELECT no, title, done FROM items WHERE list_id = ? ORDER BY no", list_id)


def user_id(database, username):
    """Return an account's id."""
    return rows(database, "SELECT id FROM users WHERE username = ?", username)[0][0]


def first_list(database, username="alice"):
    """Return the id of the account's first list."""
    return rows(database, "SELECT first_list_id FROM users WHERE username = ?", username)[0][0]


def counter(database, list_id):
    """Return the list's counter: the last number it gave."""
    return rows(database, "SELECT last_item_no FROM lists WHERE id = ?", list_id)[0][0]


def members_of(database, list_id):
    """Return the usernames that share the list, sorted."""
    sql = "SELECT username FROM members JOIN users ON users.id = user_id WHERE list_id = ? ORDER BY username"
    return [row[0] for row in rows(database, sql, list_id)]


def state(database):
    """Return every list, membership and item: what "nothing changed" compares."""
    return (
        rows(database, "SELECT id, owner_id, name, last_item_no FROM lists ORDER BY id"),
        rows(database, "SELECT list_id, user_id FROM members ORDER BY list_id, user_id"),
        rows(database, "SELECT list_id, no, title, done, created FROM items ORDER BY list_id, no"),
    )


def fill_list(database, list_id, count):
    """Give the list items #1 to #count straight in the database, as a long-used list has."""
    with opened(database) as db:
        db.execute("UPDATE lists SET last_item_no = ? WHERE id = ?", (count, list_id))
        db.executemany(
            "INSERT INTO items (list_id, no, title, created) VALUES (?, ?, ?, '2026-01-01T00:00:00+00:00')",
            [(list_id, no, f"item {no}") for no in range(1, count + 1)],
        )


def fail_logins(database, key, times=10):
    """Record `times` failed sign-ins for a throttling key (a username) straight in the database, just now."""
    with opened(database) as db:
        db.executemany("INSERT INTO login_failures (username, at) VALUES (?, ?)", [(key, time.time())] * times)


@pytest.fixture
def bob(make_app):
    """Return a second browser, signed in as a new user, bob."""
    browser = make_app()
    register(browser, "bob")
    return browser


@pytest.fixture
def carol(make_app):
    """Return a third browser, signed in as a new user, carol: a stranger to the others' lists."""
    browser = make_app()
    register(browser, "carol")
    return browser


@pytest.fixture
def groceries(alice, bob):
    """Return the id of alice's list "Groceries", shared with bob, holding #1 milk (alice's) and #2 eggs (bob's)."""
    list_id = new_list(alice, "Groceries")
    assert post(alice, f"/lists/{list_id}/members", username="bob").status_int == 303
    add(alice, f"/lists/{list_id}", "milk")
    add(bob, f"/lists/{list_id}", "eggs")
    return list_id


# --- The first list ------------------------------------------------------------------------


def test_a_new_account_has_exactly_one_list_named_to_do(alice, database):
    """Registering makes the first list, "To do", owned by the account: and no other."""
    uid = user_id(database, "alice")
    assert rows(database, "SELECT id, name FROM lists WHERE owner_id = ?", uid) == [(first_list(database), "To do")]
    first = first_list(database)
    assert index_entries(alice.get("/lists")) == [(f"/lists/{first}", "To do", "yours, your first · 0 items left")]
    assert ">To do</h1>" in alice.get("/").text


def test_the_front_page_and_items_routes_mean_the_first_list(alice, database):
    """/ and /lists/<first id> show the same items; /items adds land in the first list, numbered with it."""
    first = first_list(database)
    add(alice, "", "a", "b")
    add(alice, f"/lists/{first}", "c")  # the same list by its id: the numbering goes on
    assert post(alice, f"/lists/{first}/items/2/toggle").status_int == 303
    assert items_of(database, first) == [(1, "a", 0), (2, "b", 1), (3, "c", 0)]
    for suffix in ("", "/active", "/completed"):
        assert shown_items(alice.get(suffix or "/")) == shown_items(alice.get(f"/lists/{first}{suffix}"))
    assert shown_items(alice.get("/")) == [(1, "active", "a"), (2, "completed", "b"), (3, "active", "c")]
    assert post(alice, "/items/3/delete").status_int == 303
    assert shown_numbers(alice.get(f"/lists/{first}")) == [1, 2]


def test_the_first_list_can_be_renamed_and_shared_but_not_deleted(alice, bob, database):
    """Rename and share work on the first list; deleting it is a 400 with the reason, and it stays."""
    first = first_list(database)
    add(alice, "", "keep me")
    answer = post(alice, f"/lists/{first}/rename", name="  Home  ")
    assert answer.status_int == 303 and answer.headers["Location"] == f"/lists/{first}"
    assert rows(database, "SELECT name FROM lists WHERE id = ?", first) == [("Home",)]
    assert ">Home</h1>" in alice.get("/").text
    assert post(alice, f"/lists/{first}/members", username="bob").status_int == 303
    assert (f"/lists/{first}", "Home") in [entry[:2] for entry in index_entries(bob.get("/lists"))]
    assert f'action="/lists/{first}/delete"' not in alice.get("/").text  # not even offered
    refused = post(alice, f"/lists/{first}/delete")
    assert refused.status_int == 400 and alert(refused) == "Your first list cannot be deleted; rename it instead."
    assert rows(database, "SELECT name FROM lists WHERE id = ?", first) == [("Home",)]
    assert items_of(database, first) == [(1, "keep me", 0)]


# --- Making lists, the index, names ------------------------------------------------------------


def test_post_lists_makes_a_list_owned_by_the_user_and_shows_it(alice, database):
    """303 to /lists/<id>; the list is the user's, named as typed (trimmed), empty, with the page naming it."""
    answer = post(alice, "/lists", name="  Work things  ")
    assert answer.status_int == 303
    list_id = int(re.fullmatch(r"/lists/(\d+)", answer.headers["Location"]).group(1))
    uid = user_id(database, "alice")
    assert rows(database, "SELECT owner_id, name, last_item_no FROM lists WHERE id = ?", list_id) == [
        (uid, "Work things", 0)
    ]
    page = alice.get(f"/lists/{list_id}")
    assert ">Work things</h1>" in page.text and shown_numbers(page) == []
    assert new_list(alice, "Another") not in (list_id, first_list(database))


def test_numbers_start_at_1_in_each_list_and_are_independent(alice, database):
    """Each list counts from 1; adds to one list never move another's numbers."""
    first = first_list(database)
    add(alice, "", "first a", "first b")
    work = new_list(alice, "Work")
    add(alice, f"/lists/{work}", "work a")
    add(alice, "", "first c")
    add(alice, f"/lists/{work}", "work b")
    assert items_of(database, first) == [(1, "first a", 0), (2, "first b", 0), (3, "first c", 0)]
    assert items_of(database, work) == [(1, "work a", 0), (2, "work b", 0)]
    assert shown_numbers(alice.get(f"/lists/{work}")) == [1, 2]


def test_lists_index_shows_every_list_first_list_first(app, make_app, database):
    """/lists: the first list first (even before a smaller id), names, owner, items left, links, the form."""
    bob = make_app()
    register(bob, "bob")  # bob's lists get smaller ids than any of alice's
    shop = new_list(bob, "Shop")
    add(bob, f"/lists/{shop}", "bread", "jam", "tea")
    register(app, "alice")
    alice, first = app, first_list(database)
    add(alice, "", "a", "b")
    assert post(alice, "/items/1/toggle").status_int == 303
    work = new_list(alice, "Work")
    assert post(bob, f"/lists/{shop}/members", username="alice").status_int == 303
    page = alice.get("/lists")
    entries = index_entries(page)
    assert [entry[:2] for entry in entries] == [
        (f"/lists/{first}", "To do"),
        (f"/lists/{shop}", "Shop"),
        (f"/lists/{work}", "Work"),
    ]
    assert entries[0][2].endswith("1 item left") and entries[2][2].endswith("0 items left")
    assert "bob" in entries[1][2] and entries[1][2].endswith("3 items left")  # the owner, when it is not you
    assert re.search(r'<form[^>]*method="post"[^>]*action="/lists"', page.text)
    assert re.search(r'<input[^>]*name="name"', page.text)
    assert [entry[1] for entry in index_entries(bob.get("/lists"))] == ["To do", "Shop"]  # never alice's own


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "A list needs a name."),
        ("   \t  ", "A list needs a name."),
        ("x" * 101, "A list's name has at most 100 characters (this one has 101)."),
        ("  " + "é" * 101 + "  ", "A list's name has at most 100 characters (this one has 101)."),
    ],
)
def test_a_bad_list_name_is_400_with_the_reason_and_nothing_changes(alice, database, name, reason):
    """Empty, blank or over 100 characters after trimming: refused, for a new list and for a rename."""
    work = new_list(alice, "Work")
    before = state(database)
    made = post(alice, "/lists", name=name)
    assert made.status_int == 400 and alert(made) == reason
    assert 'action="/lists"' in made.text  # the form again
    renamed = post(alice, f"/lists/{work}/rename", name=name)
    assert renamed.status_int == 400 and alert(renamed) == reason
    assert state(database) == before


@pytest.mark.parametrize("name", ["x" * 100, "é" * 100, "  " + "é" * 100 + " \t"])
def test_a_list_name_of_100_characters_is_accepted(alice, database, name):
    """The limit counts characters, not bytes, after trimming: 100 of them pass, for a new list and a rename."""
    list_id = new_list(alice, name)
    assert rows(database, "SELECT name FROM lists WHERE id = ?", list_id) == [(name.strip(),)]
    first = first_list(database)
    assert post(alice, f"/lists/{first}/rename", name=name).status_int == 303
    assert rows(database, "SELECT name FROM lists WHERE id = ?", first) == [(name.strip(),)]


# --- Items in a list --------------------------------------------------------------------------


def test_every_item_action_works_on_a_list(alice, database):
    """Add, toggle, edit (GET and POST), delete, toggle-all, clear-completed, filters and footer under /lists/<id>."""
    work = new_list(alice, "Work")
    base = f"/lists/{work}"
    added = post(alice, f"{base}/items", title="  report  ")
    assert added.status_int == 303 and added.headers["Location"] == base
    assert "Added #1." in alice.get(base).text
    add(alice, base, "call", "email")
    assert post(alice, f"{base}/items/2/toggle").status_int == 303
    page = alice.get(base)
    assert shown_items(page) == [(1, "active", "report"), (2, "completed", "call"), (3, "active", "email")]
    assert "2 items left" in page.text
    assert f'href="{base}/items/1/edit"' in page.text and f'formaction="{base}/items/1/toggle"' in page.text
    active, completed = alice.get(f"{base}/active"), alice.get(f"{base}/completed")
    assert shown_numbers(active) == [1, 3] and shown_numbers(completed) == [2]
    assert "2 items left" in completed.text  # the footer counts the whole list, whatever the filter
    edit_page = alice.get(f"{base}/items/1/edit")
    assert 'value="report"' in edit_page.text and f'action="{base}/items/1/edit"' in edit_page.text
    assert alice.get(f"{base}/items/9/edit", expect_errors=True).status_int == 404
    assert post(alice, f"{base}/items/1/edit", title="  final report ").status_int == 303
    too_long = post(alice, f"{base}/items/1/edit", title="z" * 501)
    assert too_long.status_int == 400 and "at most 500" in alert(too_long)
    assert post(alice, f"{base}/items/3/edit", title="   ").status_int == 303  # empty: deletes
    assert items_of(database, work) == [(1, "final report", 0), (2, "call", 1)]
    assert post(alice, f"{base}/items/toggle-all").status_int == 303
    assert items_of(database, work) == [(1, "final report", 1), (2, "call", 1)]
    assert "0 items left" in alice.get(base).text
    add(alice, base, "later")
    assert post(alice, f"{base}/items/clear-completed").status_int == 303
    assert items_of(database, work) == [(4, "later", 0)]
    assert post(alice, f"{base}/items/4/delete").status_int == 303
    assert items_of(database, work) == []
    for action in ("toggle", "edit", "delete"):  # numbers the list does not hold
        assert post(alice, f"{base}/items/4/{action}", title="x").status_int == 404
    assert items_of(database, first_list(database)) == []  # the first list never saw any of it
    add(alice, base, "next")
    assert items_of(database, work) == [(5, "next", 0)]  # never reused


def test_actions_on_a_list_return_to_its_own_pages_only(alice, database):
    """The back field leads to the list's filter it came from, never to another list's page."""
    base = f"/lists/{new_list(alice, 'Work')}"
    add(alice, base, "a")
    assert post(alice, f"{base}/items/1/toggle", back=f"{base}/completed").headers["Location"] == f"{base}/completed"
    assert post(alice, f"{base}/items", title="b", back=f"{base}/active").headers["Location"] == f"{base}/active"
    assert post(alice, f"{base}/items/1/toggle", back="/active").headers["Location"] == base
    assert post(alice, "/items", title="c", back=f"{base}/active").headers["Location"] == "/"


def test_a_long_list_has_pages_and_the_footer_counts_them_all(alice, database):
    """501 items: 500 on page 1, #501 on ?page=2, linked; past the end leads to the last page."""
    work = new_list(alice, "Work")
    base = f"/lists/{work}"
    fill_list(database, work, 501)
    page_one = alice.get(base)
    assert shown_numbers(page_one) == list(range(1, 501))
    assert f'href="{base}?page=2"' in page_one.text
    page_two = alice.get(f"{base}?page=2")
    assert shown_numbers(page_two) == [501] and "501 items left" in page_two.text
    assert shown_numbers(alice.get(f"{base}/active?page=2")) == [501]
    past = alice.get(f"{base}?page=3")
    assert past.status_int == 303 and past.headers["Location"] == f"{base}?page=2"
    assert alice.get(f"{base}?page=0", expect_errors=True).status_int == 404
    add(alice, base, "one more")
    assert items_of(database, work)[-1] == (502, "one more", 0)


# --- Several at once: titles -------------------------------------------------------------------


def list_and_base(alice, database, where):
    """Return the list to add to and where its routes begin: the first list's own (/items), or a new one's."""
    if where == "first":
        return first_list(database), ""
    list_id = new_list(alice, "Work")
    return list_id, f"/lists/{list_id}"


@pytest.mark.parametrize("where", ["first", "other"])
def test_titles_adds_every_line_in_order_with_consecutive_numbers(alice, database, where):
    """One item a line, trimmed, empty lines skipped; on /items (the first list) as on /lists/<id>/items."""
    list_id, base = list_and_base(alice, database, where)
    add(alice, base, "before")
    answer = post(alice, f"{base}/items", titles="  milk  \r\n\r\neggs\n   \n\tbread\n")
    assert answer.status_int == 303
    assert "Added #2 to #4." in alice.get(base or "/").text
    assert items_of(database, list_id) == [(1, "before", 0), (2, "milk", 0), (3, "eggs", 0), (4, "bread", 0)]
    assert counter(database, list_id) == 4
    add(alice, base, "after")
    assert items_of(database, list_id)[-1] == (5, "after", 0)


@pytest.mark.parametrize("where", ["first", "other"])
def test_titles_with_one_bad_line_adds_nothing_and_names_the_line(alice, database, where):
    """A line over 500 characters: 400 naming it (every line counted), none added, the counter unchanged, text kept."""
    list_id, base = list_and_base(alice, database, where)
    add(alice, base, "before")
    typed = "one\n\n  two  \n" + "x" * 501 + "\nfive <b>&amp;</b>"
    refused = post(alice, f"{base}/items", titles=typed)
    assert refused.status_int == 400
    assert alert(refused) == "Line 4: A title has at most 500 characters (this one has 501)."
    assert textarea(refused) == typed  # the textarea again, with what was typed
    assert items_of(database, list_id) == [(1, "before", 0)]
    assert counter(database, list_id) == 1
    add(alice, base, "next")
    assert items_of(database, list_id)[-1] == (2, "next", 0)  # no number was used up


def test_titles_with_nothing_but_empty_lines_is_400(alice, database):
    """Nothing to add is a 400 with a reason, not a silent success."""
    before = state(database)
    refused = post(alice, "/items", titles="\n   \r\n\t\n")
    assert refused.status_int == 400 and alert(refused)
    assert state(database) == before


def test_a_single_bad_title_on_a_list_is_400_and_adds_nothing(alice, database):
    """The title rules hold on /lists/<id>/items: empty or over 500 characters is a 400, the counter unchanged."""
    work = new_list(alice, "Work")
    for title, reason in (("   ", "An item needs a title."), ("é" * 501, "A title has at most 500 characters")):
        refused = post(alice, f"/lists/{work}/items", title=title)
        assert refused.status_int == 400 and alert(refused).startswith(reason)
    assert items_of(database, work) == [] and counter(database, work) == 0
    add(alice, f"/lists/{work}", "é" * 500)
    assert items_of(database, work) == [(1, "é" * 500, 0)]


# --- Sharing -------------------------------------------------------------------------------


def test_the_owner_shares_by_username_in_any_letter_case(alice, bob, carol, database):
    """POST members with bob's name in another case: bob shares the list, sees it in /lists, and the page names all."""
    work = new_list(alice, "Work")
    answer = post(alice, f"/lists/{work}/members", username="  BoB ")
    assert answer.status_int == 303 and answer.headers["Location"] == f"/lists/{work}"
    assert members_of(database, work) == ["bob"]
    assert post(alice, f"/lists/{work}/members", username="carol").status_int == 303
    assert (f"/lists/{work}", "Work") in [entry[:2] for entry in index_entries(bob.get("/lists"))]
    owners_view = alice.get(f"/lists/{work}").text
    assert "shared with bob, carol" in owners_view
    members_view = bob.get(f"/lists/{work}").text
    assert "Owned by alice" in members_view and "bob, carol" in members_view


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("nobody", "There is no account named nobody."),
        ("ALICE", "You own this list: share it with someone else."),
        ("Bob", "bob shares this list already."),
        ("   ", None),  # no name at all: some reason, whatever its words
    ],
)
def test_sharing_refusals_are_400_with_the_reason(alice, groceries, database, username, reason):
    """An unknown name, oneself, or a member already: 400 with the reason, no membership added."""
    before = state(database)
    refused = post(alice, f"/lists/{groceries}/members", username=username)
    assert refused.status_int == 400
    assert alert(refused) == reason if reason else alert(refused).strip()
    assert state(database) == before


def test_a_member_adds_edits_toggles_deletes_and_clears(alice, bob, groceries, database):
    """Members do every item action; their adds take the list's next number, one numbering for all."""
    base = f"/lists/{groceries}"
    assert items_of(database, groceries) == [(1, "milk", 0), (2, "eggs", 0)]  # alice's #1, bob's #2
    add(alice, base, "butter")
    assert post(bob, f"{base}/items", titles="jam\ntea").status_int == 303
    assert items_of(database, groceries)[-3:] == [(3, "butter", 0), (4, "jam", 0), (5, "tea", 0)]
    assert post(bob, f"{base}/items/1/edit", title="oat milk").status_int == 303
    assert 'value="oat milk"' in bob.get(f"{base}/items/1/edit").text
    assert post(bob, f"{base}/items/3/toggle").status_int == 303
    assert post(bob, f"{base}/items/5/delete").status_int == 303
    assert shown_items(alice.get(base)) == [
        (1, "active", "oat milk"),
        (2, "active", "eggs"),
        (3, "completed", "butter"),
        (4, "active", "jam"),
    ]
    assert post(bob, f"{base}/items/clear-completed").status_int == 303
    assert post(bob, f"{base}/items/toggle-all").status_int == 303
    assert items_of(database, groceries) == [(1, "oat milk", 1), (2, "eggs", 1), (4, "jam", 1)]
    assert bob.get(f"{base}/export.json").json["items"][0]["title"] == "oat milk"
    assert items_of(database, first_list(database, "bob")) == []  # bob's own list untouched


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/rename", {"name": "Mine now"}),
        ("/delete", {}),
        ("/members", {"username": "carol"}),
        ("/members/remove", {"username": "bob"}),
        ("/members/remove", {"username": "alice"}),
    ],
)
def test_a_member_asking_for_an_owners_action_is_403(bob, carol, groceries, database, path, fields):
    """Rename, delete, share and remove are the owner's: a member gets 403, and nothing changes."""
    before = state(database)
    refused = post(bob, f"/lists/{groceries}{path}", **fields)
    assert refused.status_int == 403 and alert(refused) == "Only the list's owner can do that."
    assert state(database) == before


STRANGER_ROUTES = [  # every /lists/<id> route: (method, path after the id, fields)
    ("GET", "", {}),
    ("GET", "/active", {}),
    ("GET", "/completed", {}),
    ("GET", "?page=2", {}),
    ("GET", "/items/1/edit", {}),
    ("GET", "/items/7/edit", {}),
    ("GET", "/export.json", {}),
    ("POST", "/items", {"title": "hijack"}),
    ("POST", "/items", {"title": "   "}),
    ("POST", "/items", {"titles": "a\nb"}),
    ("POST", "/items", {"titles": "a\n" + "x" * 501}),
    ("POST", "/items/1/toggle", {}),
    ("POST", "/items/1/edit", {"title": "hijack"}),
    ("POST", "/items/1/edit", {"title": "x" * 501}),
    ("POST", "/items/1/edit", {"title": ""}),
    ("POST", "/items/1/edit", {}),
    ("POST", "/items/1/delete", {}),
    ("POST", "/items/7/delete", {}),
    ("POST", "/items/toggle-all", {}),
    ("POST", "/items/clear-completed", {}),
    ("POST", "/rename", {"name": "Mine now"}),
    ("POST", "/rename", {"name": ""}),
    ("POST", "/delete", {}),
    ("POST", "/members", {"username": "carol"}),
    ("POST", "/members", {"username": "nobody"}),
    ("POST", "/members/remove", {"username": "bob"}),
    ("POST", "/leave", {}),
]


def ask(app, method, path, fields):
    """Send one request the way a browser would; return the answer, whatever it is."""
    return app.get(path, expect_errors=True) if method == "GET" else post(app, path, **fields)


def assert_same_as_missing(app, list_id, routes=STRANGER_ROUTES):
    """Every route on list_id answers 404, word for word what it answers for a list that does not exist."""
    for method, suffix, fields in routes:
        answer = ask(app, method, f"/lists/{list_id}{suffix}", fields)
        missing = ask(app, method, f"/lists/{MISSING}{suffix}", fields)
        assert (answer.status_int, missing.status_int) == (404, 404), (method, suffix, answer.text)
        assert answer.body == missing.body, (method, suffix)
        assert alert(answer) == "There is no such list, or it is not shared with you."


def test_a_stranger_gets_the_same_404_as_for_a_missing_list_on_every_route(alice, carol, groceries, database):
    """Neither owner nor member: every GET and POST under /lists/<id> is the 404 of a list that does not exist."""
    add(alice, f"/lists/{groceries}", "the secret")
    assert post(alice, f"/lists/{groceries}/items/1/toggle").status_int == 303
    before = state(database)
    assert_same_as_missing(carol, groceries)
    assert_same_as_missing(carol, first_list(database, "alice"))  # someone's first list too
    assert list_names(carol) == ["To do"] and "Groceries" not in carol.get("/export.json").text
    assert state(database) == before


def test_a_removed_member_gets_404_at_the_very_next_request(alice, bob, groceries, database, make_app):
    """The owner removes bob (any case): bob's next request on the list, in any browser, is a missing list's 404."""
    phone = copy_session(bob, make_app())  # bob's other browser, which has seen the list already
    assert bob.get(f"/lists/{groceries}").status_int == 200 and phone.get(f"/lists/{groceries}").status_int == 200
    answer = post(alice, f"/lists/{groceries}/members/remove", username="BOB")
    assert answer.status_int == 303 and answer.headers["Location"] == f"/lists/{groceries}"
    assert members_of(database, groceries) == []
    gone = bob.get(f"/lists/{groceries}", expect_errors=True)  # the very next request
    assert gone.status_int == 404 and gone.body == bob.get(f"/lists/{MISSING}", expect_errors=True).body
    assert post(bob, f"/lists/{groceries}/items", title="too late").status_int == 404
    assert_same_as_missing(phone, groceries, [("GET", "/active", {}), ("POST", "/items/1/toggle", {})])
    assert list_names(bob) == ["To do"]
    assert [entry["id"] for entry in bob.get("/export.json").json["lists"]] == [first_list(database, "bob")]
    assert items_of(database, groceries) == [(1, "milk", 0), (2, "eggs", 0)]  # what bob added stays in the list
    refused = post(alice, f"/lists/{groceries}/members/remove", username="bob")  # not a member any more
    assert refused.status_int == 400 and alert(refused) == "bob does not share this list."


def test_a_member_leaves_and_the_owner_cannot(alice, bob, groceries, database):
    """Leave: 303 to /lists and the list is gone for the member; the owner's leave is a 400 with the reason."""
    left = post(bob, f"/lists/{groceries}/leave")
    assert left.status_int == 303 and left.headers["Location"] == "/lists"
    assert members_of(database, groceries) == []
    assert list_names(bob) == ["To do"]
    assert_same_as_missing(bob, groceries, [("GET", "", {}), ("POST", "/items", {"title": "x"})])
    refused = post(alice, f"/lists/{groceries}/leave")
    assert refused.status_int == 400 and alert(refused) == "You own this list: delete it instead of leaving."
    refused = post(alice, f"/lists/{first_list(database)}/leave")
    assert refused.status_int == 400
    assert alice.get(f"/lists/{groceries}").status_int == 200


# --- Deleting a list --------------------------------------------------------------------------


def test_the_owner_deletes_a_list_its_items_go_and_its_members_lose_it(alice, bob, groceries, database):
    """303 to /lists; the list, its items and memberships leave the database; members and owner then get 404."""
    answer = post(alice, f"/lists/{groceries}/delete")
    assert answer.status_int == 303 and answer.headers["Location"] == "/lists"
    assert rows(database, "SELECT * FROM lists WHERE id = ?", groceries) == []
    assert items_of(database, groceries) == []
    assert rows(database, "SELECT * FROM members WHERE list_id = ?", groceries) == []
    assert_same_as_missing(bob, groceries, [("GET", "", {}), ("POST", "/items", {"title": "x"})])
    assert_same_as_missing(alice, groceries, [("GET", "", {}), ("GET", "/export.json", {})])
    assert "Groceries" not in list_names(alice) and list_names(bob) == ["To do"]
    assert new_list(alice, "Groceries again") != groceries  # an id is never reused


# --- Exports ------------------------------------------------------------------------------------


def assert_item_fields(items):
    """Each exported item has exactly no, title, done, created (ISO 8601), in number order."""
    for item in items:
        assert {"no", "title", "done", "created"} <= set(item)
        assert type(item["no"]) is int and type(item["title"]) is str and type(item["done"]) is bool
        assert datetime.fromisoformat(item["created"]).tzinfo is not None
    assert [item["no"] for item in items] == sorted(item["no"] for item in items)


def test_export_json_keeps_items_and_gains_every_list(alice, bob, database):
    """/export.json: "items" is the first list's; "lists" every list owned or shared, first first, as each gives it."""
    shop = new_list(bob, "Shop")
    add(bob, f"/lists/{shop}", "bread")
    assert post(bob, f"/lists/{shop}/members", username="alice").status_int == 303
    add(alice, "", "a", "b")
    assert post(alice, "/items/2/toggle").status_int == 303
    work = new_list(alice, "Work")
    add(alice, f"/lists/{work}", "report")
    exported = alice.get("/export.json").json
    first = first_list(database)
    assert [(i["no"], i["title"], i["done"]) for i in exported["items"]] == [(1, "a", False), (2, "b", True)]
    assert [(e["id"], e["name"], e["owner"]) for e in exported["lists"]] == [
        (first, "To do", "alice"),
        (shop, "Shop", "bob"),
        (work, "Work", "alice"),
    ]
    assert exported["lists"][0]["items"] == exported["items"]
    for entry in exported["lists"]:
        assert set(entry) >= {"id", "name", "owner", "items"}
        assert_item_fields(entry["items"])
        assert alice.get(f"/lists/{entry['id']}/export.json").json == entry  # each as its own export gives it
    assert [i["title"] for i in exported["lists"][1]["items"]] == ["bread"]


def test_a_lists_export_gives_that_list(alice, database):
    """/lists/<id>/export.json: {"id", "name", "owner", "items"} with no, title, done, created, JSON."""
    work = new_list(alice, "Work")
    add(alice, f"/lists/{work}", "one", "two")
    answer = alice.get(f"/lists/{work}/export.json")
    assert answer.content_type == "application/json"
    body = answer.json
    assert (body["id"], body["name"], body["owner"]) == (work, "Work", "alice")
    assert [(i["no"], i["title"], i["done"]) for i in body["items"]] == [(1, "one", False), (2, "two", False)]
    assert_item_fields(body["items"])


# --- Deleting an account -----------------------------------------------------------------------


def test_the_account_page_names_the_shared_lists_that_would_go(alice, bob, carol, groceries, database):
    """GET /account, before the password is asked, names each shared list the deletion takes, with its members."""
    assert post(alice, f"/lists/{groceries}/members", username="carol").status_int == 303
    new_list(alice, "Private")  # not shared: nobody else loses it
    page = alice.get("/account").text
    delete_form = page[page.index('action="/account/delete"') :]
    warning = delete_form.index("Groceries, shared with bob, carol")
    assert warning < delete_form.index('name="password"')
    assert "Private" not in page
    assert "Groceries" not in bob.get("/account").text  # a member's deletion takes nothing from others


def test_deleting_an_account_deletes_its_lists_and_memberships(alice, bob, carol, groceries, database):
    """The owner's lists and items go (members get 404 at the next request); its memberships go, others' lists stay."""
    shop = new_list(bob, "Shop")
    add(bob, f"/lists/{shop}", "bread")
    assert post(bob, f"/lists/{shop}/members", username="alice").status_int == 303
    assert post(bob, f"/lists/{shop}/members", username="carol").status_int == 303
    alice_id, alice_first = user_id(database, "alice"), first_list(database)
    add(alice, "", "alice's own")
    assert post(alice, "/account/delete", password=PASSWORD).status_int == 303
    assert rows(database, "SELECT * FROM lists WHERE owner_id = ?", alice_id) == []
    assert items_of(database, groceries) == [] and items_of(database, alice_first) == []
    assert rows(database, "SELECT * FROM members WHERE user_id = ? OR list_id = ?", alice_id, groceries) == []
    assert_same_as_missing(bob, groceries, [("GET", "", {}), ("POST", "/items", {"title": "x"})])
    assert list_names(bob) == ["To do", "Shop"]
    assert items_of(database, shop) == [(1, "bread", 0)] and members_of(database, shop) == ["carol"]
    assert "alice" not in bob.get(f"/lists/{shop}").text  # no longer named among its members


# --- The device cookie: a known browser signs in during a lockout ---------------------------


def device_cookie(answer, uid):
    """Return the Set-Cookie header of the answer that sets the device cookie for the user."""
    (header,) = [h for h in answer.headers.getall("Set-Cookie") if h.startswith(f"todo_device_{uid}=")]
    return header


def test_the_device_cookie_is_httponly_lax_long_lived_and_signed_not_pickled(app, make_app, database):
    """Register and sign in both set todo_device_<uid>: HttpOnly, SameSite=Lax, long-lived, nonce.hex-signature."""
    answer = register(app)
    uid = user_id(database, "alice")
    for header in (device_cookie(answer, uid), device_cookie(login(make_app()), uid)):
        value = header.split(";", 1)[0].split("=", 1)[1].strip('"')
        assert DEVICE_VALUE.fullmatch(value), value  # not a pickle, not base64 of anything: a nonce and an HMAC
        flags = [part.strip().lower() for part in header.split(";")[1:]]
        assert "httponly" in flags and "samesite=lax" in flags
        max_age = next(int(flag.split("=")[1]) for flag in flags if flag.startswith("max-age="))
        assert max_age >= 180 * 24 * 3600


def test_a_browser_that_signed_in_before_still_signs_in_during_a_lockout(alice, make_app, database):
    """Ten wrong passwords from a stranger lock the name (429, even right); alice's own browser still gets in."""
    assert post(alice, "/logout").status_int == 303
    stranger = make_app()
    assert [login(stranger, "alice", "not the password").status_int for _ in range(10)] == [400] * 10
    assert login(stranger, "alice", PASSWORD).status_int == 429  # a fresh browser, even with the right password
    assert login(make_app(), "ALICE", PASSWORD).status_int == 429
    assert login(alice, "Alice", PASSWORD).status_int == 303
    assert alice.get("/").status_int == 200
    assert login(stranger, "alice", PASSWORD).status_int == 429  # still locked for everyone else


def test_a_known_browsers_wrong_passwords_are_limited_too(alice, make_app, database):
    """The known browser has its own ten failures: after them it gets 429 too, even with the right password."""
    assert post(alice, "/logout").status_int == 303
    assert [login(alice, "alice", "not the password").status_int for _ in range(10)] == [400] * 10
    answer = login(alice, "alice", PASSWORD)
    assert answer.status_int == 429 and "Retry-After" in answer.headers
    assert login(make_app(), "alice", PASSWORD).status_int == 303  # the name itself was not locked by them


def forged_values(genuine, uid, bob_value):
    """Return device cookie values an attacker could make: edited, re-signed with another key, another user's."""
    nonce, signature = genuine.split(".")
    other_nonce = "A" * 22
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    wrong_key = hmac.new(b"not the site's key", f"device {uid} {other_nonce}".encode(), hashlib.sha256).hexdigest()
    return {
        "edited signature": f"{nonce}.{flipped}",
        "edited nonce": f"{other_nonce}.{signature}",
        "no signature": nonce,
        "another key": f"{other_nonce}.{wrong_key}",
        "another user's cookie": bob_value,
        "unsigned nonce": f"{other_nonce}.",
        "pickle": "gASVBQAAAAAAAACMAWGULg==",
    }


def test_a_forged_or_edited_device_cookie_gives_no_bypass(app, make_app, database):
    """Only the cookie the site signed for this user lets a browser past the lock; any edit of it does not."""
    bob_answer = register(make_app(), "bob")
    bob_value = device_cookie(bob_answer, user_id(database, "bob")).split(";")[0].split("=", 1)[1].strip('"')
    genuine_answer = register(app)
    uid = user_id(database, "alice")
    genuine = device_cookie(genuine_answer, uid).split(";")[0].split("=", 1)[1].strip('"')
    fail_logins(database, "alice")  # the name is locked: ten failures just now
    assert login(make_app(), "alice", PASSWORD).status_int == 429
    for what, value in forged_values(genuine, uid, bob_value).items():
        browser = make_app()
        browser.set_cookie(f"todo_device_{uid}", value)
        assert login(browser, "alice", PASSWORD).status_int == 429, what
    control = make_app()  # the genuine value, copied the same way, does get in: the refusals above mean something
    control.set_cookie(f"todo_device_{uid}", genuine)
    assert login(control, "alice", PASSWORD).status_int == 303


# --- Forms need the token ------------------------------------------------------------------------

CSRF_ROUTES = [  # (who, path with {id}, fields): every new POST route
    ("alice", "/lists", {"name": "New"}),
    ("alice", "/lists/{id}/items", {"title": "x"}),
    ("alice", "/lists/{id}/items", {"titles": "x\ny"}),
    ("alice", "/items", {"titles": "x\ny"}),
    ("alice", "/lists/{id}/items/1/toggle", {}),
    ("alice", "/lists/{id}/items/1/edit", {"title": "renamed"}),
    ("alice", "/lists/{id}/items/1/edit", {"title": ""}),
    ("alice", "/lists/{id}/items/1/delete", {}),
    ("alice", "/lists/{id}/items/toggle-all", {}),
    ("alice", "/lists/{id}/items/clear-completed", {}),
    ("alice", "/lists/{id}/rename", {"name": "Renamed"}),
    ("alice", "/lists/{id}/delete", {}),
    ("alice", "/lists/{id}/members", {"username": "carol"}),
    ("alice", "/lists/{id}/members/remove", {"username": "bob"}),
    ("bob", "/lists/{id}/leave", {}),
    ("bob", "/lists/{id}/items", {"title": "x"}),
]


@pytest.mark.parametrize(("who", "path", "fields"), CSRF_ROUTES)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_post_without_the_right_token_is_403_and_changes_nothing(
    alice, bob, carol, groceries, database, who, path, fields, token
):
    """Every new POST route needs the session's csrf_token: missing or wrong is a 403, and nothing changes."""
    assert post(alice, f"/lists/{groceries}/items/2/toggle").status_int == 303  # something for clear and toggle-all
    browser = {"alice": alice, "bob": bob}[who]
    before = state(database)
    form = {**fields, **({"csrf_token": token} if token else {})}
    answer = browser.post(path.format(id=groceries), form, expect_errors=True)
    assert answer.status_int == 403
    assert state(database) == before
    assert post(browser, path.format(id=groceries), **fields).status_int in (303, 400)  # with it, the form works


def test_a_page_counts_and_shows_the_same_items_whatever_commits_between_its_reads(alice, database, monkeypatch):
    """An add committed by another program between the page's counts and its items: the page agrees with itself."""
    for title in ("one", "two"):
        post(alice, "/items", title=title)
    real_load_items = todo.load_items

    def load_items_after_an_add_elsewhere(*args, **kwargs):
        """Commit a third item from another connection just before the page reads its items."""
        monkeypatch.setattr(todo, "load_items", real_load_items)  # once
        with opened(database) as other, todo.transaction(other):
            list_id = other.execute("SELECT first_list_id FROM users WHERE username = 'alice'").fetchone()[0]
            todo.next_numbers(other, list_id, 1)
            sql = "INSERT INTO items (list_id, no, title, created) VALUES (?, 3, 'meanwhile', '2026-01-01T00:00:00')"
            other.execute(sql, (list_id,))
        return real_load_items(*args, **kwargs)

    monkeypatch.setattr(todo, "load_items", load_items_after_an_add_elsewhere)
    page = alice.get("/")
    shown = len(re.findall(r'data-no="\d+"', page.text))
    counted = int(re.search(r"(\d+) items? left", page.text)[1])
    assert shown == counted == 2, f"{shown} items shown, {counted} counted"
    assert "meanwhile" in alice.get("/").text  # the next page sees it, counts included
