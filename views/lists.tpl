% rebase("base", title="Your lists")
<section class="card" aria-labelledby="lists-heading">
  <h1 id="lists-heading">Your lists</h1>
  <ul class="lists-index">
    % for entry in lists:
    <li data-list="{{entry["id"]}}">
      <a href="{{entry["base"]}}">{{entry["name"]}}</a>
      <span class="meta">
        % if entry["owner_id"] != user["id"]:
        {{entry["owner"]}}'s &middot;
        % elif entry["id"] == user["first_list_id"]:
        yours, your first &middot;
        % else:
        yours &middot;
        % end
        {{entry["not_done"]}} {{"item" if entry["not_done"] == 1 else "items"}} left
      </span>
    </li>
    % end
  </ul>
  <h2 id="new-list-heading">New list</h2>
  % if error:
  <p class="error" id="form-error" role="alert">{{error}}</p>
  % end
  <form class="new-item" method="post" action="/lists" aria-labelledby="new-list-heading">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <label for="list-name" class="visually-hidden">Name of the new list</label>
    <input id="list-name" name="name" value="{{list_name}}" placeholder="Groceries, work, the house..." autocomplete="off" required
           % if error:
           aria-invalid="true" aria-describedby="form-error"
           % end
           >
    <button class="primary">Make list</button>
  </form>
</section>
