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
