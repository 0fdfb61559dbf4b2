% rebase("base", title="Today")
<section class="card todo" aria-labelledby="today-heading">
  <h1 id="today-heading">Today</h1>
  <p class="sharing">Due today or earlier, in every list you own or share. Today is <time datetime="{{today.isoformat()}}">{{f"{today:%A} {today.day} {today:%B}"}}</time>.</p>
  % if items:
  <form class="list" method="post" action="/today">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="hidden" name="back" value="{{back}}">
    <ul class="todo-list">
      % for item in items:
      % base, no, due = "/lists/" + str(item["list_id"]), item["no"], item["due"]
      % when, late = describe(due, today)
      % if late:
      <li data-list="{{item["list_id"]}}" data-no="{{no}}" class="active overdue">
      % else:
      <li data-list="{{item["list_id"]}}" data-no="{{no}}" class="active">
      % end
        <button class="toggle" formaction="{{base}}/items/{{no}}/toggle" aria-pressed="false">
          <span class="check" aria-hidden="true"></span>
          <span class="no">#{{no}}</span> <span class="title">{{item["title"]}}</span>
          % include("item_due", due=due, when=when, late=late, repeat=item["repeat"])
        </button>
        <a class="list-name" href="{{base}}">{{item["list_name"]}}</a>
        <a class="edit" href="{{base}}/items/{{no}}/edit?back=/today">Edit<span class="visually-hidden"> #{{no}} of {{item["list_name"]}}</span></a>
        <button class="delete" formaction="{{base}}/items/{{no}}/delete" aria-label="Delete #{{no}} of {{item["list_name"]}}">&times;</button>
      </li>
      % end
    </ul>
    % if page > 1 or more:
    % include("pages", page=page, more=more, path=path)
    % end
  </form>
  % else:
  <p class="empty">Nothing is due today. Give items a due date and they show up here on the day.</p>
  % end
</section>
