/* No silent failure (issue 12, item 2): every htmx request in both portals that fails — a server
   error, a refusal, no network, no answer in time, too many requests — says so where the user is
   looking (inside the form or area that sent it), whether the action may have happened, and how
   to check. The form's data-failure-hint says the last part for actions that change something
   ("open Subscriptions before trying again"). Our pages answer every expected outcome with
   200, so any status >= 400 here is a failure. */
(function () {
  "use strict";

  var GENERIC_HINT = "Reload the page to see where things stand, then try again.";

  function hintFor(elt) {
    var holder = elt && elt.closest("[data-failure-hint]");
    return holder ? holder.getAttribute("data-failure-hint") : GENERIC_HINT;
  }

  function containerFor(elt) {
    return (elt && (elt.closest("form") || elt.closest("dialog") || elt.parentElement)) || document.body;
  }

  function clear(container) {
    container.querySelectorAll(":scope > .request-failure").forEach(function (old) {
      if (old._timer) window.clearInterval(old._timer);
      old.remove();
    });
  }

  // `mayHaveHappened`: the server may have done it before failing (5xx, no answer, a dropped
  // connection); a refusal (4xx, 429) was not done, so the "how to check" hint is not shown.
  function show(elt, text, mayHaveHappened, retryAfter) {
    var container = containerFor(elt);
    clear(container);
    var box = document.createElement("div");
    box.className = "alert error request-failure";
    box.setAttribute("role", "alert");
    var message = document.createElement("p");
    message.textContent = text;
    box.appendChild(message);
    if (mayHaveHappened) {
      var hint = document.createElement("p");
      hint.textContent = hintFor(elt);
      box.appendChild(hint);
    }
    if (retryAfter > 0) {
      var wait = document.createElement("p");
      wait.className = "retry-countdown";
      var left = retryAfter;
      var tick = function () {
        wait.textContent = left > 0 ? "You can try again in " + left + " s." : "You can try again now.";
        if (left <= 0) window.clearInterval(box._timer);
        left -= 1;
      };
      tick();
      box._timer = window.setInterval(tick, 1000);
      box.appendChild(wait);
    }
    container.appendChild(box);
    box.scrollIntoView({ block: "nearest" });
  }

  function sender(event) {
    return event.detail.requestConfig ? event.detail.requestConfig.elt : event.detail.elt;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    clear(containerFor(sender(event)));
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var status = xhr.status;
    if (status === 429) {
      var seconds = parseInt(xhr.getResponseHeader("Retry-After") || "0", 10) || 0;
      show(sender(event), "Too many requests: this was not done.", false, seconds);
    } else if (status >= 500) {
      show(sender(event), "Something went wrong on our side (error " + status + "). It may or may not have been done.", true);
    } else {
      show(sender(event), "The request was refused (error " + status + "): it was not done. Reload the page, then try again.", false);
    }
  });

  document.addEventListener("htmx:sendError", function (event) {
    show(sender(event), "No connection to FiscoBridge: the request may not have arrived. Check your connection.", true);
  });

  document.addEventListener("htmx:timeout", function (event) {
    show(sender(event), "FiscoBridge did not answer in time. It may or may not have been done.", true);
  });
})();
