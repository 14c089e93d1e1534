// The document viewer: zoom, and tap (or drag, with a mouse or pen) on a page to pin the
// comment being written to that spot. Positions are fractions of the page. Loaded from our
// own origin (the CSP allows no inline script); without it, pages and markers still show.
(function () {
  "use strict";

  function fraction(value) {
    return Math.min(1, Math.max(0, value)).toFixed(4);
  }

  function formFor(viewer) {
    var id = viewer.getAttribute("data-pin-form");
    return id ? document.getElementById(id) : null;
  }

  function field(form, name) {
    return form.querySelector('[name="' + name + '"]');
  }

  function clearDraft(viewer) {
    viewer.querySelectorAll(".draft").forEach(function (el) { el.remove(); });
  }

  function svgElement(name, attributes) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", name);
    Object.keys(attributes).forEach(function (key) { el.setAttribute(key, attributes[key]); });
    return el;
  }

  function setPin(viewer, layer, page, x, y, w, h) {
    var form = formFor(viewer);
    if (!form) return;
    field(form, "page").value = String(page);
    field(form, "x").value = fraction(x);
    field(form, "y").value = fraction(y);
    field(form, "w").value = w ? fraction(w) : "";
    field(form, "h").value = h ? fraction(h) : "";
    clearDraft(viewer);
    var box = layer.viewBox.baseVal;
    if (w && h) {
      layer.appendChild(svgElement("rect", {"class": "area draft", x: x * box.width,
        y: y * box.height, width: w * box.width, height: h * box.height}));
    }
    layer.appendChild(svgElement("circle", {"class": "draft", cx: x * box.width,
      cy: y * box.height, r: 30}));
    var chip = form.querySelector(".pin-chip");
    if (chip) {
      chip.hidden = false;
      // The words come from the page, in its language; {n} is the page number.
      var words = chip.getAttribute(w && h ? "data-on-area" : "data-on-page") || "{n}";
      chip.querySelector(".pin-where").textContent = words.replace("{n}", page);
    }
    var text = form.querySelector("textarea");
    if (text) text.focus({preventScroll: true});
  }

  function clearPin(viewer) {
    var form = formFor(viewer);
    if (!form) return;
    ["page", "x", "y", "w", "h"].forEach(function (name) { field(form, name).value = ""; });
    var chip = form.querySelector(".pin-chip");
    if (chip) chip.hidden = true;
    clearDraft(viewer);
  }

  function position(layer, event) {
    var rect = layer.getBoundingClientRect();
    return {x: (event.clientX - rect.left) / rect.width, y: (event.clientY - rect.top) / rect.height};
  }

  function wire(viewer) {
    if (viewer.dataset.wired) return;
    viewer.dataset.wired = "1";
    var tools = viewer.querySelector(".viewer-tools");
    if (tools) {
      tools.hidden = false;
      tools.addEventListener("click", function (event) {
        var button = event.target.closest("button[data-zoom]");
        if (!button) return;
        viewer.setAttribute("data-zoom", button.getAttribute("data-zoom"));
        tools.querySelectorAll("button[data-zoom]").forEach(function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
      });
    }
    if (!formFor(viewer)) return;
    viewer.classList.add("pinnable");
    viewer.querySelectorAll("svg.layer").forEach(function (layer) {
      var page = layer.closest(".page").getAttribute("data-page");
      var start = null, handled = false;
      layer.addEventListener("pointerdown", function (event) {
        if (event.target.closest(".marker")) return;
        start = event.pointerType === "touch" ? null : position(layer, event);
      });
      layer.addEventListener("pointerup", function (event) {
        if (!start || event.target.closest(".marker")) return;
        var end = position(layer, event);
        var w = Math.abs(end.x - start.x), h = Math.abs(end.y - start.y);
        if (w > 0.02 && h > 0.02) {  // a drag: mark an area
          setPin(viewer, layer, page, Math.min(start.x, end.x), Math.min(start.y, end.y), w, h);
        } else {
          setPin(viewer, layer, page, end.x, end.y);
        }
        start = null;
        handled = true;
        event.preventDefault();
      });
      layer.addEventListener("click", function (event) {
        if (handled) { handled = false; return; }  // the pointer handlers pinned it
        if (event.target.closest(".marker")) return;
        if (event.detail === 0) return;  // keyboard activation: nothing to point at
        var spot = position(layer, event);
        setPin(viewer, layer, page, spot.x, spot.y);  // a tap on a touch screen
      });
    });
    var form = formFor(viewer);
    form.addEventListener("reset", function () { clearPin(viewer); });  // the comment was posted
    var clear = form.querySelector(".pin-clear");
    if (clear) clear.addEventListener("click", function () { clearPin(viewer); });
    var select = field(form, "page");
    if (select) select.addEventListener("change", function () {
      ["x", "y", "w", "h"].forEach(function (name) { field(form, name).value = ""; });
      clearDraft(viewer);
    });
  }

  function highlight(commentId) {
    document.querySelectorAll(".marker.chosen, .comment.chosen").forEach(function (el) {
      el.classList.remove("chosen");
    });
    document.querySelectorAll('.marker[data-comment="' + commentId + '"]').forEach(function (el) {
      el.classList.add("chosen");
    });
    var comment = document.getElementById("comment-" + commentId);
    if (comment) comment.classList.add("chosen");
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-comment]");
    if (link) highlight(link.getAttribute("data-comment"));
  });

  function wireAll() { document.querySelectorAll(".viewer").forEach(wire); }
  document.addEventListener("DOMContentLoaded", wireAll);
  document.addEventListener("htmx:load", wireAll);
})();
