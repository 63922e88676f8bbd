// Problem page: picking two candidates to diff. Without this script the form still
// works (the server diffs the first two ticked); with it, ticking a third candidate
// unticks the one ticked longest ago, and a fresh diff scrolls into view.
(function () {
  "use strict";
  const order = [];

  function boxes() {
    return Array.from(document.querySelectorAll('input[name="diff"][form="diff-form"]'));
  }

  function sync() {
    order.length = 0;
    boxes().filter((box) => box.checked).forEach((box) => order.push(box));
  }

  document.addEventListener("DOMContentLoaded", sync);

  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "diff" ||
        box.getAttribute("form") !== "diff-form") {
      return;
    }
    const at = order.indexOf(box);
    if (at >= 0) {
      order.splice(at, 1);
    }
    if (box.checked) {
      order.push(box);
      while (order.length > 2) {
        order.shift().checked = false;
      }
    }
  });

  // Choosing pass or fail (also by the review keys p / f, review_keys.js) opens the
  // candidate's review tools so the reason can be typed at once.
  document.addEventListener("change", (event) => {
    const radio = event.target;
    if (radio instanceof HTMLInputElement && radio.name === "outcome") {
      const tools = radio.closest("details");
      if (tools) {
        tools.open = true;
      }
    }
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    const diff = event.target;
    if (diff instanceof HTMLElement && diff.id === "diff" && !diff.hidden) {
      diff.scrollIntoView({ block: "start" });
    }
  });
})();
