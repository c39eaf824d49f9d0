// Workflow panel behaviour (no inline script: the CSP forbids it).
// Risk grading: show the level the checked factors suggest (the highest of their "suggests").
(function () {
  const LABELS = { high: "高", medium: "中", low: "低" };
  const ORDER = { low: 1, medium: 2, high: 3 };
  function update(fieldset) {
    const form = fieldset.closest("form");
    let best = "low";
    fieldset.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
      const s = box.getAttribute("data-suggests");
      if (ORDER[s] > ORDER[best]) { best = s; }
    });
    const out = form.querySelector("[data-risk-suggestion]");
    if (out) { out.textContent = LABELS[best]; out.setAttribute("data-level", best); }
    return best;
  }
  document.querySelectorAll("[data-risk-factors]").forEach(function (fieldset) {
    update(fieldset);
    fieldset.addEventListener("change", function () {
      const best = update(fieldset);
      const select = fieldset.closest("form").querySelector("[data-risk-level]");
      if (select && ORDER[select.value] < ORDER[best]) { select.value = best; }
    });
  });
  // Open the form named in the URL hash (#wf-accept), e.g. from a to-do link.
  if (window.location.hash.indexOf("#wf-") === 0) {
    const el = document.querySelector(window.location.hash);
    if (el && window.bootstrap) { new window.bootstrap.Collapse(el, { toggle: true }); }
  }
})();
