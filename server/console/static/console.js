/* The manager's trend charts: one ECharts line chart per metric, drawn from the JSON the
   page carries (no inline script: the page's Content-Security-Policy forbids it). */
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("series-data");
    if (!holder || typeof echarts === "undefined") return;
    var series = JSON.parse(holder.textContent || "[]");
    var days = series.map(function (p) { return p.bucket; });
    document.querySelectorAll(".chart").forEach(function (el) {
      var metric = el.getAttribute("data-metric");
      var chart = echarts.init(el, null, { renderer: "canvas" });
      chart.setOption({
        title: { text: el.getAttribute("data-label"), textStyle: { fontSize: 13 } },
        tooltip: { trigger: "axis" },
        grid: { left: 50, right: 16, top: 36, bottom: 28 },
        xAxis: { type: "category", data: days },
        yAxis: { type: "value" },
        series: [{ type: "line", smooth: true, data: series.map(function (p) { return p[metric]; }) }],
        animation: false
      });
      el.setAttribute("data-rendered", String(series.length));
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
  document.addEventListener("htmx:afterSettle", draw);
})();
