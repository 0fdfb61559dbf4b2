% rebase("base", title="Your list")
<section class="card todo" aria-labelledby="list-heading">
  <h1 id="list-heading">Your list</h1>
  <form class="new-item" method="post" action="/items">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="hidden" name="back" value="{{back}}">
    <label for="new-title" class="visually-hidden">New item</label>
    <input id="new-title" name="title" value="{{title}}" placeholder="What needs to be done?"
           autofocus autocomplete="off" required
           % if error:
           aria-invalid="true" aria-describedby="form-error"
           % end
           >
    <button class="primary">Add</button>
  </form>
  % if error:
  <p class="error" id="form-error" role="alert">{{error}}</p>
  % end
  % if total:
  % # One form holds every button of the list; each button posts to its own
  % # action (formaction), so the page carries the form token once, not per item.
  <form class="list" method="post" action="/items/toggle-all">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="hidden" name="back" value="{{back}}">
    <p class="toggle-all">
      <button class="link-button" formaction="/items/toggle-all">{{"Mark all as not done" if not left else "Mark all as done"}}</button>
    </p>
    <ul class="todo-list">
      % for item in items:
      % no = item["no"]
      % # Two written-out variants instead of {{...}} for the state: two escaped values fewer per item.
      % if item["done"]:
      <li data-no="{{no}}" class="completed">
        <button class="toggle" formaction="/items/{{no}}/toggle" aria-pressed="true">
      % else:
      <li data-no="{{no}}" class="active">
        <button class="toggle" formaction="/items/{{no}}/toggle" aria-pressed="false">
      % end
          <span class="check" aria-hidden="true"></span>
          <span class="no">#{{no}}</span> <span class="title">{{item["title"]}}</span>
        </button>
        <a class="edit" href="/items/{{no}}/edit">Edit<span class="visually-hidden"> #{{no}}</span></a>
        <button class="delete" formaction="/items/{{no}}/delete" aria-label="Delete #{{no}}">&times;</button>
      </li>
      % end
    </ul>
    % if page > 1 or more:
    <nav class="pages" aria-label="Pages">
      % if page > 1:
      <a href="{{path}}?page={{page - 1}}" rel="prev">Previous page</a>
      % end
      <span aria-current="page">Page {{page}}</span>
      % if more:
      <a href="{{path}}?page={{page + 1}}" rel="next">Next page</a>
      % end
    </nav>
    % end
    % if not items:
    <p class="empty">{{"Nothing left to do." if path == "/active" else "Nothing done yet."}}</p>
    % end
    <footer class="list-footer">
      <span class="count">{{left}} {{"item" if left == 1 else "items"}} left</span>
      <nav aria-label="Filter">
        <ul class="filters">
          % for href, label in (("/", "All"), ("/active", "Active"), ("/completed", "Completed")):
          <li><a href="{{href}}" aria-current="{{"page" if href == path else "false"}}">{{label}}</a></li>
          % end
        </ul>
      </nav>
      % if total - left:
      <button class="link-button" formaction="/items/clear-completed">Clear completed</button>
      % end
    </footer>
  </form>
  % else:
  <p class="empty">Nothing here yet. Add your first item above.</p>
  % end
</section>
