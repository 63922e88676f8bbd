// Keyboard shortcuts of the review queue (problem page): j or n = next problem,
// k = previous problem, p / f = mark the focused candidate pass / fail.
// Each key clicks the element marked data-key="next" | "prev" | "pass" | "fail"; the
// server does the rest, so without this script every link and form still works.
// pass / fail look inside the candidate holding the focus ([data-candidate]), or use the
// only such element on the page. A radio button is checked and its form's first text
// field focused (a label needs a reason); anything else is clicked.
(function () {
  "use strict";
  if (window.stratlabReviewKeys) return; // loaded once, even if a swap brings the tag again
  window.stratlabReviewKeys = true;
  var KEYS = { j: "next", n: "next", k: "prev", p: "pass", f: "fail" };

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function find(action) {
    var selector = '[data-key="' + action + '"]';
    if (action === "next" || action === "prev") return document.querySelector(selector);
    var focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("[data-candidate]") : null;
    if (focused) return focused.querySelector(selector);
    var all = document.querySelectorAll(selector);
    return all.length === 1 ? all[0] : null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var action = KEYS[event.key];
    if (!action) return;
    var element = find(action);
    if (!element) return;
    event.preventDefault();
    if (element.type === "radio") {
      element.checked = true;
      element.dispatchEvent(new Event("change", { bubbles: true }));
      var field = element.form && element.form.querySelector("textarea, input[type=text]");
      if (field) field.focus();
      return;
    }
    element.click();
  });
})();
