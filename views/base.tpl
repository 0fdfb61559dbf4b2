<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
% # Entities (&middot;, &times;) rather than the characters: a page of plain
% # ASCII is turned into UTF-8 bytes in one copy, not character by character.
<title>{{title}} &middot; todo</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="site-header">
  <a class="brand" href="/"><img src="/static/icon.svg" alt="" width="24" height="24"> todo</a>
  % if user:
  <nav class="account-nav" aria-label="Account">
    <a href="/today">Today</a>
    <a href="/lists">Lists</a>
    <a href="/account">{{user["username"]}}</a>
    <form method="post" action="/logout">
      <input type="hidden" name="csrf_token" value="{{csrf_token}}">
      <button class="link-button">Sign out</button>
    </form>
  </nav>
  % end
</header>
<main id="main" tabindex="-1">
  % if flash:
  <p class="flash" role="status">{{flash}}</p>
  % end
{{!base}}
</main>
<footer class="site-footer">
  <p>Your list lives in this site's database, never in anyone's browser but yours.</p>
</footer>
</body>
</html>
