% rebase("base", title="Your account")
<section class="card narrow" aria-labelledby="account-heading">
  <h1 id="account-heading">Your account</h1>
  <p>Signed in as <strong>{{user["username"]}}</strong>. <a href="/">Back to your list</a></p>
  % if error:
  <p class="error" id="form-error" role="alert">{{error}}</p>
  % end

  <h2 id="timezone-heading">Time zone</h2>
  <form class="inline-form" method="post" action="/account/timezone" aria-labelledby="timezone-heading">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <label for="timezone">"Today" and "overdue" are reckoned where you are. Today is {{f"{today:%A} {today.day} {today:%B}"}}.</label>
    <select id="timezone" name="timezone">
      % for name in time_zones:
      % if name == timezone:
      <option selected>{{name}}</option>
      % else:
      <option>{{name}}</option>
      % end
      % end
    </select>
    <button>Save</button>
  </form>

  <h2 id="calendar-heading">Calendar</h2>
  % if new_calendar:
  <p>Your calendar address, shown this once (copy it now; it cannot be shown again):</p>
  <p class="calendar-address"><a href="/calendar/{{new_calendar}}.ics">/calendar/{{new_calendar}}.ics</a></p>
  <p class="hint">Subscribe to it by its full address, this site's address in front. Anyone who holds it can read the titles and dates of your items that are due.</p>
  % elif calendar_on:
  <p>Your calendar address is on. It was shown when it was made; make a new one if you have lost it.</p>
  % else:
  <p>A secret address that phone and desktop calendars subscribe to: every item with a due date, on its day.</p>
  % end
  <form class="inline-form" method="post" action="/account/calendar" aria-labelledby="calendar-heading">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <button>{{"Replace the calendar address" if calendar_on else "Make a calendar address"}}</button>
  </form>
  % if calendar_on:
  <form class="inline-form" method="post" action="/account/calendar/delete">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <button>Turn the calendar address off</button>
  </form>
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
