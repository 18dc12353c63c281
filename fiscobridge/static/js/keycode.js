/* Activation-key rules for live feedback as you type: the mirror of fiscobridge/keys/codes.py.
 * Both are held to tests/key_vectors.json. The server re-checks everything; this only helps. */
(function (global) {
  "use strict";
  var ALPHABET = "23456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  var PREFIXES = { pos: "POS", int: "INT" };
  var PRODUCT_OF_PREFIX = { POS: "pos", INT: "int" };
  var STRIP = /[\s\p{Pd}\u2212]+/gu;

  function value(c) { return ALPHABET.indexOf(c); }

  function luhnSum(chars, doubleRightmost) {
    var total = 0, dbl = doubleRightmost;
    for (var i = chars.length - 1; i >= 0; i--) {
      var p = value(chars[i]) * (dbl ? 2 : 1);
      total += Math.floor(p / 34) + (p % 34);
      dbl = !dbl;
    }
    return total;
  }

  function isValidBody(body) {
    if (body.length !== 12) return false;
    for (var i = 0; i < body.length; i++) if (value(body[i]) < 0) return false;
    return luhnSum(body, false) % 34 === 0;
  }

  function squash(raw) {
    return String(raw).normalize("NFKC").replace(STRIP, "").toUpperCase().replace(/0/g, "O").replace(/1/g, "I");
  }

  function format(product, body) {
    return PREFIXES[product] + "-" + body.slice(0, 4) + "-" + body.slice(4, 8) + "-" + body.slice(8, 12);
  }

  /* {ok: true, product, canonical} or {ok: false, problem: "malformed" | "check_character"} */
  function parse(raw, defaultProduct) {
    var text = squash(raw), product, body;
    if (text.length === 15 && PRODUCT_OF_PREFIX[text.slice(0, 3)]) {
      product = PRODUCT_OF_PREFIX[text.slice(0, 3)]; body = text.slice(3);
    } else if (text.length === 12 && PREFIXES[defaultProduct]) {
      product = defaultProduct; body = text;
    } else {
      return { ok: false, problem: "malformed" };
    }
    for (var i = 0; i < body.length; i++) if (value(body[i]) < 0) return { ok: false, problem: "malformed" };
    if (!isValidBody(body)) return { ok: false, problem: "check_character" };
    return { ok: true, product: product, canonical: format(product, body) };
  }

  /* What to tell a person while they type: {state: "empty"|"typing"|"bad"|"ok", message}. */
  function feedback(raw, pageProduct) {
    var text = squash(raw);
    if (!text) return { state: "empty", message: "Format: " + PREFIXES[pageProduct] + "-XXXX-XXXX-XXXX" };
    var prefix = PRODUCT_OF_PREFIX[text.slice(0, 3)] ? text.slice(0, 3) : "";
    var body = prefix ? text.slice(3) : text;
    for (var i = 0; i < body.length; i++) {
      if (value(body[i]) < 0) return { state: "bad", message: "“" + body[i] + "” is not used in keys: letters and digits 2–9 only" };
    }
    if (prefix && PRODUCT_OF_PREFIX[prefix] !== pageProduct) {
      return { state: "bad", message: prefix === "INT" ? "This is an Integrations key (INT-)" : "This is a Cloud POS key (POS-)" };
    }
    if (body.length < 12) return { state: "typing", message: body.length + " of 12 characters" };
    if (body.length > 12) return { state: "bad", message: "Too long: a key has 12 characters after the prefix" };
    var result = parse(text, pageProduct);
    if (!result.ok) return { state: "bad", message: "One character looks mistyped" };
    return { state: "ok", message: "Looks right: " + result.canonical };
  }

  global.FiscoKey = { ALPHABET: ALPHABET, parse: parse, feedback: feedback, isValidBody: isValidBody, squash: squash };
})(window);
