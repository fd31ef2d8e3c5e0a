// The reviewer's case view (#17): when a step was refused, move the focus to the reason, so that a
// keyboard or screen-reader user hears it first. The page works the same without this file.
document.addEventListener("DOMContentLoaded", function () {
  var refused = document.getElementById("decide-errors");
  if (refused) {
    refused.focus();
  }
});
