"""End-to-end tests in a real Chromium against a real `python todo.py`: flows, isolation, accessibility, screenshots.

Chromium is Debian's (/usr/bin/chromium), never a downloaded one. Where it is missing
the tests are skipped with the reason, except under CI (CI set), where that fails them.

Regenerate the README's screenshots in docs/ with:

    TODO_SCREENSHOTS=docs python -m pytest tests/test_browser.py -k screenshots
"""

import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from conftest import PASSWORD, ROOT, running, todo_servers

CHROMIUM = Path(os.environ.get("TODO_CHROMIUM", "/usr/bin/chromium"))
# Headless, offline: no background connections (this machine refuses them), no first-run UI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = os.environ.get("TODO_SCREENSHOTS")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def require(available, reason):
    """Skip the test when something it needs is missing; under CI, fail it instead."""
    if not available:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required under CI)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Start Debian's Chromium headless with a fresh empty profile (Playwright makes one per launch)."""
    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed: pip install -r requirements-dev.txt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Serve the site from one real `python todo.py` process on a fresh database."""
    with running(todo_servers(1), tmp_path_factory.mktemp("browser") / "todo.db") as urls:
        yield urls[0]


@pytest.fixture
def new_page(browser, site):
    """Return a factory of pages, each in its own browser context (its own cookies), closed after the test."""
    contexts = []

    def make(**options):
        """Open a page in a new context with these Playwright context options."""
        context = browser.new_context(base_url=site, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def expect(*args):
    """Return Playwright's expect (imported late so the module loads without Playwright)."""
    from playwright.sync_api import expect

    return expect(*args)


class Mouse:
    """A user who clicks: fields are clicked then typed into, buttons and links clicked."""

    def __init__(self, page):
        self.page = page

    def type_into(self, field, text):
        """Click the field, clear it and type."""
        field.click()
        field.press("ControlOrMeta+a")
        self.page.keyboard.type(text)

    def submit(self, field, button):
        """Send the form by clicking its button."""
        button.click()

    def activate(self, control):
        """Click a button, link or disclosure."""
        control.click()


class Keyboard(Mouse):
    """A user without a mouse: Tab to reach every control, Enter to use it; focus must be visible."""

    def tab_to(self, control, limit=60):
        """Press Tab until the control has focus, failing if it cannot be reached."""
        control.wait_for()
        for _ in range(limit):
            if control.evaluate("element => element === document.activeElement"):
                outline = control.evaluate("element => getComputedStyle(element).outlineStyle")
                assert outline != "none", f"no visible focus on {control}"
                return
            self.page.keyboard.press("Tab")
        raise AssertionError(f"{control} cannot be reached with Tab")

    def type_into(self, field, text):
        """Tab to the field, select what is there and type over it."""
        self.tab_to(field)
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.type(text)

    def submit(self, field, button):
        """Send the form by pressing Enter in the field."""
        self.page.keyboard.press("Enter")

    def activate(self, control):
        """Tab to a button, link or disclosure and press Enter."""
        self.tab_to(control)
        self.page.keyboard.press("Enter")


def item(page, no):
    """Return the list item carrying data-no="no"."""
    return page.locator(f'.todo-list li[data-no="{no}"]')


def toggle(page, no):
    """Return the button that marks item #no done or not done: the item itself."""
    return item(page, no).get_by_role("button", name=re.compile(rf"^#{no} "))


def titles(page):
    """Return a locator of the shown items' titles."""
    return page.locator(".todo-list li .title")


def full_flow(page, user, username, site):
    """Register, add three items, toggle, edit, filter, clear completed, sign out and in: check each step."""
    page.goto("/register")
    if isinstance(user, Keyboard):
        expect(page.get_by_label("Username")).to_be_focused()  # autofocus: type straight away
    user.type_into(page.get_by_label("Username"), username)
    user.type_into(page.get_by_label("Password"), PASSWORD)
    user.activate(page.get_by_role("button", name="Create account"))
    expect(page).to_have_url(site + "/")
    expect(page.get_by_role("status")).to_have_text(f"Welcome, {username}.")

    new_title = page.get_by_label("New item")
    for title in ("Buy oat milk", "Call the plumber", "Water the plants"):
        user.type_into(new_title, title)
        user.submit(new_title, page.get_by_role("button", name="Add", exact=True))
        expect(page.get_by_role("status")).to_have_text(re.compile(r"Added #\d\."))
    expect(titles(page)).to_have_text(["Buy oat milk", "Call the plumber", "Water the plants"])
    expect(page.get_by_text("3 items left")).to_be_visible()

    user.activate(toggle(page, 2))
    expect(item(page, 2)).to_have_class("completed")
    expect(toggle(page, 2)).to_have_attribute("aria-pressed", "true")
    expect(item(page, 1)).not_to_have_class("completed")
    expect(toggle(page, 1)).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_text("2 items left")).to_be_visible()

    user.activate(item(page, 3).get_by_role("link", name="Edit #3"))
    expect(page).to_have_url(site + "/items/3/edit")
    edit_field = page.get_by_label("Title")
    expect(edit_field).to_have_value("Water the plants")
    user.type_into(edit_field, "  Water the plants and the herbs ")
    user.submit(edit_field, page.get_by_role("button", name="Save"))
    expect(page).to_have_url(site + "/")
    expect(item(page, 3).locator(".title")).to_have_text("Water the plants and the herbs")

    user.activate(page.get_by_role("link", name="Active"))
    expect(page).to_have_url(site + "/active")
    expect(page.get_by_role("link", name="Active")).to_have_attribute("aria-current", "page")
    expect(titles(page)).to_have_text(["Buy oat milk", "Water the plants and the herbs"])
    user.activate(page.get_by_role("link", name="Completed"))
    expect(page).to_have_url(site + "/completed")
    expect(titles(page)).to_have_text(["Call the plumber"])
    expect(page.get_by_text("2 items left")).to_be_visible()  # counts all, whatever the filter

    user.activate(page.get_by_role("button", name="Clear completed"))
    expect(page).to_have_url(site + "/completed")  # stays on the filter it came from
    expect(page.get_by_role("status")).to_have_text("Cleared 1 completed item.")
    expect(titles(page)).to_have_count(0)
    user.activate(page.get_by_role("link", name="All"))
    expect(titles(page)).to_have_text(["Buy oat milk", "Water the plants and the herbs"])
    expect(page.get_by_role("button", name="Clear completed")).to_have_count(0)

    user.activate(page.get_by_role("button", name="Sign out"))
    expect(page).to_have_url(site + "/login")
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    page.goto("/")
    expect(page).to_have_url(site + "/login")  # really signed out

    user.type_into(page.get_by_label("Username"), username)
    user.type_into(page.get_by_label("Password"), PASSWORD)
    user.activate(page.get_by_role("button", name="Sign in"))
    expect(page).to_have_url(site + "/")
    expect(titles(page)).to_have_text(["Buy oat milk", "Water the plants and the herbs"])
    expect(item(page, 1)).to_be_visible()
    expect(item(page, 3)).to_be_visible()
    expect(page.get_by_text("2 items left")).to_be_visible()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
@pytest.mark.parametrize("user_class", [Mouse, Keyboard], ids=["mouse", "keyboard"])
def test_whole_flow(new_page, site, user_class, javascript):
    """A new user does everything the list offers, by mouse or by keyboard, with JavaScript on or off."""
    page = new_page(java_script_enabled=javascript)
    full_flow(page, user_class(page), f"{user_class.__name__.lower()}-{'js' if javascript else 'nojs'}", site)


def test_another_user_never_sees_the_first_users_items(new_page, site):
    """Two browsers, two users, side by side: neither sees the other's items, even by number."""
    alice, bob = new_page(), new_page()
    for page, name in ((alice, "alice-two"), (bob, "bob-two")):
        page.goto("/register")
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        expect(page).to_have_url(site + "/")
    alice.get_by_label("New item").fill("Alice's surprise party")
    alice.get_by_role("button", name="Add", exact=True).click()
    expect(titles(alice)).to_have_text(["Alice's surprise party"])

    bob.reload()
    expect(bob.get_by_text("Nothing here yet.")).to_be_visible()
    expect(bob.get_by_text("Alice's surprise party")).to_have_count(0)
    answer = bob.request.get(site + "/export.json")
    assert answer.json()["items"] == []
    assert [exported["name"] for exported in answer.json()["lists"]] == ["To do"]
    bob.get_by_label("New item").fill("Bob's own #1")
    bob.get_by_role("button", name="Add", exact=True).click()
    expect(titles(bob)).to_have_text(["Bob's own #1"])
    toggle(bob, 1).click()  # toggles Bob's #1, not Alice's
    alice.reload()
    expect(titles(alice)).to_have_text(["Alice's surprise party"])
    expect(item(alice, 1)).not_to_have_class("completed")
    expect(alice.get_by_text("Bob's own")).to_have_count(0)


def test_a_title_is_counted_in_characters_not_cut_by_the_browser(new_page, site):
    """500 emoji are 1,000 UTF-16 units to the browser but 500 characters: kept whole; 501 get the reason."""
    page = new_page()
    seed(page, "emoji-fan", [])
    title = "\N{GRINNING FACE}" * 500
    page.get_by_label("New item").focus()
    page.keyboard.insert_text(title)  # as typed or pasted: a maxlength would cut it here
    page.get_by_label("New item").press("Enter")
    expect(page.get_by_role("status")).to_have_text("Added #1.")
    assert page.request.get(site + "/export.json").json()["items"][0]["title"] == title

    page.get_by_label("New item").focus()
    page.keyboard.insert_text("x" * 501)
    page.get_by_label("New item").press("Enter")
    expect(page.get_by_role("alert")).to_have_text("A title has at most 500 characters (this one has 501).")
    expect(titles(page)).to_have_count(1)


# --- Lists, and lists shared --------------------------------------------------------


def make_list(page, name, user=None):
    """Make a list through the form on /lists, by `user` (or plain clicks); return the list's path."""
    page.goto("/lists")
    user = user or Mouse(page)
    user.type_into(page.get_by_label("Name of the new list"), name)
    user.activate(page.get_by_role("button", name="Make list"))
    expect(page).to_have_url(re.compile(r"/lists/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return "/" + page.url.split("/", 3)[3]


def share(page, username):
    """On a list's page, share it with `username` through the page's form."""
    page.get_by_label("Share with (username)").fill(username)
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(re.compile(rf"^Shared with {re.escape(username)}\.$", re.I))


def add_items(page, items):
    """Add the items one by one with the list page's New item field, no date."""
    for title in items:
        add_dated(page, title)


def lists_index(page):
    """Return a locator of the links in the lists index, in its order."""
    return page.locator(".lists-index li > a")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_a_list_is_made_on_the_lists_page_and_opened_from_it(new_page, site, javascript):
    """/lists: the header leads there, the form makes a list that then appears, and its link opens it."""
    page = new_page(java_script_enabled=javascript)
    seed(page, f"maker-{'js' if javascript else 'nojs'}", ["Water the plants"])
    page.get_by_role("link", name="Lists", exact=True).click()
    expect(page).to_have_url(site + "/lists")
    expect(page.get_by_role("heading", name="Your lists")).to_be_visible()
    expect(lists_index(page)).to_have_text(["To do"])
    expect(page.locator(".lists-index li")).to_contain_text(["1 item left"])

    page.get_by_label("Name of the new list").fill("   ")  # passes `required`, not the server
    page.get_by_role("button", name="Make list").click()
    expect(page.get_by_role("alert")).to_have_text("A list needs a name.")
    expect(lists_index(page)).to_have_text(["To do"])

    path = make_list(page, "Groceries")
    expect(page.get_by_text("Nothing here yet.")).to_be_visible()
    page.get_by_label("New item").fill("Oat milk")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page).to_have_url(site + path)
    expect(titles(page)).to_have_text(["Oat milk"])

    page.get_by_role("link", name="Lists", exact=True).click()
    expect(lists_index(page)).to_have_text(["To do", "Groceries"])  # the first list first
    page.get_by_role("link", name="Groceries").click()
    expect(page).to_have_url(site + path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Groceries")
    expect(titles(page)).to_have_text(["Oat milk"])
    page.get_by_role("link", name="Lists", exact=True).click()
    page.get_by_role("link", name="To do").click()
    expect(titles(page)).to_have_text(["Water the plants"])  # each list its own items


def test_the_lists_link_is_on_every_page_and_fits_a_phone(new_page, site):
    """On a 390px phone, with the longest username, every signed-in page's header shows a reachable Lists link."""
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    username = "a-rather-long-user_name-of-32-ch"  # 32 characters, the most a username may have
    seed(page, username, ["Renew passport"])
    path = make_list(page, "A list with a name long enough to wrap on the narrowest phone screens of all")
    pages = ["/", "/active", "/completed", "/items/1/edit", "/lists", path, path + "/completed", "/account", "/today"]
    for address in pages:
        page.goto(address)
        nav = page.get_by_role("navigation", name="Account")
        link = nav.get_by_role("link", name="Lists", exact=True)
        expect(link).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{address} is {width}px wide on a {PHONE['width']}px phone"
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"Lists is off the screen on {address}"
        on_top = link.evaluate(
            """link => {
                const box = link.getBoundingClientRect();
                const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
                return link.contains(top);
            }"""
        )
        assert on_top, f"something covers the Lists link on {address}"
        expect(nav.get_by_role("link", name=username)).to_be_visible()
        expect(nav.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/account")  # no autofocus there: Tab starts at the top of the page
    Keyboard(page).activate(page.get_by_role("link", name="Lists", exact=True))
    expect(page).to_have_url(site + "/lists")
    page.get_by_role("link", name="Lists", exact=True).tap()
    expect(page).to_have_url(site + "/lists")


def test_a_shared_list_between_two_browsers(new_page, site):
    """Alice shares Groceries with Bob, who sees it named with its owner and members, adds to it, and loses it."""
    alice, bob = new_page(), new_page()
    seed(alice, "alice-shares", [])
    seed(bob, "bob-member", ["Bob's own errand"])
    path = make_list(alice, "Groceries")
    add_items(alice, ["Oat milk"])
    share(alice, "Bob-Member")  # any case: the account's own spelling is shown
    expect(alice.get_by_role("status")).to_have_text("Shared with bob-member.")
    expect(alice.locator(".sharing")).to_have_text("Yours, shared with bob-member.")
    expect(alice.get_by_role("list", name="Members")).to_have_text(re.compile(r"^\s*bob-member\s*Remove bob-member"))
    share_field = alice.get_by_label("Share with (username)")
    share_field.fill("nobody-by-this-name")
    alice.get_by_role("button", name="Share", exact=True).click()
    expect(alice.get_by_role("alert")).to_have_text("There is no account named nobody-by-this-name.")

    bob.get_by_role("link", name="Lists", exact=True).click()
    expect(lists_index(bob)).to_have_text(["To do", "Groceries"])
    expect(bob.locator(".lists-index li").nth(1)).to_contain_text("alice-shares's")
    expect(bob.locator(".lists-index li").nth(1)).to_contain_text("1 item left")
    bob.get_by_role("link", name="Groceries").click()
    expect(bob).to_have_url(site + path)
    expect(bob.get_by_role("heading", level=1)).to_have_text("Groceries")
    expect(bob.locator(".sharing")).to_have_text("Owned by alice-shares, shared with bob-member.")
    expect(bob.get_by_text("alice-shares shares this list with you.")).to_be_visible()
    expect(bob.get_by_label("Share with (username)")).to_have_count(0)  # the owner's forms are the owner's
    expect(bob.get_by_role("button", name="Rename")).to_have_count(0)
    expect(titles(bob)).to_have_text(["Oat milk"])
    add_items(bob, ["Sourdough bread"])
    expect(bob.get_by_role("status")).to_have_text("Added #2.")  # the list's next number

    alice.goto(path)
    expect(titles(alice)).to_have_text(["Oat milk", "Sourdough bread"])
    expect(item(alice, 2).locator(".title")).to_have_text("Sourdough bread")
    alice.get_by_role("button", name="Remove bob-member").click()
    expect(alice.get_by_role("status")).to_have_text("bob-member no longer shares this list.")
    expect(alice.get_by_role("list", name="Members")).to_have_count(0)
    expect(alice.locator(".sharing")).to_have_count(0)

    answer = bob.goto(path)
    assert answer.status == 404
    expect(bob.get_by_role("heading", level=1)).to_have_text("404 Not Found")
    expect(bob.get_by_role("alert")).to_have_text("There is no such list, or it is not shared with you.")
    expect(bob.get_by_text("Sourdough bread")).to_have_count(0)
    bob.goto("/lists")
    expect(lists_index(bob)).to_have_text(["To do"])


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_several_items_are_added_at_once(new_page, site, javascript):
    """Pasted lines become consecutive items in order; a line too long names its number and keeps the text."""
    page = new_page(java_script_enabled=javascript)
    seed(page, f"paster-{'js' if javascript else 'nojs'}", [])
    path = make_list(page, "Weekend")
    add_items(page, ["Already there"])
    several = page.locator("details.several")
    expect(several).not_to_have_attribute("open", "")
    page.get_by_text("Add several at once").click()
    expect(several).to_have_attribute("open", "")
    box = page.get_by_label("One item a line")
    box.focus()
    page.keyboard.insert_text("Mow the lawn\n\nClean the gutters\nCall grandma\n")  # as pasted
    page.get_by_role("button", name="Add them all").click()
    expect(page).to_have_url(site + path)
    expect(page.get_by_role("status")).to_have_text("Added #2 to #4.")
    expect(titles(page)).to_have_text(["Already there", "Mow the lawn", "Clean the gutters", "Call grandma"])
    for no, title in ((2, "Mow the lawn"), (3, "Clean the gutters"), (4, "Call grandma")):
        expect(item(page, no).locator(".title")).to_have_text(title)
    expect(several).not_to_have_attribute("open", "")

    typed = "Buy stamps\n\n" + "x" * 501 + "\nPost the letter"
    page.get_by_text("Add several at once").click()
    box.focus()
    page.keyboard.insert_text(typed)
    page.get_by_role("button", name="Add them all").click()
    expect(page.get_by_role("alert")).to_have_text("Line 3: A title has at most 500 characters (this one has 501).")
    expect(several).to_have_attribute("open", "")
    expect(box).to_have_value(typed)  # nothing to type again
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(titles(page)).to_have_count(4)  # all or none: "Buy stamps" is not in either
    expect(page.locator(".todo-list")).not_to_contain_text("Buy stamps")


# --- Dates ------------------------------------------------------------------------
# The date fields are typed into as a person does: the month, the day, the year, in the order an en-US
# Chromium shows them (every context here is en-US). "Today" is the site's, read from /today.


def server_today(page):
    """Return the signed-in user's today as the site reckons it (their time zone), read from /today."""
    page.goto("/today")
    return date.fromisoformat(page.locator("#today-heading + .sharing time").get_attribute("datetime"))


def readable(day, today):
    """Return how a page writes a due date that is neither overdue, today nor tomorrow: "Tue 8 Dec"."""
    return f"{day:%a} {day.day} {day:%b}" + ("" if day.year == today.year else f" {day.year}")


def enter_date(user, field, day):
    """Type a date into an <input type=date>: reach its month (Tab, or a click on it), then type the digits."""
    if isinstance(user, Keyboard):
        user.tab_to(field)  # Tab lands on the first part, the month
    else:
        box = field.bounding_box()
        user.page.mouse.click(box["x"] + 16, box["y"] + box["height"] / 2)  # on the month, at the left
    user.page.keyboard.type(f"{day:%m%d%Y}")
    expect(field).to_have_value(day.isoformat())  # what the form sends


def add_dated(page, title, day=None, repeat=""):
    """Add an item through the list page's form with a due date and repeat (filled, not typed)."""
    form = page.locator("form.new-item")
    form.get_by_label("New item").fill(title)
    form.get_by_label("Due").fill(day.isoformat() if day else "")
    form.get_by_label("Repeats").select_option(repeat)
    form.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Added"))


def due_of(locator):
    """Return the <time> of an item's due date."""
    return locator.locator(".due time")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
@pytest.mark.parametrize("user_class", [Mouse, Keyboard], ids=["mouse", "keyboard"])
def test_an_item_is_added_with_a_date_typed_into_the_date_field(new_page, site, user_class, javascript):
    """The add form's date field, typed into by mouse or keyboard user: the list shows the date, readable."""
    page = new_page(java_script_enabled=javascript, locale="en-US")
    user = user_class(page)
    seed(page, f"dater-{user_class.__name__.lower()}-{'js' if javascript else 'nojs'}", [])
    today = server_today(page)
    page.goto("/")
    form = page.locator("form.new-item")
    tomorrow, later = today + timedelta(days=1), today + timedelta(days=40)

    user.type_into(form.get_by_label("New item"), "Renew the passport")
    enter_date(user, form.get_by_label("Due"), tomorrow)
    user.submit(form.get_by_label("Due"), form.get_by_role("button", name="Add", exact=True))
    expect(page.get_by_role("status")).to_have_text("Added #1.")
    expect(due_of(item(page, 1))).to_have_attribute("datetime", tomorrow.isoformat())
    expect(due_of(item(page, 1))).to_have_text("tomorrow")

    user.type_into(form.get_by_label("New item"), "Service the boiler")
    enter_date(user, form.get_by_label("Due"), later)
    form.get_by_label("Repeats").select_option("yearly")
    user.activate(form.get_by_role("button", name="Add", exact=True))
    expect(page.get_by_role("status")).to_have_text("Added #2.")
    expect(due_of(item(page, 2))).to_have_attribute("datetime", later.isoformat())
    expect(due_of(item(page, 2))).to_have_text(readable(later, today))
    expect(item(page, 2).locator(".due")).to_contain_text("repeats yearly")
    expect(item(page, 2)).not_to_have_class(re.compile("overdue"))
    exported = [
        (found["title"], found["due"], found["repeat"]) for found in page.request.get("/export.json").json()["items"]
    ]
    assert exported == [
        ("Renew the passport", tomorrow.isoformat(), ""),
        ("Service the boiler", later.isoformat(), "yearly"),
    ]


def today_item(page, list_path, no):
    """Return the /today page's entry for item #no of the list at list_path (numbers repeat across lists)."""
    return page.locator(f'.todo-list li[data-list="{list_path.rsplit("/", 1)[1]}"][data-no="{no}"]')


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_overdue_items_are_on_the_today_page_and_ticked_off_there(new_page, site, javascript):
    """Overdue in words on the list and on /today with their lists' names; ticked off there, a repeat comes back."""
    page = new_page(java_script_enabled=javascript, locale="en-US")
    user = Mouse(page)
    seed(page, f"late-{'js' if javascript else 'nojs'}", [])
    today = server_today(page)
    first = "/lists/" + str(page.request.get("/export.json").json()["lists"][0]["id"])
    page.goto("/")
    add_dated(page, "Pay the gas bill", today - timedelta(days=2))  # To do's #1
    chores = make_list(page, "Chores")
    form = page.locator("form.new-item")
    form.get_by_label("New item").fill("Water the plants")
    enter_date(user, form.get_by_label("Due"), today - timedelta(days=3))
    form.get_by_label("Repeats").select_option("weekly")
    form.get_by_role("button", name="Add", exact=True).click()
    add_items(page, ["Call the bank", "Book the dentist"])
    add_dated(page, "Take out the bins", today)
    item(page, 2).get_by_role("link", name="Edit #2").click()  # a date given afterwards, on the edit page
    enter_date(user, page.get_by_label("Due"), today - timedelta(days=1))
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(site + chores)

    for no, words in ((1, "3 days overdue"), (2, "1 day overdue")):
        expect(item(page, no)).to_have_class(re.compile(r"\boverdue\b"))
        expect(due_of(item(page, no))).to_have_text(words)
    expect(due_of(item(page, 2))).to_have_attribute("datetime", (today - timedelta(days=1)).isoformat())
    expect(item(page, 1).locator(".due")).to_contain_text("repeats weekly")
    expect(item(page, 3)).not_to_have_class(re.compile("overdue"))
    expect(item(page, 3).locator(".due")).to_have_count(0)
    expect(item(page, 4)).not_to_have_class(re.compile("overdue"))
    expect(due_of(item(page, 4))).to_have_text("today")

    page.get_by_role("navigation", name="Account").get_by_role("link", name="Today", exact=True).click()
    expect(page).to_have_url(site + "/today")
    expect(page.get_by_role("heading", level=1)).to_have_text("Today")
    expect(titles(page)).to_have_text(["Water the plants", "Pay the gas bill", "Call the bank", "Take out the bins"])
    entries = [
        (chores, 1, "Chores", True),
        (first, 1, "To do", True),
        (chores, 2, "Chores", True),
        (chores, 4, "Chores", False),
    ]
    for path, no, list_name, late in entries:
        entry = today_item(page, path, no)
        expect(entry.get_by_role("link", name=list_name, exact=True)).to_have_attribute("href", path)
        if late:
            expect(entry).to_have_class(re.compile(r"\boverdue\b"))
            expect(entry.locator(".due")).to_contain_text("overdue")
        else:
            expect(entry).not_to_have_class(re.compile("overdue"))

    today_item(page, chores, 1).get_by_role("button", name=re.compile(r"^#1 ")).click()  # the weekly one
    expect(page).to_have_url(site + "/today")  # stays where it was ticked off
    expect(titles(page)).to_have_text(["Pay the gas bill", "Call the bank", "Take out the bins"])
    page.get_by_role("link", name="Chores", exact=True).first.click()
    expect(page).to_have_url(site + chores)
    expect(item(page, 1)).to_have_class("completed")  # done: its date stays, no longer overdue, no repeat
    expect(item(page, 1).locator(".due")).not_to_contain_text("repeats")
    following = today + timedelta(days=4)  # three days ago, plus a week
    expect(item(page, 5).locator(".title")).to_have_text("Water the plants")
    expect(due_of(item(page, 5))).to_have_attribute("datetime", following.isoformat())
    expect(due_of(item(page, 5))).to_have_text(readable(following, today))
    expect(item(page, 5).locator(".due")).to_contain_text("repeats weekly")
    expect(item(page, 5)).not_to_have_class(re.compile("overdue"))

    page.goto("/today")
    for path, no in ((first, 1), (chores, 2), (chores, 4)):
        today_item(page, path, no).get_by_role("button", name=re.compile(rf"^#{no} ")).click()
        expect(page).to_have_url(site + "/today")
        expect(today_item(page, path, no)).to_have_count(0)
    expect(page.get_by_text("Nothing is due today.")).to_be_visible()


def get_without_cookies(url):
    """GET the address as a calendar app does: no cookie, no session."""
    return requests.get(url, timeout=10, allow_redirects=False)


def test_the_account_page_sets_a_time_zone_and_makes_a_calendar_address(new_page, site):
    """A time zone from the select; a calendar address shown once, serving the item; replaced, the old one is 404."""
    page = new_page(locale="en-US")
    seed(page, "subscriber", [])
    due = server_today(page) + timedelta(days=10)
    page.goto("/")
    add_dated(page, "Renew the passport", due)
    page.get_by_role("navigation", name="Account").get_by_role("link", name="subscriber").click()
    expect(page).to_have_url(site + "/account")

    zone = page.get_by_label(re.compile("are reckoned where you are"))
    zone.select_option("Pacific/Kiritimati")  # UTC+14: its today is often not UTC's
    days = {datetime.now(ZoneInfo("Pacific/Kiritimati")).date()}
    page.locator("form[action='/account/timezone']").get_by_role("button", name="Save").click()
    days.add(datetime.now(ZoneInfo("Pacific/Kiritimati")).date())
    expect(page.get_by_role("status")).to_have_text("Your time zone is Pacific/Kiritimati.")
    expect(zone).to_have_value("Pacific/Kiritimati")
    shown = [f"Today is {day:%A} {day.day} {day:%B}." for day in sorted(days)]
    expect(page.get_by_text(re.compile("|".join(map(re.escape, shown))))).to_be_visible()

    page.get_by_role("button", name="Make a calendar address").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your new calendar address is below. Any earlier one no longer works."
    )
    old = page.locator(".calendar-address a").get_attribute("href")
    assert re.fullmatch(r"/calendar/[A-Za-z0-9_-]{43}\.ics", old), old
    answer = get_without_cookies(site + old)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/calendar")
    assert "SUMMARY:Renew the passport" in answer.text.splitlines()
    assert f"DTSTART;VALUE=DATE:{due:%Y%m%d}" in answer.text.splitlines()

    page.reload()
    expect(page.locator(".calendar-address")).to_have_count(0)  # shown once: the site keeps only its hash
    expect(page.get_by_text("Your calendar address is on.")).to_be_visible()
    page.get_by_role("button", name="Replace the calendar address").click()
    new = page.locator(".calendar-address a").get_attribute("href")
    assert new != old
    assert get_without_cookies(site + old).status_code == 404
    assert "SUMMARY:Renew the passport" in get_without_cookies(site + new).text.splitlines()


# --- Accessibility ----------------------------------------------------------------
# axe-core (pinned in package.json, installed with `npm ci`) runs inside each rendered page:
# labels and names of every control, landmarks, headings, and contrast from the computed colours.


def seed(page, username, items, done=()):
    """Register a user in this page's context and add the items, marking the given numbers done."""
    page.goto("/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/$"))
    for title in items:
        page.get_by_label("New item").fill(title)
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_role("status")).to_have_text(re.compile("Added"))
    for no in done:
        toggle(page, no).click()
        expect(item(page, no)).to_have_class("completed")
    page.goto("/")


def axe_violations(page):
    """Run axe-core's WCAG 2.1 A/AA and best-practice rules in the page; return the violations, readable."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
            resultTypes: ["violations"],
        })"""
    )
    return [
        f"{violation['id']}: {violation['help']} at {[node['target'] for node in violation['nodes']]}"
        + "".join(f"\n    {node['failureSummary']}" for node in violation["nodes"][:2])
        for violation in result["violations"]
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe(new_page, site, scheme):
    """Sign-in, sign-up, the lists, a shared list as owner and as member, errors, account, 404: no violations."""
    require(AXE.exists(), f"axe-core is not installed at {AXE}: run npm ci")
    page = new_page(bypass_csp=True, color_scheme=scheme)  # CSP would refuse the injected axe script
    checked = {}
    page.goto("/login")
    checked["sign-in"] = axe_violations(page)
    page.goto("/register")
    page.get_by_label("Username").fill("x")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_be_visible()
    checked["sign-up with an error"] = axe_violations(page)
    seed(page, f"axe-{scheme}", ["Renew passport", "Book dentist", "Fix the bike light"], done=[2])
    checked["list"] = axe_violations(page)
    page.get_by_label("New item").fill(" ")
    page.get_by_label("New item").press("Enter")
    expect(page.get_by_role("alert")).to_be_visible()
    checked["list with an error"] = axe_violations(page)
    page.goto("/")
    item(page, 3).get_by_role("link", name="Edit #3").click()
    page.get_by_label("Title").fill("x" * 501)  # over the limit
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_be_visible()
    checked["edit with an error"] = axe_violations(page)
    page.goto("/completed")
    checked["completed filter"] = axe_violations(page)
    page.goto("/no-such-page")
    checked["404"] = axe_violations(page)

    member_name = f"axe-member-{scheme}"
    member = new_page(bypass_csp=True, color_scheme=scheme)
    seed(member, member_name, [])
    page.goto("/lists")
    checked["lists"] = axe_violations(page)
    page.get_by_label("Name of the new list").fill(" ")
    page.get_by_role("button", name="Make list").click()
    expect(page.get_by_role("alert")).to_be_visible()
    checked["lists with an error"] = axe_violations(page)
    path = make_list(page, "Groceries")
    add_items(page, ["Oat milk", "Sourdough bread", "Apples"])
    toggle(page, 2).click()
    expect(item(page, 2)).to_have_class("completed")
    share(page, member_name)
    checked["shared list, the owner's view with its members"] = axe_violations(page)
    page.get_by_label("Share with (username)").fill(member_name)
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(f"{member_name} shares this list already.")
    checked["shared list with a sharing error"] = axe_violations(page)
    page.goto(path)
    page.get_by_text("Add several at once").click()
    expect(page.get_by_label("One item a line")).to_be_visible()
    checked["list with add-several open"] = axe_violations(page)
    page.get_by_label("One item a line").fill("Tea\n" + "x" * 501)
    page.get_by_role("button", name="Add them all").click()
    expect(page.get_by_role("alert")).to_be_visible()
    checked["add-several with an error"] = axe_violations(page)
    page.goto("/account")
    expect(page.get_by_text(f"Groceries, shared with {member_name}")).to_be_visible()
    checked["account with a shared list"] = axe_violations(page)
    member.goto("/lists")
    expect(lists_index(member)).to_have_text(["To do", "Groceries"])
    checked["lists as a member"] = axe_violations(member)
    member.goto(path)
    expect(member.get_by_role("heading", name="Sharing")).to_be_visible()
    checked["shared list, a member's view"] = axe_violations(member)
    found = {name: violations for name, violations in checked.items() if violations}
    assert not found, "\n".join(f"{name}:\n  " + "\n  ".join(v) for name, v in found.items())


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_date_pages_pass_axe(new_page, site, scheme):
    """Dated and overdue items on a list and on /today, /today empty, the date fields, the account's calendar: clean."""
    require(AXE.exists(), f"axe-core is not installed at {AXE}: run npm ci")
    page = new_page(bypass_csp=True, color_scheme=scheme, locale="en-US")
    checked = {}
    seed(page, f"axe-dates-{scheme}", [])
    today = server_today(page)
    expect(page.get_by_text("Nothing is due today.")).to_be_visible()
    checked["today, empty"] = axe_violations(page)
    page.goto("/")
    add_dated(page, "Renew passport", today + timedelta(days=30))
    add_dated(page, "Water the plants", today - timedelta(days=2), "weekly")
    add_dated(page, "Pay the rent", today, "monthly")
    add_dated(page, "Call grandma", today + timedelta(days=1))
    add_dated(page, "Return the library books", today - timedelta(days=5))
    add_dated(page, "Plan the holidays")
    toggle(page, 5).click()
    expect(item(page, 5)).to_have_class("completed")
    expect(page.locator(".todo-list li.overdue")).to_have_count(1)
    checked["list with dated, repeating and overdue items"] = axe_violations(page)
    page.goto("/today")
    expect(titles(page)).to_have_text(["Water the plants", "Pay the rent"])
    checked["today with items"] = axe_violations(page)
    page.goto("/items/2/edit")
    expect(page.get_by_label("Due")).to_have_value((today - timedelta(days=2)).isoformat())
    expect(page.get_by_label("Repeats")).to_have_value("weekly")
    checked["edit with the date fields"] = axe_violations(page)
    page.goto("/account")
    page.get_by_label(re.compile("are reckoned where you are")).select_option("Europe/Paris")
    page.locator("form[action='/account/timezone']").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your time zone is Europe/Paris.")
    page.get_by_role("button", name="Make a calendar address").click()
    expect(page.locator(".calendar-address a")).to_be_visible()
    checked["account with a new calendar address and the time-zone select"] = axe_violations(page)
    found = {name: violations for name, violations in checked.items() if violations}
    assert not found, "\n".join(f"{name}:\n  " + "\n  ".join(v) for name, v in found.items())


# --- Screenshots ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam(browser, site):
    """Return sam's browser state and his Groceries list, shared with alex: five items, two done, three dated."""
    contexts = [browser.new_context(base_url=site, locale="en-US") for _ in range(2)]
    try:
        alex, page = (context.new_page() for context in contexts)
        seed(alex, "alex", [])
        seed(page, "sam", [])
        today = server_today(page)
        path = make_list(page, "Groceries")
        add_dated(page, "Oat milk, two cartons", today + timedelta(days=1))
        add_dated(page, "Sourdough bread")
        add_dated(page, "Apples for the week", today + timedelta(days=3), "weekly")
        add_dated(page, "Coffee beans, the dark roast")
        add_dated(page, "Tomatoes for Sunday's sauce", today - timedelta(days=2))
        for no in (2, 4):
            toggle(page, no).click()
            expect(item(page, no)).to_have_class("completed")
        share(page, "alex")
        return contexts[1].storage_state(), path
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_screenshots(new_page, sam, tmp_path, scheme, size):
    """Take the README's screenshots of a shared list; the page must fit the screen, with no sideways scroll."""
    state, path = sam
    viewport = PHONE if size == "phone" else DESKTOP
    page = new_page(
        storage_state=state,
        locale="en-US",  # the date field's mm/dd/yyyy, as in every test here
        color_scheme=scheme,
        viewport=viewport,
        device_scale_factor=2 if size == "phone" else 1,
        is_mobile=size == "phone",
        has_touch=size == "phone",
    )
    page.goto(path)
    expect(titles(page)).to_have_count(5)
    expect(due_of(item(page, 1))).to_have_text("tomorrow")
    expect(item(page, 3).locator(".due")).to_contain_text("repeats weekly")
    expect(due_of(item(page, 5))).to_have_text("2 days overdue")
    expect(page.locator(".sharing")).to_have_text("Yours, shared with alex.")
    expect(page.get_by_role("list", name="Members")).to_contain_text("alex")
    page.evaluate("() => document.activeElement.blur()")  # no focus ring or caret in the picture
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width}px wide on a {viewport['width']}px screen"
    target = ROOT / SCREENSHOTS if SCREENSHOTS else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    shot = target / f"list-{scheme}-{size}.png"
    page.screenshot(path=str(shot), animations="disabled", caret="hide", full_page=True)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
