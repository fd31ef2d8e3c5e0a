// The public forms (#17): list the files chosen for upload with their sizes in KB/MB, and mark any file
// over the limit before it is sent (the server checks again and says so at the field).
(function () {
  "use strict";
  function sizeText(n) {
    if (n >= 1024 * 1024) return (n / 1048576).toFixed(n >= 10 * 1048576 ? 0 : 1) + " MB";
    if (n >= 1024) return Math.round(n / 1024) + " KB";
    return n + " B";
  }
  function listFiles(input) {
    var list = document.getElementById(input.id + "-list");
    if (!list) return;
    var max = parseInt(input.getAttribute("data-max-bytes") || "0", 10);
    var tooLarge = input.getAttribute("data-too-large") || "";
    list.textContent = "";
    Array.prototype.forEach.call(input.files || [], function (f) {
      var li = document.createElement("li");
      var over = max > 0 && f.size > max;
      li.textContent = f.name + " · " + sizeText(f.size) + (over ? " · " + tooLarge : "");
      if (over) li.className = "too-large";
      list.appendChild(li);
    });
  }
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t && t.matches && t.matches("input[type=file][data-max-bytes]")) listFiles(t);
  });
})();
