% # An item's due date as people read it, the ISO date in datetime; overdue in words and an icon, not colour alone.
<span class="due">
  % if late:
  <span class="overdue-icon" aria-hidden="true">&#9888;</span>
  % end
  <time datetime="{{due}}">{{when}}</time>
  % if repeat:
  <span class="repeat">&middot; repeats {{repeat}}</span>
  % end
</span>
