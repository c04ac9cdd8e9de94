// The console's one script: the copy button of a secret shown once.
// Everything else works without it.
"use strict";
document.addEventListener("click", function (ev) {
  var button = ev.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = button.parentElement.querySelector(".copied");
  var say = function (text) {
    if (status) {
      status.textContent = text;
    }
  };
  var fallback = function () {
    field.focus();
    field.select();
    try {
      say(document.execCommand("copy") ? "Copied." : "Select the token and copy it.");
    } catch (e) {
      say("Select the token and copy it.");
    }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(function () {
      say("Copied.");
    }, fallback);
  } else {
    fallback();
  }
});
