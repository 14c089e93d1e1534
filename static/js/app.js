// Small behaviours on top of htmx. Loaded from our own origin (the CSP allows no inline script).
document.addEventListener("htmx:xhr:progress", function (event) {
  var form = event.target.closest ? event.target.closest(".upload-form") : null;
  if (!form || !event.detail.lengthComputable) return;
  var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
  var bar = form.querySelector("progress");
  var label = form.querySelector(".percent");
  if (bar) bar.value = percent;
  if (label) label.textContent = percent + "%";
});

// The decision panel keeps keyboard and screen-reader focus: after htmx swaps it (a choice,
// a confirmation, an error, Back), focus moves to the new panel (tabindex=-1) and a polite
// live region reads out its data-announce. The region exists from page load, so the change
// to its text is heard; a region inserted with its text already in it often is not.
(function () {
  function liveRegion() {
    var region = document.getElementById("live-announcer");
    if (!region) {
      region = document.createElement("div");
      region.id = "live-announcer";
      region.className = "visually-hidden";
      region.setAttribute("aria-live", "polite");
      region.setAttribute("aria-atomic", "true");
      document.body.appendChild(region);
    }
    return region;
  }
  document.addEventListener("DOMContentLoaded", liveRegion);
  // A comment posted with htmx: the answer added it to the thread, so the form empties (its
  // pin too: static/js/viewer.js listens for the reset) and the live region says so.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail && event.detail.elt;
    if (!form || form.id !== "comment-form" || !event.detail.successful) return;
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status !== 200 || xhr.getResponseHeader("HX-Retarget")) return;
    form.reset();
    // reset() brings back a page's typed text after a refused post without JavaScript.
    form.querySelectorAll("textarea").forEach(function (box) { box.value = ""; });
    var region = liveRegion();
    region.textContent = "";
    var said = form.getAttribute("data-posted") || "";  // in the page's language
    window.setTimeout(function () { region.textContent = said; }, 50);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    var panel = event.target;
    if (!target || target.id !== "decision-panel" || !panel || panel.id !== "decision-panel") return;
    // Unless the swap put the caret somewhere on purpose (autofocus on a new condition box).
    var active = document.activeElement;
    if (!(active && active !== document.body && panel.contains(active))) {
      panel.focus({ preventScroll: true });
      if (panel.scrollIntoView) panel.scrollIntoView({ block: "nearest" });
    }
    var region = liveRegion();
    region.textContent = "";
    // A moment apart, so the same words twice (two errors in a row) are read twice.
    window.setTimeout(function () { region.textContent = panel.getAttribute("data-announce") || ""; }, 50);
  });
})();
