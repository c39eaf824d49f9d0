// Registration form (登记纠纷): add/remove party rows, grid list follows the village,
// an early hint on 居民身份证 check digits.  The form works without this file (two rows).
(function () {
  "use strict";
  const form = document.getElementById("intake-form");
  if (!form) { return; }
  const rows = form.querySelector("[data-party-rows]");
  const template = document.getElementById("party-template");
  const addButton = form.querySelector("[data-add-party]");

  function nextIndex() {
    let max = -1;
    rows.querySelectorAll("[name^='parties-'][name$='-name']").forEach(function (el) {
      const n = parseInt(el.name.split("-")[1], 10);
      if (!isNaN(n) && n > max) { max = n; }
    });
    return max + 1;
  }

  function renumber() {
    const all = rows.querySelectorAll("[data-party-row]");
    all.forEach(function (row, i) {
      row.querySelector("[data-party-number]").textContent = String(i + 1);
      row.querySelector("[data-remove-party]").classList.toggle("d-none", all.length <= 1);
    });
  }

  function syncKind(row) {
    const kind = row.querySelector("[data-party-kind]");
    const gender = row.querySelector("[data-person-only]");
    if (!kind || !gender) { return; }
    const isPerson = kind.value !== "organisation";
    gender.closest("div").classList.toggle("d-none", !isPerson);
  }

  if (addButton && template && rows) {
    addButton.classList.remove("d-none");
    addButton.addEventListener("click", function () {
      const html = template.innerHTML.replace(/__INDEX__/g, String(nextIndex()));
      rows.insertAdjacentHTML("beforeend", html);
      const added = rows.lastElementChild;
      renumber();
      syncKind(added);
      const first = added.querySelector("select, input");
      if (first) { first.focus(); }
    });
    rows.addEventListener("click", function (event) {
      const btn = event.target.closest("[data-remove-party]");
      if (!btn) { return; }
      const row = btn.closest("[data-party-row]");
      const name = row.querySelector("[name$='-name']");
      if (name && name.value.trim() && !window.confirm("确定删除该当事人？")) { return; }
      row.remove();
      renumber();
    });
    renumber();
  }
  rows.addEventListener("change", function (event) {
    if (event.target.matches("[data-party-kind]")) { syncKind(event.target.closest("[data-party-row]")); }
  });
  rows.querySelectorAll("[data-party-row]").forEach(syncKind);

  // Grids follow the chosen village.
  const village = form.querySelector("[data-village-select]");
  const grid = form.querySelector("[data-grid-select]");
  function filterGrids() {
    if (!village || !grid) { return; }
    const v = village.value;
    grid.querySelectorAll("option[data-village]").forEach(function (opt) {
      const show = !v || opt.getAttribute("data-village") === v;
      opt.hidden = !show;
      opt.disabled = !show;
      if (!show && opt.selected) { grid.value = ""; }
    });
  }
  if (village) { village.addEventListener("change", filterGrids); filterGrids(); }

  // 居民身份证 check digit (GB 11643): a hint while typing; the server decides.
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const checks = "10X98765432";
  function idProblem(value) {
    const v = value.trim().toUpperCase();
    if (!v) { return ""; }
    if (v.length === 15 && /^\d+$/.test(v)) { return "15位旧身份证号已停用，请填写18位号码。"; }
    if (!/^\d{17}[\dX]$/.test(v)) { return "居民身份证号应为17位数字加1位数字或X。"; }
    let sum = 0;
    for (let i = 0; i < 17; i++) { sum += parseInt(v[i], 10) * weights[i]; }
    return checks[sum % 11] === v[17] ? "" : "居民身份证号校验位不正确，请核对。";
  }
  rows.addEventListener("input", function (event) {
    const el = event.target;
    if (!el.matches("[data-id-number]")) { return; }
    const row = el.closest("[data-party-row]");
    const type = row.querySelector("[name$='-id_type']");
    const problem = (type && type.value === "resident_id" && el.value.trim().length >= 15) ? idProblem(el.value) : "";
    el.classList.toggle("is-invalid", Boolean(problem));
    let hint = el.parentElement.querySelector(".qy-id-hint");
    if (!hint) {
      hint = document.createElement("div");
      hint.className = "invalid-feedback qy-id-hint";
      el.parentElement.appendChild(hint);
    }
    hint.textContent = problem;
    hint.classList.toggle("d-block", Boolean(problem));
  });
})();

// Reception form (来访登记): the department picker only matters for 转办.
(function () {
  "use strict";
  const form = document.querySelector("[data-testid=reception-form]");
  if (!form) { return; }
  const dept = form.querySelector("[name=department]");
  if (!dept) { return; }
  const box = dept.closest(".mb-0, .mb-3") || dept.parentElement;
  function sync() {
    const checked = form.querySelector("[name=handling]:checked");
    box.classList.toggle("d-none", !checked || checked.value !== "transferred");
  }
  form.addEventListener("change", function (event) {
    if (event.target.name === "handling") { sync(); }
  });
  sync();
})();

// A double click must not register a case (or a visit) twice.
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (!form.matches("#intake-form, [data-testid=reception-form]") || event.defaultPrevented) { return; }
  if (form.dataset.submitted === "1") { event.preventDefault(); return; }
  form.dataset.submitted = "1";
  window.setTimeout(function () {
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  }, 0);
});
window.addEventListener("pageshow", function () {
  document.querySelectorAll("#intake-form, [data-testid=reception-form]").forEach(function (form) {
    form.dataset.submitted = "";
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
  });
});
