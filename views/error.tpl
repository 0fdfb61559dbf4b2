% rebase("base", title=error.status_line)
<section class="card narrow" aria-labelledby="error-heading">
  <h1 id="error-heading">{{error.status_line}}</h1>
  <p role="alert">{{error.body}}</p>
  <p><a href="/">Back to your list</a></p>
</section>
