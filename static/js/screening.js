/* Screening pages: the sweep form (零报告 hides the dispute rows; add/remove dispute rows)
   and the hot-spot chart (ECharts, data from the JSON route named in data-src). */
(function () {
  "use strict";

  function renumber(container) {
    var rows = container.querySelectorAll("[data-finding-row]");
    rows.forEach(function (row, i) {
      row.querySelectorAll("[name^=findings-]").forEach(function (el) {
        var name = el.getAttribute("name").replace(/^findings-\d+-/, "findings-" + i + "-");
        el.setAttribute("name", name);
        el.id = name;
      });
      row.querySelectorAll("label[for^=findings-]").forEach(function (el) {
        el.setAttribute("for", el.getAttribute("for").replace(/^findings-\d+-/, "findings-" + i + "-"));
      });
      var no = row.querySelector("[data-finding-no]");
      if (no) { no.textContent = String(i + 1); }
      var remove = row.querySelector("[data-remove-finding]");
      if (remove) { remove.classList.toggle("d-none", rows.length < 2); }
    });
  }

  function initSweepForm() {
    var findings = document.querySelector("[data-findings]");
    var nil = document.querySelector("[data-nil-report]");
    if (!findings || !nil) { return; }
    var add = findings.querySelector("[data-add-finding]");
    add.classList.remove("d-none");
    function sync() { findings.classList.toggle("d-none", nil.checked); }
    nil.addEventListener("change", sync);
    sync();
    add.addEventListener("click", function () {
      var rows = findings.querySelectorAll("[data-finding-row]");
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelectorAll("input, textarea").forEach(function (el) { el.value = ""; });
      copy.querySelectorAll("select").forEach(function (el) { el.selectedIndex = 0; });
      copy.querySelectorAll(".invalid-feedback").forEach(function (el) { el.remove(); });
      add.parentNode.insertBefore(copy, add);
      renumber(findings);
      var first = copy.querySelector("select");
      if (first) { first.focus(); }
    });
    findings.addEventListener("click", function (ev) {
      var btn = ev.target.closest("[data-remove-finding]");
      if (!btn) { return; }
      btn.closest("[data-finding-row]").remove();
      renumber(findings);
    });
    renumber(findings);
    // A double tap on a slow phone connection must not register the disputes twice.
    var form = findings.closest("form");
    form.addEventListener("submit", function () {
      var submit = form.querySelector("[type=submit]");
      window.setTimeout(function () { submit.disabled = true; }, 0);
    });
  }

  function initHotSpotChart() {
    var el = document.querySelector("[data-hotspot-chart]");
    if (!el || typeof window.echarts === "undefined") { return; }
    fetch(el.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var chart = window.echarts.init(el);
        chart.setOption({
          tooltip: { trigger: "axis" },
          legend: { type: "scroll", top: 0 },
          grid: { left: 36, right: 12, top: 40, bottom: 28 },
          xAxis: { type: "category", data: data.months },
          yAxis: { type: "value", minInterval: 1 },
          series: data.series.map(function (s) {
            return { name: s.name, type: "bar", stack: "total", data: s.data };
          })
        });
        window.addEventListener("resize", function () { chart.resize(); });
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSweepForm();
    initHotSpotChart();
  });
})();
