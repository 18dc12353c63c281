/* Client Portal behaviour: dialogs, live key feedback, confirmations. htmx does the requests. */
(function () {
  "use strict";

  function openDialog(id, opener) {
    var dialog = document.getElementById(id);
    if (!dialog) return;
    dialog._opener = opener || document.activeElement;
    dialog.querySelectorAll("form[data-reset-on-open]").forEach(function (f) { f.reset(); });
    if (!dialog.open) dialog.showModal();
    var first = dialog.querySelector("[autofocus], input:not([type=hidden]), button:not(.close)");
    if (first) first.focus();
  }

  function closeDialog(dialog) {
    if (dialog && dialog.open) dialog.close();
  }

  document.addEventListener("close", function (event) {
    // Give focus back to what opened the dialog (WAI-ARIA dialog pattern).
    var dialog = event.target;
    if (dialog.tagName === "DIALOG" && dialog._opener && document.contains(dialog._opener)) dialog._opener.focus();
  }, true);

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) { openDialog(opener.getAttribute("data-open-dialog"), opener); return; }
    var switcher = event.target.closest("[data-switch-dialog]");
    if (switcher) {
      var from = switcher.closest("dialog");
      var previousOpener = from && from._opener;
      closeDialog(from);
      openDialog(switcher.getAttribute("data-switch-dialog"), previousOpener);
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) { closeDialog(closer.closest("dialog")); return; }
    var revoke = event.target.closest("[data-revoke-uid]");
    if (revoke) {
      var dialog = document.getElementById("revoke-dialog");
      dialog.querySelector("[data-revoke-target]").value = revoke.getAttribute("data-revoke-uid");
      dialog.querySelector("[data-revoke-name]").textContent = revoke.getAttribute("data-revoke-label");
      var result = dialog.querySelector("[id$=-result]");
      if (result) result.innerHTML = "";
      openDialog("revoke-dialog", revoke);
    }
  });

  // Live format and check-character feedback while typing a key.
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches("[data-key-input]")) return;
    var feedback = document.getElementById(input.getAttribute("data-feedback"));
    var result = window.FiscoKey.feedback(input.value, input.getAttribute("data-product"));
    if (feedback) {
      feedback.textContent = result.message;
      feedback.className = "feedback " + (result.state === "ok" ? "ok" : result.state === "bad" ? "bad" : "neutral");
    }
    input.setAttribute("aria-invalid", result.state === "bad" ? "true" : "false");
    // A changed key needs a fresh review: never activate something other than what was shown.
    var clears = document.getElementById(input.getAttribute("data-clears"));
    if (clears) clears.innerHTML = "";
  });

  // Once htmx has settled new content (its forms are live by then), move focus into it.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var focus = target && target.querySelector("[autofocus]");
    if (focus) focus.focus();
    else if (target && target.querySelector("[role=alert]")) {
      var key = document.getElementById("activation-key");
      if (key && target.id === "activate-result") key.focus();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("dialog[data-open-on-load]").forEach(function (d) { openDialog(d.id); });
  });

  // The sidebar on a phone (CSS, max-width 760px): its links fold under the Menu button, folded at
  // first. Without this script the button stays hidden and the links open.
  var sidebar = document.querySelector(".sidebar");
  var menu = sidebar && sidebar.querySelector(".menu-toggle");
  if (menu) {
    menu.hidden = false;
    var fold = function (folded) {
      sidebar.classList.toggle("folded", folded);
      menu.setAttribute("aria-expanded", folded ? "false" : "true");
    };
    fold(true);
    menu.addEventListener("click", function () { fold(!sidebar.classList.contains("folded")); });
  }

  // A table wider than its panel scrolls inside its wrapper (.table-wrap). A keyboard user must be
  // able to scroll it too, so a wrapper that scrolls becomes a named, focusable region (WCAG
  // 2.1.1; axe's scrollable-region-focusable); one that fits stays out of the tab order.
  function tableName(wrap) {
    var caption = wrap.querySelector("caption");
    if (caption) return caption.textContent.trim();
    var box = wrap.closest("section, .panel, dialog, main");
    var heading = box && box.querySelector("h1, h2, h3");
    return heading ? heading.textContent.trim() : "Table";
  }
  function markScrollingTables() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1 || wrap.scrollHeight > wrap.clientHeight + 1) {
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", tableName(wrap) + " (scrolls)");
      } else if (wrap.getAttribute("role") === "region") {
        ["tabindex", "role", "aria-label"].forEach(function (name) { wrap.removeAttribute(name); });
      }
    });
  }
  var pending = null;
  function soon() {
    if (pending === null) pending = window.requestAnimationFrame(function () { pending = null; markScrollingTables(); });
  }
  markScrollingTables();
  window.addEventListener("resize", soon);
  document.addEventListener("htmx:afterSettle", soon);
  document.addEventListener("toggle", soon, true); // a <details> opened: its table may scroll
})();
