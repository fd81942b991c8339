// CivicVault pages: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf");
  // htmx requests carry the session's CSRF token in a header (forms also carry it as a field).
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (csrf) event.detail.headers["X-CSRF-Token"] = csrf;
  });
  // A button with data-confirm asks before its form is sent (the server asks again where it matters).
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
