% # The due date and repeat fields of an add or edit form; `prefix` keeps their ids apart on one page.
% # Each label and its field in one span: on a phone they wrap together, never a label alone at a line's end.
<div class="item-dates">
  <span class="field">
    <label for="{{prefix}}-due">Due</label>
    <input type="date" id="{{prefix}}-due" name="due" value="{{due}}" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" placeholder="YYYY-MM-DD">
  </span>
  <span class="field">
    <label for="{{prefix}}-repeat">Repeats</label>
    <select id="{{prefix}}-repeat" name="repeat">
      % for value, label in (("", "never"), ("daily", "daily"), ("weekly", "weekly"), ("monthly", "monthly"), ("yearly", "yearly")):
      % if value == repeat:
      <option value="{{value}}" selected>{{label}}</option>
      % else:
      <option value="{{value}}">{{label}}</option>
      % end
      % end
    </select>
  </span>
</div>
