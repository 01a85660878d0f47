// Switchboard's workspace script (docs/design.md §6.1, §6.3): the agent
// socket keeps pages live; the composer asks the channel's policy as the
// agent types; actions call the JSON API with the session's CSRF token.
// Plain browser JavaScript, no build step; loaded with defer, no inline
// script anywhere (the pages' CSP forbids it).
(function () {
  "use strict";

  var meta = function (name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  };
  var csrf = meta("csrf-token");
  var me = meta("agent-id");
  if (!csrf) return; // the sign-in and invitation pages need none of this

  // htmx's own requests carry the CSRF token too.
  document.body.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf;
  });

  // api calls the JSON API and resolves to the decoded answer; a refusal
  // rejects with the server's own message, never swallowed.
  function api(method, path, body) {
    var opts = { method: method, headers: { "X-CSRF-Token": csrf, Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
        if (!res.ok) {
          var msg = data && data.error ? data.error.message : "the server answered " + res.status;
          if (res.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
          var err = new Error(msg);
          err.status = res.status;
          err.body = data;
          throw err;
        }
        return data;
      });
    });
  }

  function flash(text, isError) {
    var live = document.getElementById("live");
    if (!live) return;
    live.textContent = text;
    live.className = isError ? "live error" : "live";
  }

  // ---- the agent socket -------------------------------------------------
  var lastEventId = "";
  var socket = null;
  var backoff = 500;
  var pageConversation = (document.getElementById("conversation") || {}).dataset;
  var viewingId = pageConversation ? pageConversation.conversation : "";

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/realtime";
    if (lastEventId) url += "?since=" + encodeURIComponent(lastEventId);
    socket = new WebSocket(url);
    socket.onopen = function () {
      backoff = 500;
      flash("live");
      document.body.dataset.live = "1";
      if (viewingId) send({ type: "viewing", conversation_id: viewingId });
    };
    socket.onmessage = function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (err) { return; }
      if (ev.id) lastEventId = ev.id;
      handle(ev);
    };
    socket.onclose = function () {
      document.body.dataset.live = "";
      flash("reconnecting…", true);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  var refreshTimer = null;
  function refreshList() {
    // Coalesce bursts: one reload of the visible list per 300 ms.
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      var list = document.getElementById("inbox-list");
      if (list && window.htmx) {
        htmx.ajax("GET", "/fragments/inbox?" + list.dataset.query, { target: "#inbox-list", swap: "outerHTML" });
      }
      htmx.trigger(document.body, "sb:refresh-counts");
    }, 300);
  }

  function presenceText(data) {
    var parts = [];
    (data.typing || []).forEach(function (a) { if (a.id !== me) parts.push(a.name + " is typing"); });
    (data.viewing || []).forEach(function (a) {
      if (a.id !== me && !(data.typing || []).some(function (t) { return t.id === a.id; })) parts.push(a.name + " is viewing");
    });
    if (data.customer_typing) parts.push("the customer is typing");
    return parts.join(", ");
  }

  function handle(ev) {
    switch (ev.type) {
      case "resync":
        location.reload();
        return;
      case "presence":
        document.querySelectorAll('[data-presence-for="' + ev.conversation_id + '"]').forEach(function (el) {
          el.textContent = presenceText(ev.data || {});
        });
        if (ev.conversation_id === viewingId) softLock(ev.data || {});
        return;
      case "agent.status":
        if (ev.agent_id === me) {
          var sel = document.getElementById("agent-status");
          if (sel && ev.data && ev.data.status) sel.value = ev.data.status;
        }
        return;
      case "message.created":
      case "message.updated":
        refreshList();
        if (pageConversation && ev.data && belongsHere(ev.data)) upsertMessage(ev.data.id, ev.type === "message.created");
        return;
      case "conversation.updated":
        refreshList();
        notifyAssignment(ev);
        if (ev.conversation_id === viewingId && window.htmx) {
          htmx.ajax("GET", "/conversations/" + viewingId + "/header", { target: "#conv-header", swap: "outerHTML" });
        }
        return;
    }
  }

  // A message belongs on this page when it is of this customer's timeline:
  // this conversation or one whose messages the page already shows.
  function belongsHere(m) {
    if (m.conversation_id === viewingId) return true;
    return !!document.querySelector('#timeline [data-conversation="' + m.conversation_id + '"]');
  }

  function upsertMessage(id, created) {
    fetch("/conversations/" + viewingId + "/messages/" + encodeURIComponent(id), { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.text() : ""; })
      .then(function (html) {
        if (!html) return;
        var tpl = document.createElement("template");
        tpl.innerHTML = html.trim();
        var node = tpl.content.firstElementChild;
        if (!node) return;
        var old = document.getElementById("m-" + id);
        var tl = document.getElementById("timeline");
        if (old) old.replaceWith(node);
        else if (created && tl) {
          var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
          tl.appendChild(node);
          if (atBottom) node.scrollIntoView({ block: "end" });
        }
        if (window.htmx) htmx.process(node);
      });
  }

  function softLock(data) {
    var el = document.getElementById("soft-lock");
    if (!el) return;
    var typing = (data.typing || []).filter(function (a) { return a.id !== me; });
    // A warning, never a lock: the composer stays usable.
    el.textContent = typing.length ? typing.map(function (a) { return a.name; }).join(" and ") + (typing.length > 1 ? " are" : " is") + " typing a reply here" : "";
  }

  // ---- notifications (opt-in) --------------------------------------------
  var assigned = {};
  function notifyAssignment(ev) {
    var a = ev.data && ev.data.assignee;
    var mine = a && a.id === me;
    var before = assigned[ev.conversation_id];
    assigned[ev.conversation_id] = mine;
    if (!mine || before || !("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && viewingId === ev.conversation_id) return;
    var n = new Notification("New conversation assigned to you", { body: (ev.data.customer && ev.data.customer.name) || "A customer", tag: ev.conversation_id });
    n.onclick = function () { window.focus(); location.href = "/conversations/" + ev.conversation_id; };
  }
  var notifyBtn = document.getElementById("notify-toggle");
  if (notifyBtn && "Notification" in window && Notification.permission === "default") {
    notifyBtn.hidden = false;
    notifyBtn.addEventListener("click", function () {
      Notification.requestPermission().then(function () { notifyBtn.hidden = true; });
    });
  }

  // ---- the status switch ---------------------------------------------------
  var statusSel = document.getElementById("agent-status");
  if (statusSel) {
    statusSel.addEventListener("change", function () {
      api("POST", "/api/v1/agents/" + encodeURIComponent(me) + "/status", { status: statusSel.value })
        .then(function () { flash("you are " + statusSel.value); })
        .catch(function (err) { flash(err.message, true); });
    });
  }

  // ---- actions: forms and buttons that call the API ------------------------
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset || !form.dataset.api) return;
    e.preventDefault();
    var body = {};
    (form.dataset.json || "").split(",").forEach(function (spec) {
      if (!spec) return;
      var parts = spec.split(":"), name = parts[0], el = form.elements[name];
      var v = el ? el.value : "";
      if (parts[1] === "int") v = parseInt(v, 10);
      else if (v === "" && name === "agent_id") v = null;
      body[name] = v;
    });
    var btn = form.querySelector("button[type=submit]");
    if (btn) btn.disabled = true;
    api("POST", form.dataset.api, body)
      .then(function () {
        flash("done");
        if (form.hasAttribute("data-reload")) location.reload();
      })
      .catch(function (err) { flash(err.message, true); alert(err.message); })
      .finally(function () { if (btn) btn.disabled = false; });
  });
  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("button[data-status]") : null;
    if (btn) {
      btn.disabled = true;
      api("POST", btn.dataset.api, { status: btn.dataset.status })
        .then(function () { flash("marked " + btn.dataset.status); })
        .catch(function (err) { flash(err.message, true); alert(err.message); })
        .finally(function () { btn.disabled = false; });
      return;
    }
    var fold = e.target.closest ? e.target.closest(".fold-toggle") : null;
    if (fold) {
      var html = fold.previousElementSibling;
      var open = html.classList.toggle("unfolded");
      fold.setAttribute("aria-expanded", open ? "true" : "false");
      fold.textContent = open ? "Hide quoted text" : "Show quoted text";
    }
  });

  // ---- the composer ----------------------------------------------------------
  var composer = document.getElementById("composer");
  if (composer) setupComposer(composer);

  function setupComposer(form) {
    var conv = form.dataset.conversation;
    var channel = form.elements.channel;
    var text = document.getElementById("reply");
    var note = document.getElementById("note");
    var sendBtn = document.getElementById("send");
    var info = document.getElementById("compose-info");
    var reason = document.getElementById("compose-reason");
    var tplFields = document.getElementById("template-fields");
    var tplSelect = document.getElementById("template");
    var tplParams = document.getElementById("template-params");
    var tplPreview = document.getElementById("template-preview");
    var textFields = document.getElementById("text-fields");
    var emailFields = document.getElementById("email-fields");
    var social = document.getElementById("social-warning");
    var attach = document.getElementById("attach");
    var uploads = [];
    var decision = null;
    var sending = false;
    var templates = null;
    var windowEnds = null;

    function loadTemplates() {
      if (templates) return Promise.resolve(templates);
      return api("GET", "/api/v1/templates").then(function (d) { templates = d.templates || []; return templates; });
    }

    function renderTemplates(names) {
      loadTemplates().then(function (all) {
        var current = tplSelect.value;
        tplSelect.innerHTML = "";
        // The policy names templates "name (language)".
        all.filter(function (t) { return names.indexOf(t.name + " (" + t.language + ")") >= 0 || names.indexOf(t.name) >= 0 || names.indexOf(t.name + ":" + t.language) >= 0; })
          .forEach(function (t) {
            var o = document.createElement("option");
            o.value = t.name + "|" + t.language;
            o.textContent = t.name + " (" + t.language + ")";
            o.dataset.body = t.body;
            tplSelect.appendChild(o);
          });
        if (current) tplSelect.value = current;
        renderParams();
        // The list arrives after doCheck decided: Send follows it.
        if (usingTemplate()) setSend(tplSelect.options.length > 0, tplSelect.options.length ? "" : "no approved template");
      });
    }

    function renderParams() {
      var opt = tplSelect.selectedOptions[0];
      var body = opt ? opt.dataset.body : "";
      var n = 0;
      (body.match(/\{\{(\d+)\}\}/g) || []).forEach(function (m) { n = Math.max(n, parseInt(m.slice(2), 10)); });
      var old = Array.prototype.map.call(tplParams.querySelectorAll("input"), function (i) { return i.value; });
      tplParams.innerHTML = "";
      for (var i = 1; i <= n; i++) {
        var id = "tpl-param-" + i;
        var label = document.createElement("label");
        label.htmlFor = id;
        label.textContent = "Parameter {{" + i + "}}";
        var input = document.createElement("input");
        input.id = id;
        input.value = old[i - 1] || "";
        input.addEventListener("input", updatePreview);
        tplParams.appendChild(label);
        tplParams.appendChild(input);
      }
      updatePreview();
    }

    function params() {
      return Array.prototype.map.call(tplParams.querySelectorAll("input"), function (i) { return i.value; });
    }

    function updatePreview() {
      var opt = tplSelect.selectedOptions[0];
      if (!opt) { tplPreview.textContent = ""; return; }
      var p = params();
      tplPreview.textContent = opt.dataset.body.replace(/\{\{(\d+)\}\}/g, function (m, d) { return p[d - 1] || m; });
    }
    tplSelect.addEventListener("change", renderParams);

    function usingTemplate() { return !tplFields.hidden; }

    function setSend(allowed, why) {
      sendBtn.disabled = !allowed || sending;
      reason.textContent = allowed ? "" : why || "";
    }

    var timer = null;
    function check() {
      clearTimeout(timer);
      timer = setTimeout(doCheck, 200);
    }

    function doCheck() {
      var ch = channel.value;
      var opt = channel.selectedOptions[0];
      emailFields.hidden = ch !== "email" || note.checked;
      social.hidden = !(ch === "messenger" || ch === "instagram") || note.checked;
      if (note.checked) {
        // Notes go nowhere: no channel rule applies.
        tplFields.hidden = true;
        textFields.hidden = false;
        info.textContent = "internal note: only agents see it";
        setSend(text.value.trim() !== "", "");
        return;
      }
      // A policy may refuse an empty draft (WhatsApp: "the message is
      // empty"), which says nothing about the channel: with nothing typed,
      // ask about a word, as the server's reply options do.
      var empty = text.value.trim() === "" && uploads.length === 0;
      var q = "channel=" + encodeURIComponent(ch) + "&text=" + encodeURIComponent(empty ? "Hello" : text.value);
      if (uploads.length) q += "&attachments=" + encodeURIComponent(uploads.map(function (u) { return u.id; }).join(","));
      api("GET", "/api/v1/conversations/" + conv + "/compose?" + q).then(function (d) {
        decision = d;
        var bits = [];
        if (!empty && d.encoding) bits.push(d.encoding);
        if (!empty && d.segments) bits.push(d.segments + (d.segments === 1 ? " segment" : " segments"));
        if (!empty && d.cost) bits.push("about $" + d.cost.toFixed(4));
        windowEnds = d.window_ends_at ? new Date(d.window_ends_at) : null;
        // Only outside the window (the policy says so): a refusal for
        // another reason (too long a text) leaves the text to fix.
        var templatesOnly = !d.allowed && !!(d.details && d.details.templates_only) && d.templates && d.templates.length > 0;
        tplFields.hidden = !templatesOnly;
        textFields.hidden = templatesOnly;
        if (templatesOnly) {
          renderTemplates(d.templates);
          bits.push("the 24-hour window is closed: only approved templates");
        }
        if (d.details && d.details.delivery) bits.push("delivery: " + d.details.delivery);
        // A closed window has nothing to count down (the browser's clock
        // may differ from the server's).
        info.textContent = bits.join(" · ") + (d.allowed ? countdown() : "");
        if (templatesOnly) setSend(false, ""); // renderTemplates decides once the list is there
        else setSend(d.allowed && (text.value.trim() !== "" || uploads.length > 0), d.allowed ? "" : d.reason);
        if (!d.allowed && !templatesOnly && opt && opt.dataset.refused === undefined) opt.dataset.refused = d.reason;
      }).catch(function (err) {
        setSend(false, err.message);
      });
    }

    function countdown() {
      if (!windowEnds) return "";
      var left = windowEnds - Date.now();
      if (left <= 0) return "";
      var h = Math.floor(left / 3600000), m = Math.floor((left % 3600000) / 60000);
      return " · window closes in " + h + " h " + m + " min";
    }
    setInterval(function () { if (windowEnds && info.textContent) check(); }, 60000);

    // Typing frames: at least every 3 s while the agent types (§6.1).
    var lastTyping = 0;
    text.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTyping > 2500) {
        lastTyping = now;
        send({ type: "typing", conversation_id: conv });
      }
      cannedSuggest();
      check();
    });
    channel.addEventListener("change", check);
    note.addEventListener("change", check);

    document.getElementById("go-private").addEventListener("click", function () {
      var prefer = ["email", "sms", "whatsapp"];
      for (var i = 0; i < prefer.length; i++) {
        var o = channel.querySelector('option[value="' + prefer[i] + '"]');
        if (o && o.dataset.refused === undefined) { channel.value = prefer[i]; check(); return; }
      }
      alert("This customer has no private channel that can take a reply now.");
    });

    attach.addEventListener("change", function () {
      Array.prototype.forEach.call(attach.files, function (file) {
        var fd = new FormData();
        fd.append("file", file);
        info.textContent = "uploading " + file.name + "…";
        fetch("/api/v1/uploads", { method: "POST", body: fd, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
          .then(function (res) { return res.json().then(function (d) { if (!res.ok) throw new Error(d.error ? d.error.message : res.status); return d; }); })
          .then(function (d) { uploads.push(d); check(); })
          .catch(function (err) { reason.textContent = file.name + ": " + err.message; });
      });
    });

    // E-mail formatting: the buttons put marks around the selection.
    document.getElementById("format-bar").addEventListener("click", function (e) {
      var b = e.target.closest ? e.target.closest("button[data-format]") : null;
      if (!b) return;
      var from = text.selectionStart, to = text.selectionEnd, sel = text.value.slice(from, to);
      var out = sel;
      switch (b.dataset.format) {
        case "bold": out = "**" + (sel || "bold") + "**"; break;
        case "italic": out = "_" + (sel || "italic") + "_"; break;
        case "link":
          var url = window.prompt("Link to (https://…)", "https://");
          if (!url || !/^https?:\/\//.test(url)) return;
          out = "[" + (sel || url) + "](" + url + ")";
          break;
        case "list": out = (sel || "item").split("\n").map(function (l) { return "- " + l; }).join("\n"); break;
      }
      text.value = text.value.slice(0, from) + out + text.value.slice(to);
      text.focus();
      text.selectionStart = from;
      text.selectionEnd = from + out.length;
      check();
    });

    // Canned responses: "/short" at the start of a word.
    var canned = Array.prototype.map.call(document.querySelectorAll("#canned li"), function (li) {
      return { shortcut: li.dataset.shortcut, title: li.dataset.title, body: li.textContent };
    });
    var suggest = document.getElementById("canned-suggest");
    function cannedWord() {
      var upto = text.value.slice(0, text.selectionStart);
      var m = upto.match(/(^|\s)\/([\w-]*)$/);
      return m ? m[2] : null;
    }
    function cannedSuggest() {
      var w = cannedWord();
      suggest.innerHTML = "";
      if (w === null || !canned.length) { suggest.hidden = true; return; }
      var hits = canned.filter(function (c) { return c.shortcut.indexOf(w) === 0; });
      hits.forEach(function (c, i) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        li.dataset.index = i;
        li.textContent = "/" + c.shortcut + " — " + c.title;
        li.addEventListener("mousedown", function (e) { e.preventDefault(); insertCanned(c); });
        suggest.appendChild(li);
      });
      suggest.hidden = hits.length === 0;
      suggest.hits = hits;
    }
    function insertCanned(c) {
      var pos = text.selectionStart;
      var upto = text.value.slice(0, pos).replace(/\/[\w-]*$/, "");
      text.value = upto + c.body + text.value.slice(pos);
      text.selectionStart = text.selectionEnd = (upto + c.body).length;
      suggest.hidden = true;
      check();
    }
    text.addEventListener("keydown", function (e) {
      if (!suggest.hidden && suggest.hits && suggest.hits.length && (e.key === "Tab" || e.key === "Enter")) {
        e.preventDefault();
        insertCanned(suggest.hits[0]);
        return;
      }
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      // A double click sends once: the first click disables Send until
      // the server has answered.
      if (sending || sendBtn.disabled) return;
      sending = true;
      sendBtn.disabled = true;
      var body = { channel: channel.value };
      if (note.checked) body = { note: true };
      if (usingTemplate()) {
        var parts = (tplSelect.value || "|").split("|");
        body.template = { name: parts[0], language: parts[1], params: params() };
        body.text = "";
      } else {
        body.text = text.value;
      }
      if (uploads.length) body.attachments = uploads.map(function (u) { return u.id; });
      if (channel.value === "email" && !note.checked) {
        // The text part keeps the marks as typed; the HTML part renders
        // them (the server sanitises it again).
        if (body.text) body.html = emailHTML(body.text);
        var list = function (v) { return v.split(",").map(function (s) { return s.trim(); }).filter(Boolean); };
        if (form.elements.cc.value) body.cc = list(form.elements.cc.value);
        if (form.elements.bcc.value) body.bcc = list(form.elements.bcc.value);
      }
      api("POST", "/api/v1/conversations/" + conv + "/messages", body)
        .then(function (m) {
          text.value = "";
          uploads = [];
          attach.value = "";
          reason.textContent = "";
          flash(note.checked ? "note added" : "reply queued");
          if (m && m.id) upsertMessage(m.id, true);
        })
        .catch(function (err) {
          // The server's refusal is shown as it said it.
          reason.textContent = err.message;
        })
        .finally(function () {
          sending = false;
          check();
        });
    });

    check();
  }

  // emailHTML renders the composer's marks for an e-mail's HTML part:
  // **bold**, _italic_, [text](http(s) URL), paragraphs, and lists of
  // lines starting "- ". Everything is escaped first.
  function emailHTML(src) {
    var esc = function (v) { return v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;"); };
    var inline = function (v) {
      return esc(v)
        .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
        .replace(/(^|[\s(])_([^_\n]+)_(?=[\s.,;:!?)]|$)/g, "$1<em>$2</em>")
        .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2">$1</a>');
    };
    return src.replace(/\r/g, "").split(/\n{2,}/).map(function (block) {
      var lines = block.split("\n");
      if (lines.every(function (l) { return /^\s*- /.test(l); })) {
        return "<ul>" + lines.map(function (l) { return "<li>" + inline(l.replace(/^\s*- /, "")) + "</li>"; }).join("") + "</ul>";
      }
      return "<p>" + lines.map(inline).join("<br>") + "</p>";
    }).join("\n");
  }

  // ---- keyboard shortcuts ------------------------------------------------------
  var pendingG = false;
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll("#inbox-rows tr[data-conversation]"));
    var cur = document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr[data-conversation]") : null;
    var i = rows.indexOf(cur);
    switch (e.key) {
      case "?":
        var d = document.getElementById("shortcuts");
        if (d && d.showModal) d.showModal();
        e.preventDefault();
        break;
      case "j":
      case "k":
        if (!rows.length) return;
        i = e.key === "j" ? Math.min(rows.length - 1, i + 1) : Math.max(0, i - 1);
        rows[i].focus();
        e.preventDefault();
        break;
      case "Enter":
        if (cur) location.href = "/conversations/" + cur.dataset.conversation;
        break;
      case "s":
        var q = document.getElementById("q");
        if (q) { q.focus(); e.preventDefault(); }
        break;
      case "r":
        var r = document.getElementById("reply");
        if (r) { r.focus(); e.preventDefault(); }
        break;
      case "g":
        pendingG = true;
        setTimeout(function () { pendingG = false; }, 1000);
        return;
      case "i":
        if (pendingG) location.href = "/";
        break;
    }
    pendingG = false;
  });

  // Waiting times tick without reloads.
  setInterval(function () {
    document.querySelectorAll("time[data-since]").forEach(function (el) {
      var s = (Date.now() - new Date(el.getAttribute("datetime"))) / 1000;
      el.textContent = s < 60 ? Math.max(0, Math.floor(s)) + " s" : s < 3600 ? Math.floor(s / 60) + " min" : s < 172800 ? Math.floor(s / 3600) + " h" : Math.floor(s / 86400) + " d";
    });
  }, 30000);

  // Analytics: in the viewer's own time zone unless one was chosen, and
  // tables sorted by a click on a column's header.
  if (document.body.dataset.page === "analytics") {
    var params = new URLSearchParams(location.search);
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { zone = ""; }
    if (!params.get("tz") && zone && zone !== "UTC") {
      params.set("tz", zone);
      location.replace(location.pathname + "?" + params.toString());
      return;
    }
  }
  document.addEventListener("click", function (e) {
    var th = e.target.closest("table.sortable th");
    if (!th) return;
    var table = th.closest("table"), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.dataset.sort === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > col; });
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col];
      if (numeric) return dir * (parseFloat(x.dataset.value) - parseFloat(y.dataset.value));
      return dir * x.textContent.localeCompare(y.textContent);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });

  connect();
})();
