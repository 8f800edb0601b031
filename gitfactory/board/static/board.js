// The live board: follow the factory branch (server-sent events) and fetch the
// page's fragments again when it moves; send actions with the board's token.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="gitfactory-token"]');
  var token = meta ? meta.content : "";
  var baseMeta = document.querySelector('meta[name="gitfactory-base"]');
  var base = baseMeta ? baseMeta.content : "";
  var live = document.getElementById("live");
  var busy = false, again = false;

  function showForms() {
    var root = document.querySelector("[data-column]");
    var column = root ? root.getAttribute("data-column") : "";
    document.querySelectorAll("form[data-when]").forEach(function (form) {
      form.hidden = form.getAttribute("data-when").split(" ").indexOf(column) < 0;
    });
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var parts = Array.prototype.slice.call(document.querySelectorAll("[data-fragment]"));
    Promise.all(parts.map(function (el) {
      return fetch(el.getAttribute("data-fragment"), {headers: {"X-Gitfactory-Token": token}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var bottom = el.getAttribute("data-follow") === "bottom" &&
            window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
          el.innerHTML = html;
          if (bottom) window.scrollTo(0, document.body.scrollHeight);
        });
    })).catch(function () {}).then(function () {
      busy = false;
      showForms();
      document.body.setAttribute("data-refreshed", String(Date.now()));
      if (again) { again = false; refresh(); }
    });
  }

  function follow() {
    if (!window.EventSource) { if (live) live.textContent = "not live (no EventSource)"; return; }
    var seen = null;
    var source = new EventSource(base + "/events");
    source.addEventListener("open", function () {
      if (live) { live.textContent = "live"; live.className = "live on"; }
    });
    source.addEventListener("error", function () {
      if (live) { live.textContent = "reconnecting…"; live.className = "live"; }
    });
    source.addEventListener("tip", function (event) {
      var tip = JSON.parse(event.data);
      document.body.setAttribute("data-tip", tip);
      if (seen !== null && tip !== seen) refresh();
      seen = tip;
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var action = form.getAttribute("data-action");
    if (!action) return;
    event.preventDefault();
    var ask = form.getAttribute("data-confirm");
    if (ask && !window.confirm(ask)) return;
    var out = form.querySelector(".result");
    var body = {};
    new FormData(form).forEach(function (value, key) { body[key] = value; });
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(action, {method: "POST", body: JSON.stringify(body),
                   headers: {"Content-Type": "application/json", "X-Gitfactory-Token": token}})
      .then(function (r) { return r.json().then(function (data) { return [r.ok, data]; }); })
      .then(function (pair) {
        var ok = pair[0], data = pair[1];
        out.className = ok ? "result" : "result error";
        out.textContent = ok ? "done" : (data.message || data.error || "refused") +
          (data.hint ? " (" + data.hint + ")" : "");
        if (ok) { form.reset(); refresh(); }
      })
      .catch(function (err) { out.className = "result error"; out.textContent = String(err); })
      .then(function () { button.disabled = false; });
  });

  var compact = document.getElementById("compact");
  function setCompact(on) {
    document.body.classList.toggle("compact", on);
    if (compact) compact.setAttribute("aria-pressed", String(on));
    try { window.localStorage.setItem("gitfactory-compact", on ? "1" : ""); } catch (e) {}
  }
  if (compact) {
    var kept = "";
    try { kept = window.localStorage.getItem("gitfactory-compact") || ""; } catch (e) {}
    setCompact(kept === "1");
    compact.addEventListener("click", function () {
      setCompact(!document.body.classList.contains("compact"));
    });
  }

  // The log reads newest last: open it at its end.
  if (document.querySelector('[data-follow="bottom"]')) window.scrollTo(0, document.body.scrollHeight);
  showForms();
  follow();
})();
