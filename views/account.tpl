% rebase("base", title="Your account")
<section class="card narrow" aria-labelledby="account-heading">
  <h1 id="account-heading">Your account</h1>
  <p>Signed in as <strong>{{user["username"]}}</strong>. <a href="/">Back to your list</a></p>
  % if error:
  <p class="error" id="form-error" role="alert">{{error}}</p>
  % end

  <h2 id="password-heading">Change password</h2>
  <form class="stacked" method="post" action="/account/password" aria-labelledby="password-heading">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <label for="current-password">Current password</label>
    <input id="current-password" name="password" type="password" autocomplete="current-password" required>
    <label for="new-password">New password</label>
    <input id="new-password" name="new_password" type="password" autocomplete="new-password" required
           aria-describedby="new-password-hint">
    <p class="hint" id="new-password-hint">At least 8 characters. Every other browser is signed out.</p>
    <button class="primary">Change password</button>
  </form>

  <h2 id="everywhere-heading">Sign out everywhere</h2>
  <form method="post" action="/account/logout-all" aria-labelledby="everywhere-heading">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <p>Signs out every browser and device that is signed in as you, this one too.</p>
    <button>Sign out everywhere</button>
  </form>

  <h2 id="delete-heading">Delete account</h2>
  <form class="stacked" method="post" action="/account/delete" aria-labelledby="delete-heading">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <p>Deletes your account, your lists and all their items for good. Your username becomes free again.</p>
    % if shared:
    <p id="shared-lists-warning">These lists are shared, and go for their members too:</p>
    <ul aria-labelledby="shared-lists-warning">
      % for name, members in shared:
      <li>{{name}}, shared with {{", ".join(members)}}</li>
      % end
    </ul>
    % end
    <label for="delete-password">Password</label>
    <input id="delete-password" name="password" type="password" autocomplete="current-password" required>
    <button class="danger">Delete my account</button>
  </form>
</section>
