/* Report charts (ECharts): data come from data-* attributes or the trend JSON route. */
(function () {
  "use strict";
  if (typeof echarts === "undefined") { return; }
  var cache = {};
  function load(url) {
    if (!cache[url]) {
      cache[url] = fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); });
    }
    return cache[url];
  }
  function draw(el, option) {
    var chart = echarts.init(el);
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  }
  var pct = function (v) { return v === null || v === undefined ? "—" : v.toFixed(1) + "%"; };
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var kind = el.getAttribute("data-chart");
    if (kind === "levels") {
      var values = JSON.parse(el.getAttribute("data-values"));
      var labels = JSON.parse(el.getAttribute("data-labels"));
      draw(el, {
        grid: { left: 90, right: 50, top: 10, bottom: 20 },
        xAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
        yAxis: { type: "category", data: labels, inverse: true },
        series: [{ type: "bar", data: values.map(function (v) { return v === null ? 0 : v; }),
                   label: { show: true, position: "right", formatter: function (p) { return pct(values[p.dataIndex]); } } }]
      });
      return;
    }
    load(el.getAttribute("data-src")).then(function (d) {
      if (kind === "trend") {
        draw(el, {
          tooltip: { trigger: "axis" },
          legend: { data: ["受理数", "化解数", "化解率"] },
          grid: { left: 40, right: 50, top: 35, bottom: 30 },
          xAxis: { type: "category", data: d.months },
          yAxis: [{ type: "value", minInterval: 1 }, { type: "value", max: 100, axisLabel: { formatter: "{value}%" } }],
          series: [
            { name: "受理数", type: "bar", data: d.accepted },
            { name: "化解数", type: "bar", data: d.resolved },
            { name: "化解率", type: "line", yAxisIndex: 1, data: d.resolution_rate, connectNulls: false }
          ]
        });
      } else if (kind === "types") {
        draw(el, {
          tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
          series: [{ type: "pie", radius: ["35%", "65%"], data: d.by_type, label: { formatter: "{b} {c}" } }]
        });
      }
    });
  });
})();
