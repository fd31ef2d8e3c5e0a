// The console's own script: "select all" checkboxes and the ECharts charts, whose data the server
// embeds in the page as <script type="application/json"> (no request, no inline script: CSP-safe).
(function () {
  "use strict";

  function selectAll() {
    document.querySelectorAll("input[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        var name = box.getAttribute("data-select-all");
        box.form.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (b) {
          b.checked = box.checked;
        });
      });
    });
  }

  var PALETTE = ["#0b57a4", "#b45309", "#14532d", "#8b1c1c", "#5b21b6", "#0e7490", "#4b5563"];

  function option(kind, rows) {
    if (kind === "groupbar") {
      // {categories: [...], series: [{name, data: [...]}]}: one bar per series and category.
      var many = rows.categories.length > 3;
      return {
        color: PALETTE, animation: false, tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 40, right: 16, top: 36, bottom: 60, containLabel: true },
        xAxis: { type: "category", data: rows.categories, axisLabel: { interval: 0, rotate: many ? 30 : 0 } },
        yAxis: { type: "value", minInterval: 1 },
        series: rows.series.map(function (s) { return { type: "bar", name: s.name, data: s.data }; })
      };
    }
    var names = rows.map(function (r) { return r.name; });
    var values = rows.map(function (r) { return r.value; });
    if (kind === "pie") {
      return {
        color: PALETTE, animation: false, tooltip: { trigger: "item" },
        series: [{ type: "pie", radius: ["30%", "55%"], data: rows, label: { formatter: "{b}\n{c}", overflow: "break" } }]
      };
    }
    return {
      color: PALETTE, animation: false, tooltip: { trigger: "axis" },
      grid: { left: 40, right: 16, top: 16, bottom: 60, containLabel: true },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0, rotate: names.length > 4 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: kind === "line" ? "line" : "bar", data: values }]
    };
  }

  function charts() {
    if (typeof window.echarts === "undefined") { return; }
    var made = [];
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var data = document.getElementById("data-" + el.getAttribute("data-chart"));
      if (!data) { return; }
      var rows = JSON.parse(data.textContent || "[]");
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option(el.getAttribute("data-kind"), rows));
      el.setAttribute("data-drawn", "1");
      made.push(chart);
    });
    window.addEventListener("resize", function () { made.forEach(function (c) { c.resize(); }); });
  }

  function start() { selectAll(); charts(); }
  // Deferred scripts (echarts comes after this one) have all run when DOMContentLoaded fires.
  if (document.readyState === "complete") {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
