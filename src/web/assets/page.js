// tunnelgate's page: progressive enhancement only; everything works without this file.
// Live tool search, copy buttons on configurations, and a JSON check on JSON fields.
(function () {
  "use strict";
  var each = function (selector, action) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), action);
  };

  var search = document.getElementById("tool-search");
  var list = document.getElementById("tool-list");
  var count = document.getElementById("tool-count");
  if (search && list) {
    var tools = Array.prototype.map.call(list.querySelectorAll(".tool"), function (tool) {
      var name = tool.querySelector(".tool-name");
      var description = tool.querySelector(".tool-description");
      var text = (name ? name.textContent : "") + " " + (description ? description.textContent : "");
      return { element: tool, text: text.toLowerCase() };
    });
    var filter = function () {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      tools.forEach(function (tool) {
        var match = words.every(function (word) { return tool.text.indexOf(word) !== -1; });
        tool.element.hidden = !match;
        if (match) { shown += 1; }
      });
      if (count) { count.textContent = shown + " of " + tools.length + " tools shown"; }
    };
    search.addEventListener("input", filter);
    if (search.form) {
      search.form.addEventListener("submit", function (event) {
        event.preventDefault();
        filter();
      });
    }
  }

  if (navigator.clipboard) {
    each("pre[data-copy]", function (pre) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy " + pre.getAttribute("data-copy"));
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(pre.textContent).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 2000);
        }, function () {
          button.textContent = "Select the text to copy";
        });
      });
      pre.parentNode.insertBefore(button, pre);
    });
  }

  each("textarea[data-json]", function (area) {
    area.addEventListener("input", function () {
      var text = area.value.trim();
      if (text === "") { area.setCustomValidity(""); return; }
      try {
        JSON.parse(text);
        area.setCustomValidity("");
      } catch (error) {
        area.setCustomValidity("Not valid JSON: " + error.message);
      }
    });
  });
}());
