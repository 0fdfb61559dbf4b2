% rebase("base", title="Your list")
% from html import escape
% # Every form here sends the same two hidden fields, and a page of 1,000 items
% # has 3,000 forms: escape them once for the page, not once per form.
% hidden_fields = f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}"><input type="hidden" name="back" value="{escape(path)}">'
<section class="card todo" aria-labelledby="list-heading">
  <h1 id="list-heading">Your list</h1>
  <form class="new-item" method="post" action="/items">
    {{!hidden_fields}}
    <label for="new-title" class="visually-hidden">New item</label>
    <input id="new-title" name="title" value="{{title}}" placeholder="What needs to be done?"
           autofocus autocomplete="off" required maxlength="500"
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
  <form class="toggle-all" method="post" action="/items/toggle-all">
    {{!hidden_fields}}
    <button class="link-button">{{"Mark all as not done" if not left else "Mark all as done"}}</button>
  </form>
  <ul class="todo-list">
    % for item in items:
    % no = item["no"]  # an integer: nothing to escape, so it is printed with "!" below
    <li data-no="{{!no}}"{{!' class="completed"' if item["done"] else ""}}>
      <form class="toggle" method="post" action="/items/{{!no}}/toggle">
        {{!hidden_fields}}
        <button class="check" aria-pressed="{{!"true" if item["done"] else "false"}}" aria-describedby="title-{{!no}}">
          <span class="visually-hidden">Done</span>
        </button>
      </form>
      <span class="item-text" id="title-{{!no}}"><span class="no">#{{!no}}</span> <span class="title">{{item["title"]}}</span></span>
      <details class="edit">
        <summary>Edit<span class="visually-hidden"> #{{!no}}</span></summary>
        <form method="post" action="/items/{{!no}}/edit">
          {{!hidden_fields}}
          <label for="edit-{{!no}}" class="visually-hidden">New title for #{{!no}} (empty deletes it)</label>
          <input id="edit-{{!no}}" name="title" value="{{item["title"]}}" maxlength="500" autocomplete="off">
          <button>Save</button>
        </form>
      </details>
      <form class="delete" method="post" action="/items/{{!no}}/delete">
        {{!hidden_fields}}
        <button class="delete-button" aria-label="Delete #{{!no}}"><span aria-hidden="true">×</span></button>
      </form>
    </li>
    % end
  </ul>
  % if not items:
  <p class="empty">{{"Nothing left to do." if path == "/active" else "Nothing done yet."}}</p>
  % end
  <footer class="list-footer">
    <span class="count">{{left}} {{"item" if left == 1 else "items"}} left</span>
    <nav aria-label="Filter">
      <ul class="filters">
        % for href, label in filters.items():
        <li><a href="{{href}}"{{!' aria-current="page"' if href == path else ""}}>{{label}}</a></li>
        % end
      </ul>
    </nav>
    % if total - left:
    <form method="post" action="/items/clear-completed">
      {{!hidden_fields}}
      <button class="link-button">Clear completed</button>
    </form>
    % end
  </footer>
  % else:
  <p class="empty">Nothing here yet. Add your first item above.</p>
  % end
</section>
