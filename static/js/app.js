// Behaviour without inline script (the CSP forbids it).
// Buttons or forms with data-confirm ask before submitting.
document.addEventListener("submit", function (event) {
  const form = event.target;
  const message = form.getAttribute("data-confirm") || (event.submitter && event.submitter.getAttribute("data-confirm"));
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
// Print buttons.
document.addEventListener("click", function (event) {
  const el = event.target.closest("[data-print]");
  if (el) { event.preventDefault(); window.print(); }
});
