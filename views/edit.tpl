% rebase("base", title=f"Edit #{no}")
<section class="card narrow" aria-labelledby="edit-heading">
  <h1 id="edit-heading">Edit #{{no}}</h1>
  % if error:
  <p class="error" id="form-error" role="alert">{{error}}</p>
  % end
  <form class="stacked" method="post" action="{{found["base"]}}/items/{{no}}/edit">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="hidden" name="back" value="{{back}}">
    <label for="edit-title">Title</label>
    <input id="edit-title" name="title" value="{{title}}" autofocus autocomplete="off"
           aria-describedby="edit-hint">
    <p class="hint" id="edit-hint">Leave it empty to delete the item.</p>
    % include("item_dates", prefix="edit", due=due, repeat=repeat)
    <button class="primary">Save</button>
  </form>
  <p class="aside"><a href="{{back}}">Back to {{found["name"]}}</a></p>
</section>
