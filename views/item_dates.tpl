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
      % # Written out: a loop would escape each option's value and label on every page.
      % if repeat == "":
      <option value="" selected>never</option>
      % else:
      <option value="">never</option>
      % end
      % if repeat == "daily":
      <option value="daily" selected>daily</option>
      % else:
      <option value="daily">daily</option>
      % end
      % if repeat == "weekly":
      <option value="weekly" selected>weekly</option>
      % else:
      <option value="weekly">weekly</option>
      % end
      % if repeat == "monthly":
      <option value="monthly" selected>monthly</option>
      % else:
      <option value="monthly">monthly</option>
      % end
      % if repeat == "yearly":
      <option value="yearly" selected>yearly</option>
      % else:
      <option value="yearly">yearly</option>
      % end
    </select>
  </span>
</div>
