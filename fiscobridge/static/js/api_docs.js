/* The API docs page: Swagger UI draws each operation's summary as a button with a link to the
   operation inside it (its deep link): a control inside a control, which a keyboard reaches twice
   and a screen reader cannot name (axe: nested-interactive; a negative tabindex would not help
   screen readers). The button already opens the operation and the address follows it (deep
   linking), so the inner link loses its href and becomes plain text. Swagger UI draws as it goes:
   a MutationObserver applies this to whatever it adds. */
(function () {
  "use strict";
  function unlink(root) {
    root.querySelectorAll(".opblock-summary-control a[href]").forEach(function (link) {
      link.removeAttribute("href");
    });
  }
  var target = document.getElementById("swagger-ui");
  if (!target) return;
  unlink(target);
  new MutationObserver(function () { unlink(target); }).observe(target, { childList: true, subtree: true });
})();
