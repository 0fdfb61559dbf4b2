% registering = page == "register"
% rebase("base", title="Create an account" if registering else "Sign in")
<section class="card narrow" aria-labelledby="form-heading">
  <h1 id="form-heading">{{"Create an account" if registering else "Sign in"}}</h1>
  % if error:
  <p class="error" id="form-error" role="alert">{{error}}</p>
  % end
  <form class="stacked" method="post" action="/{{page}}">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <label for="username">Username</label>
    <input id="username" name="username" value="{{username}}" autocomplete="username" required autofocus
           autocapitalize="none" spellcheck="false"
           % if registering:
           aria-describedby="username-hint"
           % end
           >
    % if registering:
    <p class="hint" id="username-hint">3 to 32 letters, digits, dots, dashes or underscores.</p>
    % end
    <label for="password">Password</label>
    <input id="password" name="password" type="password" required
           autocomplete="{{"new-password" if registering else "current-password"}}"
           % if registering:
           aria-describedby="password-hint"
           % end
           >
    % if registering:
    <p class="hint" id="password-hint">At least 8 characters.</p>
    % end
    <button class="primary">{{"Create account" if registering else "Sign in"}}</button>
  </form>
  % if registering:
  <p class="aside">Have an account? <a href="/login">Sign in</a></p>
  % elif signup_open:
  <p class="aside">New here? <a href="/register">Create an account</a></p>
  % end
</section>
