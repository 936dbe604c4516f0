// After a log-in: keep the tab secret (which the login cookie alone does not give) in this
// tab's sessionStorage, then open the dashboard. Every API request and the WebSocket carry it.
"use strict";
sessionStorage.setItem("starpod-csrf", document.querySelector('meta[name="starpod-csrf"]').content);
location.replace("./");
