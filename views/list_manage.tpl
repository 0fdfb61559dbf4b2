% # The list's settings: its owner renames, shares, removes and deletes; a member may leave.
% action = "/lists/" + str(found["id"])
<section class="card manage" aria-labelledby="manage-heading">
  <h2 id="manage-heading">{{"Share and manage this list" if owner else "Sharing"}}</h2>
  % if manage_error:
  <p class="error" id="manage-error" role="alert">{{manage_error}}</p>
  % end
  % if owner:
  <form class="inline-form" method="post" action="{{action}}/members">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <label for="share-username">Share with (username)</label>
    <input id="share-username" name="username" autocomplete="off" autocapitalize="none" spellcheck="false" required>
    <button>Share</button>
  </form>
  % if members:
  <ul class="members" aria-label="Members">
    % for member in members:
    <li>
      <span>{{member}}</span>
      <form method="post" action="{{action}}/members/remove">
        <input type="hidden" name="csrf_token" value="{{csrf_token}}">
        <input type="hidden" name="username" value="{{member}}">
        <button class="link-button">Remove<span class="visually-hidden"> {{member}}</span></button>
      </form>
    </li>
    % end
  </ul>
  % end
  <form class="inline-form" method="post" action="{{action}}/rename">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <label for="rename-name">Name</label>
    <input id="rename-name" name="name" value="{{found["name"]}}" autocomplete="off" required>
    <button>Rename</button>
  </form>
  % if found["id"] != user["first_list_id"]:
  <form method="post" action="{{action}}/delete">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <button class="danger">Delete this list and its items</button>
  </form>
  % end
  % else:
  <p>{{found["owner"]}} shares this list with you. You can add, edit, tick off and delete its items.</p>
  <form method="post" action="{{action}}/leave">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <button>Leave this list</button>
  </form>
  % end
</section>
