// The instruction workbench: select every row of the page, a row's instructions, and count the selection.
// Without JavaScript each instruction's own checkbox still works.
(function () {
  "use strict";

  function boxes(scope) {
    return Array.prototype.slice.call((scope || document).querySelectorAll("input.ins-select"));
  }

  function mirror(box, children) {
    const ticked = children.filter(function (c) { return c.checked; }).length;
    box.checked = children.length > 0 && ticked === children.length;
    box.indeterminate = ticked > 0 && ticked < children.length;
  }

  function refresh() {
    const all = boxes();
    const count = document.getElementById("wb-selected");
    if (count) count.textContent = String(all.filter(function (c) { return c.checked; }).length);
    document.querySelectorAll("tbody.wb-row").forEach(function (row) {
      const rowBox = row.querySelector("input.row-select");
      if (rowBox) mirror(rowBox, boxes(row));
    });
    const head = document.getElementById("select-all");
    if (head) mirror(head, all);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const table = document.getElementById("wb-table");
    if (!table) return;
    table.addEventListener("change", function (event) {
      const target = event.target;
      if (target.id === "select-all") {
        boxes().forEach(function (c) { c.checked = target.checked; });
      } else if (target.classList.contains("row-select")) {
        boxes(target.closest("tbody")).forEach(function (c) { c.checked = target.checked; });
      }
      refresh();
    });
    refresh();
  });
})();
