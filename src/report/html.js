// Progressive enhancement of the findings table: filters by severity, family and target, and
// sorting by any column. The page is complete without it. Reads only the page's own DOM and
// writes no HTML (textContent only), so nothing a target sent can become markup here.
(function () {
  "use strict";
  var table = document.getElementById("findings");
  var form = document.getElementById("filters");
  if (!table || !form) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var shown = document.getElementById("shown");
  var selects = Array.prototype.slice.call(form.querySelectorAll("select"));
  function apply() {
    var n = 0;
    rows.forEach(function (row) {
      var ok = selects.every(function (s) {
        return s.value === "" || row.getAttribute("data-" + s.name) === s.value;
      });
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    if (shown) { shown.textContent = n + " of " + rows.length + " shown"; }
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, col) {
    var key = th.getAttribute("data-sort");
    if (!key) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    var ascending = true;
    button.addEventListener("click", function () {
      var sorted = rows.slice().sort(function (a, b) {
        var x = key === "rank" ? Number(a.getAttribute("data-rank")) : a.cells[col].textContent;
        var y = key === "rank" ? Number(b.getAttribute("data-rank")) : b.cells[col].textContent;
        var c = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? c : -c;
      });
      ascending = !ascending;
      sorted.forEach(function (row) { body.appendChild(row); });
    });
  });
  form.hidden = false;
  table.setAttribute("data-enhanced", "yes");
  apply();
})();
