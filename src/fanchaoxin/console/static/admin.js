// Administration pages: the API key form offers only the roles of the chosen organisation's kind (the
// server renders every role with its kind and refuses a mismatch; this only hides the others).
(function () {
  "use strict";

  function keyRoles() {
    var org = document.getElementById("k-org");
    var role = document.getElementById("k-role");
    if (!org || !role) { return; }
    function sync() {
      var kind = org.options[org.selectedIndex].getAttribute("data-kind");
      var first = null;
      Array.prototype.forEach.call(role.options, function (opt) {
        var ok = opt.getAttribute("data-kind") === kind;
        opt.hidden = !ok;
        opt.disabled = !ok;
        if (ok && first === null) { first = opt; }
      });
      if (role.selectedOptions.length === 0 || role.selectedOptions[0].disabled) {
        if (first) { first.selected = true; }
      }
    }
    org.addEventListener("change", sync);
    sync();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", keyRoles);
  } else {
    keyRoles();
  }
})();
