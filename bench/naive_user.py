"""A naive app that keeps who is asking in a module global, set by each request.

    waitress-serve --threads=8 naive_user:app

One request at a time, everybody gets their own list. Several at once, the server's threads
share the one global: a thread sets it to alice, another sets it to bob before the first one
reads it, and alice is sent bob's list. bench/demo_other_user.py shows it.
"""

import time

import bottle

# Sixteen users, as many as bench/demo_other_user.py sends at once.
USERS = tuple("alice bob carol dave erin frank grace heidi ivan judy ken laura mike nina oscar peggy".split())
ITEMS = {name: [f"{name}'s item {number}" for number in (1, 2, 3)] for name in USERS}

current_user = None  # The mistake: one variable for the whole process and all its threads.

app = bottle.Bottle()


@app.get("/")
def list_page():
    """Answer the list of the user the (unsigned, for brevity) cookie names."""
    global current_user
    current_user = bottle.request.get_cookie("user")
    time.sleep(0.005)  # Stands for the database query: meanwhile the server's other threads run.
    return {"items": ITEMS[current_user]}
