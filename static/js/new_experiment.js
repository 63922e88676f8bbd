// New-experiment form: code datasets are judged by their unit tests, so choosing one
// switches the verifier to unit_tests (htmx then swaps in its options). The server
// applies the same rule, so this is a convenience, not the check.
(function () {
  var CODE_SOURCES = ["humaneval", "code_upload"];
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input || input.name !== "dataset_source") return;
    var verifier = document.querySelector("select[name=verifier]");
    if (!verifier) return;
    var wanted = CODE_SOURCES.indexOf(input.value) >= 0 ? "unit_tests" : "math";
    if ((wanted === "unit_tests") === (verifier.value === "unit_tests")) return;
    verifier.value = wanted;
    verifier.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
