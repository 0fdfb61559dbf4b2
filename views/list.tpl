% rebase("base", title=found["name"])
% base = found["base"]
% owner = found["owner_id"] == user["id"]
<section class="card todo" aria-labelledby="list-heading">
  <h1 id="list-heading">{{found["name"]}}</h1>
  % if members:
  <p class="sharing">{{"Yours" if owner else "Owned by " + found["owner"]}}, shared with {{", ".join(members)}}.</p>
  % elif not owner:
  <p class="sharing">Owned by {{found["owner"]}}.</p>
  % end
  <form class="new-item" method="post" action="{{base}}/items">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="hidden" name="back" value="{{back}}">
    <label for="new-title" class="visually-hidden">New item</label>
    <input id="new-title" name="title" value="{{title}}" placeholder="What needs to be done?"
           autofocus autocomplete="off" required
           % if error and not titles:
           aria-invalid="true" aria-describedby="form-error"
           % end
           >
    <button class="primary">Add</button>
    % include("item_dates", prefix="new", due=due, repeat=repeat)
  </form>
  % if error:
  <p class="error" id="form-error" role="alert">{{error}}</p>
  % end
  % if titles:
  <details class="several" open>
  % else:
  <details class="several">
  % end
    <summary>Add several at once</summary>
    <form class="stacked" method="post" action="{{base}}/items">
      <input type="hidden" name="csrf_token" value="{{csrf_token}}">
      <input type="hidden" name="back" value="{{back}}">
      <label for="new-titles">One item a line</label>
      <textarea id="new-titles" name="titles" rows="5" aria-describedby="titles-hint"
                % if error and titles:
                aria-invalid="true"
                % end
                >{{titles}}</textarea>
      <p class="hint" id="titles-hint">Paste a shopping list or a file's lines: every line becomes an item, in order, or none does.</p>
      % include("item_dates", prefix="several", due=due, repeat=repeat)
      <button>Add them all</button>
    </form>
  </details>
  % if total:
  % # One form holds every button of the list; each button posts to its own
  % # action (formaction), so the page carries the form token once, not per item.
  <form class="list" method="post" action="{{base}}/items/toggle-all">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="hidden" name="back" value="{{back}}">
    <p class="toggle-all">
      <button class="link-button" formaction="{{base}}/items/toggle-all">{{"Mark all as not done" if not left else "Mark all as done"}}</button>
    </p>
    <ul class="todo-list">
      % for item in items:
      % no, due = item["no"], item["due"]
      % url = f"{base}/items/{no}"  # the item's address, escaped once for each of its three uses
      % if due:
      % when, late = describe(due, today, item["done"])
      % late = late and not item["done"]
      % end
      % # Written-out variants instead of {{...}} for the state: two escaped values fewer per item.
      % if item["done"]:
      <li data-no="{{no}}" class="completed">
        <button class="toggle" formaction="{{url}}/toggle" aria-pressed="true">
      % elif due and late:
      <li data-no="{{no}}" class="active overdue">
        <button class="toggle" formaction="{{url}}/toggle" aria-pressed="false">
      % else:
      <li data-no="{{no}}" class="active">
        <button class="toggle" formaction="{{url}}/toggle" aria-pressed="false">
      % end
          <span class="check" aria-hidden="true"></span>
          <span class="no">#{{no}}</span> <span class="title">{{item["title"]}}</span>
          % if due:
          % # Written here, not included: an include for each item would cost more than the rest of the item.
          <span class="due">
            % if late:
            <span class="overdue-icon" aria-hidden="true">&#9888;</span>
            % end
            <time datetime="{{due}}">{{when}}</time>
            % if item["repeat"]:
            <span class="repeat">&middot; repeats {{item["repeat"]}}</span>
            % end
          </span>
          % end
        </button>
        <a class="edit" href="{{url}}/edit">Edit<span class="visually-hidden"> #{{no}}</span></a>
        <button class="delete" formaction="{{url}}/delete" aria-label="Delete #{{no}}">&times;</button>
      </li>
      % end
    </ul>
    % if page > 1 or more:
    % include("pages", page=page, more=more, path=path)
    % end
    % if not items:
    <p class="empty">{{"Nothing left to do." if path.endswith("/active") else "Nothing done yet."}}</p>
    % end
    <footer class="list-footer">
      <span class="count">{{left}} {{"item" if left == 1 else "items"}} left</span>
      <nav aria-label="Filter">
        <ul class="filters">
          % for suffix, label in (("", "All"), ("/active", "Active"), ("/completed", "Completed")):
          % href = base + suffix or "/"
          <li><a href="{{href}}" aria-current="{{"page" if href == path else "false"}}">{{label}}</a></li>
          % end
        </ul>
      </nav>
      % if total - left:
      <button class="link-button" formaction="{{base}}/items/clear-completed">Clear completed</button>
      % end
    </footer>
  </form>
  % else:
  <p class="empty">Nothing here yet. Add your first item above.</p>
  % end
</section>
% include("list_manage", found=found, members=members, owner=owner)
