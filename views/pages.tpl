% # The links between a long list's pages: ?page=2 and on.
<nav class="pages" aria-label="Pages">
  % if page > 1:
  <a href="{{path}}?page={{page - 1}}" rel="prev">Previous page</a>
  % end
  <span aria-current="page">Page {{page}}</span>
  % if more:
  <a href="{{path}}?page={{page + 1}}" rel="next">Next page</a>
  % end
</nav>
