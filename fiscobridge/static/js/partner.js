/* Partner Portal behaviour: the issue form's dependent fields, copying and downloading the
 * codes of a batch just issued (built here from the page: the server keeps no copy to serve
 * again), and live feedback in Lookup. Dialogs and htmx come from portal.js and htmx. */
(function () {
  "use strict";

  // --- Issue form: a tier only for Integrations, an e-mail only for a single key.
  function syncIssueForm(form) {
    var product = form.querySelector("[name=product]");
    var quantity = form.querySelector("[name=quantity]");
    var tierField = form.querySelector("[data-tier-field]");
    var emailField = form.querySelector("[data-email-field]");
    if (product && tierField) {
      var isInt = product.value === "int";
      tierField.hidden = !isInt;
      tierField.querySelector("select").disabled = !isInt;
    }
    if (quantity && emailField) {
      var single = String(quantity.value).trim() === "1";
      emailField.hidden = !single;
      emailField.querySelector("input").disabled = !single;
    }
  }

  function syncAll(root) {
    (root || document).querySelectorAll("form.issue-form").forEach(syncIssueForm);
  }

  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("form.issue-form");
    if (form) syncIssueForm(form);
  });
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form.issue-form");
    if (form) syncIssueForm(form);
  });
  document.addEventListener("DOMContentLoaded", function () { syncAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { syncAll(event.detail.target); });

  // --- Copying.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error("copy failed"));
    });
  }

  function say(origin, message) {
    var scope = origin.closest("section, .once") || document;
    var status = scope.querySelector("[data-copy-status]");
    if (status) status.textContent = message;
  }

  function codesOf(tableId) {
    var table = document.getElementById(tableId);
    if (!table) return [];
    return Array.prototype.map.call(table.querySelectorAll("tbody tr"), function (row) {
      return { id: row.getAttribute("data-key-id"), code: row.querySelector("[data-code]").textContent.trim() };
    });
  }

  // --- The CSV of a batch just issued, made in the browser from the codes on this page.
  function csvCell(value) {
    var text = value == null ? "" : String(value);
    if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;  // never a formula in a spreadsheet
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  // forExcel: a UTF-8 byte order mark first, without which Excel reads the file in the system's
  // legacy code page (views/export.py says the same for the key list).
  function downloadCodes(tableId, forExcel) {
    var table = document.getElementById(tableId);
    var d = table.dataset;
    var lines = [["code", "id", "product", "tier", "seats", "months", "reference", "batch", "redeem_by"].join(",")];
    codesOf(tableId).forEach(function (k) {
      lines.push([k.code, k.id, d.product, d.tier, d.seats, d.months, d.reference, d.batch, d.redeemBy]
        .map(csvCell).join(","));
    });
    var blob = new Blob([(forExcel ? "\ufeff" : "") + lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = "fiscobridge-batch-" + d.batch + "-codes" + (forExcel ? "-excel" : "") + ".csv";
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  document.addEventListener("click", function (event) {
    var one = event.target.closest("[data-copy-code]");
    if (one) {
      var code = one.closest("tr").querySelector("[data-code]").textContent.trim();
      copyText(code).then(function () { say(one, "Copied " + code); }, function () { say(one, "Copy failed: select the code and copy it"); });
      return;
    }
    var all = event.target.closest("[data-copy-all]");
    if (all) {
      var codes = codesOf(all.getAttribute("data-copy-all")).map(function (k) { return k.code; });
      copyText(codes.join("\n")).then(function () { say(all, "Copied " + codes.length + " code" + (codes.length === 1 ? "" : "s")); },
        function () { say(all, "Copy failed: use Download CSV"); });
      return;
    }
    var text = event.target.closest("[data-copy-text]");
    if (text) {
      var source = document.getElementById(text.getAttribute("data-copy-text"));
      copyText(source.textContent.trim()).then(function () { say(text, "Copied"); }, function () { say(text, "Copy failed"); });
      return;
    }
    var download = event.target.closest("[data-download-codes]");
    if (download) {
      downloadCodes(download.getAttribute("data-download-codes"), download.hasAttribute("data-excel"));
      say(download, "CSV downloaded");
    }
  });

  // --- Lookup: say whether the typed key is well formed before it is sent.
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("[data-lookup-input]") || !window.FiscoKey) return;
    var feedback = document.getElementById(input.getAttribute("data-feedback"));
    var text = window.FiscoKey.squash(input.value);
    var message, state;
    if (!text) { message = "POS- or INT- followed by 12 characters. Spaces and dashes are ignored."; state = "neutral"; }
    else if (text.length < 15) { message = text.length + " of 15 characters (with the prefix)"; state = "neutral"; }
    else {
      var result = window.FiscoKey.parse(text, null);
      if (result.ok) { message = "Looks right: " + result.canonical; state = "ok"; }
      else if (result.problem === "check_character") { message = "One character looks mistyped"; state = "bad"; }
      else { message = "Not a key: POS- or INT- followed by 12 letters and digits 2–9"; state = "bad"; }
    }
    if (feedback) { feedback.textContent = message; feedback.className = "feedback " + state; }
    input.setAttribute("aria-invalid", state === "bad" ? "true" : "false");
  });

  // A full key pasted into the keys search becomes its last group before the request leaves:
  // search terms travel in URLs, and so into logs and history, where a key must never go.
  document.addEventListener("htmx:configRequest", function (event) {
    var q = event.detail.parameters && event.detail.parameters.q;
    if (typeof q !== "string" || !window.FiscoKey) return;
    var parsed = window.FiscoKey.parse(q);
    if (parsed.ok) event.detail.parameters.q = parsed.canonical.slice(-4);
  });
})();
