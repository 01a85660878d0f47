/* Switchboard live-chat widget (docs/design.md §6.2). Plain JavaScript,
   no build step, no eval, no innerHTML: every text is set with textContent.
   Embed: <script src="https://support.example/widget.js" data-site="KEY" async></script>
   Optional: data-title, data-color (#rrggbb), data-prechat="off",
   data-user-id and data-user-hash (hex HMAC-SHA256 of the id under the
   site's secret). */
(() => {
  'use strict';
  const w = window, d = document;
  const script = d.currentScript || [...d.querySelectorAll('script[data-site][src]')].reverse().find(s => /\/widget\.js([?#]|$)/.test(s.src));
  if (!script || w.SwitchboardChat) return;
  const site = script.getAttribute('data-site');
  if (!site) return console.warn('Switchboard chat: the script tag needs data-site');
  const src = new URL(script.src, d.baseURI);
  const base = src.origin + src.pathname.replace(/\/widget\.js$/, '');
  const wsBase = base.replace(/^http/, 'ws');
  const attr = n => script.getAttribute('data-' + n) || '';
  const title = attr('title') || 'Chat with us';
  const userID = attr('user-id'), userHash = attr('user-hash');

  // The server's limits (inbox/uploads.go): 25 MB; images, PDF, text,
  // audio, video and zip (Office documents are zip). The server sniffs the
  // bytes and has the last word; this only spares a visitor the wait.
  const MAX_BYTES = 25 << 20;
  const TYPES = /^(image\/(jpeg|png|gif|webp|bmp)|application\/(pdf|zip|x-zip-compressed|gzip|x-gzip|vnd\.openxmlformats-officedocument\.[\w.]+)|text\/(plain|csv)|audio\/(mpeg|mp3|ogg|wave?|x-wav|aiff|x-aiff|midi|mid|x-midi)|video\/(mp4|webm|ogg|avi|x-msvideo))$/;
  const ACCEPT = 'image/jpeg,image/png,image/gif,image/webp,image/bmp,application/pdf,text/plain,text/csv,audio/mpeg,audio/ogg,audio/wav,audio/aiff,audio/midi,video/mp4,video/webm,video/ogg,video/x-msvideo,.zip,.gz,.docx,.xlsx,.pptx';
  const TYPE_REFUSED = 'This type of file cannot be sent. You can send images, PDF, text, audio, video and zip files.';
  const TOO_BIG = 'This file is too large: files are limited to 25 MB.';

  // The visitor token and unsent messages, per site, in this page's origin.
  const KEY = 'switchboard.chat.' + site;
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { /* storage blocked: this page only */ }
  const save = () => { try { localStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* ignore */ } };
  if (saved.token && (saved.uid || '') !== userID) saved = {}; // another signed-in user
  saved.pending = saved.pending || [];

  let ws = null, attempt = 0, fails = 0, again = 0, readTimer = 0, retryTimer = 0, connTimer = 0, typingTimer = 0, lastTyping = 0;
  let isOpen = false, unread = 0, uploading = 0, staged = [], mode = '', starting = null;
  const byID = new Map(), byClient = new Map(), readSent = new Set(), reads = [];

  // ---- DOM --------------------------------------------------------------
  const el = (tag, props, ...kids) => {
    const e = d.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    e.append(...kids.filter(Boolean));
    return e;
  };
  const icon = path => {
    const ns = 'http://www.w3.org/2000/svg', s = d.createElementNS(ns, 'svg'), p = d.createElementNS(ns, 'path');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    p.setAttribute('d', path);
    s.append(p);
    return s;
  };
  const CHAT = 'M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z';
  const CLOSE = 'M6 6l12 12M18 6L6 18';
  const CLIP = 'M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9';
  const SEND = 'M4 12l16-8-6 16-2.5-6.5z';

  const CSS = `
:host{all:initial!important;display:block!important;position:fixed!important;right:16px!important;bottom:16px!important;left:auto!important;top:auto!important;z-index:2147483000!important;visibility:visible!important;opacity:1!important;transform:none!important;width:auto!important;height:auto!important;margin:0!important}
*{box-sizing:border-box}
[hidden]{display:none!important}
.root{--a:var(--sb-accent,#2457d6);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2330;text-align:left;direction:ltr}
button,input,textarea{font:inherit;color:inherit;margin:0}
button{cursor:pointer}
:focus-visible{outline:2px solid var(--a);outline-offset:2px}
svg{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.vh{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.launcher{position:relative;display:flex;align-items:center;justify-content:center;width:56px;height:56px;padding:0;border:0;border-radius:50%;background:var(--a);color:#fff;box-shadow:0 4px 16px rgba(0,0,0,.25)}
.launcher svg{width:28px;height:28px}
.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#c62828;color:#fff;font-size:12px;font-weight:700;line-height:20px}
.panel{position:fixed;right:16px;bottom:88px;display:flex;flex-direction:column;width:370px;max-width:calc(100vw - 32px);height:600px;max-height:calc(100vh - 104px);background:#fff;border-radius:12px;box-shadow:0 8px 32px rgba(0,0,0,.25);overflow:hidden}
.head{display:flex;align-items:flex-start;gap:8px;padding:14px 12px 14px 16px;background:var(--a);color:#fff}
.head h2{margin:0;font-size:16px;font-weight:600;line-height:1.3}
.head p{margin:2px 0 0;font-size:12.5px;opacity:.92}
.x{margin-left:auto;flex:none;display:flex;align-items:center;justify-content:center;width:32px;height:32px;padding:0;border:0;border-radius:6px;background:transparent;color:#fff}
.x:hover{background:rgba(255,255,255,.15)}
.log{flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:10px;padding:14px 16px;background:#f5f6f8}
.msg{max-width:82%;align-self:flex-start}
.msg.me{align-self:flex-end}
.who{margin-bottom:2px;font-size:12px;color:#505868}
.bubble{padding:8px 12px;border:1px solid #dde1e8;border-radius:14px 14px 14px 4px;background:#fff;white-space:pre-wrap;overflow-wrap:anywhere}
.me .bubble{border-color:transparent;border-radius:14px 14px 4px 14px;background:var(--a);color:#fff}
.rating{display:flex;gap:6px;margin-top:8px;white-space:normal}.rating button{min-width:34px;padding:6px 0;border:1px solid var(--a);border-radius:8px;background:#fff;color:var(--a);font:inherit;cursor:pointer}
.att{display:flex;align-items:center;gap:4px;color:inherit}
.att span{text-decoration:underline;overflow-wrap:anywhere}
.att svg{flex:none;width:14px;height:14px}
.meta{margin-top:2px;font-size:11px;color:#5a6272}
.me .meta{text-align:right}
.typing{min-height:20px;padding:2px 16px;font-size:12px;font-style:italic;color:#505868;background:#f5f6f8}
.note{padding:8px 16px;font-size:13px;background:#fff4e0;color:#5c3600}
.form{display:flex;flex-direction:column;gap:8px;padding:12px 16px;border-top:1px solid #e3e6eb;background:#fff}
.form p{margin:0}
label{display:flex;flex-direction:column;gap:3px;font-size:12px;font-weight:600;color:#373e4c}
input,textarea{font-size:14px}
input,textarea{width:100%;padding:8px 10px;border:1px solid #aeb5c2;border-radius:8px;background:#fff;color:#1d2330;font-weight:400}
.btn{align-self:flex-start;padding:8px 16px;border:0;border-radius:8px;background:var(--a);color:#fff;font-weight:600}
.btn:disabled,.ic:disabled{opacity:.5;cursor:default}
.chips{display:flex;flex-wrap:wrap;gap:6px;padding:6px 12px 0;background:#fff}
.chip{display:inline-flex;align-items:center;gap:2px;max-width:100%;padding:2px 2px 2px 10px;border-radius:12px;background:#e9edf4;font-size:12px}
.chip span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.chip button{width:22px;height:22px;padding:0;border:0;border-radius:50%;background:none}
.chip svg{width:12px;height:12px}
.compose{display:flex;align-items:flex-end;gap:4px;padding:8px 8px 8px 12px;border-top:1px solid #e3e6eb;background:#fff}
.compose label{flex:1}
.compose textarea{display:block;height:40px;max-height:120px;resize:none}
.ic{display:flex;align-items:center;justify-content:center;flex:none;width:40px;height:40px;padding:0;border:0;border-radius:8px;background:transparent;color:#373e4c}
.ic.send{color:var(--a)}
@media (max-width:480px){.panel{top:0;right:0;bottom:0;left:0;width:100%;max-width:none;height:auto;max-height:none;border-radius:0}.open .launcher{display:none}}
`;

  const host = el('switchboard-chat');
  const color = attr('color');
  if (/^#[0-9a-f]{3,8}$/i.test(color)) host.style.setProperty('--sb-accent', color);
  const root = host.attachShadow({ mode: 'open' });
  // A constructed style sheet needs no 'unsafe-inline' in the page's CSP.
  if (root.adoptedStyleSheets && w.CSSStyleSheet && 'replaceSync' in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else root.append(el('style', { text: CSS }));

  const badge = el('span', { class: 'badge', 'aria-hidden': 'true', hidden: true });
  const launcher = el('button', { type: 'button', class: 'launcher', 'aria-expanded': 'false', 'aria-controls': 'sb-panel', 'aria-label': title, onclick: () => isOpen ? close() : open() }, icon(CHAT), badge);
  const statusLine = el('p', { id: 'sb-status', hidden: true });
  const log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
  const typing = el('div', { class: 'typing', 'aria-live': 'polite' });
  const conn = el('div', { class: 'note', role: 'status', hidden: true, text: 'Connection lost. Reconnecting…' });
  const notice = el('div', { class: 'note', role: 'alert', hidden: true });
  const nameIn = el('input', { type: 'text', name: 'name', autocomplete: 'name', maxlength: '200' });
  const emailIn = el('input', { type: 'email', name: 'email', autocomplete: 'email', maxlength: '320' });
  const startBtn = el('button', { type: 'submit', class: 'btn', text: 'Start chat' });
  const prechat = el('form', { class: 'form', 'aria-label': 'Start a chat', onsubmit: e => { e.preventDefault(); start(); } },
    el('p', { text: 'Hi! Ask us anything. Tell us who you are, if you like.' }),
    el('label', {}, 'Name (optional)', nameIn),
    el('label', {}, 'E-mail (optional)', emailIn),
    startBtn);
  const askEmail = el('input', { type: 'email', name: 'email', autocomplete: 'email', required: true, maxlength: '320' });
  const emailForm = el('form', { class: 'form', 'aria-label': 'Your e-mail address', hidden: true, onsubmit: e => { e.preventDefault(); giveEmail(); } },
    el('label', {}, 'Your e-mail address, so that we can answer', askEmail),
    el('button', { type: 'submit', class: 'btn', text: 'Save' }));
  const chips = el('div', { class: 'chips', hidden: true });
  // 5000 UTF-16 units fit the server's 16 KB of UTF-8.
  const input = el('textarea', { rows: '1', name: 'message', placeholder: 'Write a message…', maxlength: '5000' });
  const file = el('input', { type: 'file', class: 'vh', tabindex: '-1', 'aria-hidden': 'true', accept: ACCEPT });
  const attach = el('button', { type: 'button', class: 'ic', 'aria-label': 'Attach a file', title: 'Attach a file', onclick: () => file.click() }, icon(CLIP));
  const sendBtn = el('button', { type: 'submit', class: 'ic send', 'aria-label': 'Send', title: 'Send' }, icon(SEND));
  const composer = el('form', { class: 'compose', onsubmit: e => { e.preventDefault(); submit(); } },
    el('label', {}, el('span', { class: 'vh', text: 'Message' }), input), file, attach, sendBtn);
  const panel = el('div', { id: 'sb-panel', class: 'panel', role: 'dialog', 'aria-labelledby': 'sb-title', 'aria-describedby': 'sb-status', hidden: true },
    el('div', { class: 'head' },
      el('div', {}, el('h2', { id: 'sb-title', text: title }), statusLine),
      el('button', { type: 'button', class: 'x', 'aria-label': 'Close chat', title: 'Close', onclick: () => close() }, icon(CLOSE))),
    conn, log, typing, notice, emailForm, prechat, chips, composer);
  const wrap = el('div', { class: 'root' }, panel, launcher);
  root.append(wrap);

  // ---- panel ------------------------------------------------------------
  const hasSession = () => !!saved.token;
  function layout() {
    const pre = !hasSession() && attr('prechat') !== 'off';
    prechat.hidden = !pre;
    composer.hidden = pre;
    emailForm.hidden = !(mode === 'async' && hasSession() && !saved.email);
  }
  function open() {
    isOpen = true;
    panel.hidden = false;
    wrap.classList.add('open');
    launcher.setAttribute('aria-expanded', 'true');
    layout();
    (prechat.hidden ? input : nameIn).focus();
    scrollDown();
    markRead();
  }
  function close() {
    const inside = root.activeElement && panel.contains(root.activeElement);
    isOpen = false;
    panel.hidden = true;
    wrap.classList.remove('open');
    launcher.setAttribute('aria-expanded', 'false');
    if (inside) launcher.focus();
  }
  panel.addEventListener('keydown', e => { if (e.key === 'Escape') { e.stopPropagation(); close(); } });
  input.addEventListener('keydown', e => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  input.addEventListener('input', () => {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
    const now = Date.now();
    if (input.value.trim() && now - lastTyping >= 3000 && send({ type: 'typing' })) lastTyping = now;
  });
  file.addEventListener('change', () => { const f = file.files[0]; file.value = ''; if (f) upload(f); });
  d.addEventListener('visibilitychange', markRead);
  w.addEventListener('online', () => { if (!ws && hasSession()) { attempt = 0; connect(); } });

  let noticeTimer = 0;
  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
    clearTimeout(noticeTimer);
    if (text) noticeTimer = setTimeout(() => say(''), 8000);
  }
  function setBadge() {
    badge.textContent = unread > 9 ? '9+' : String(unread);
    badge.hidden = !unread;
    launcher.setAttribute('aria-label', unread ? `${title} (${unread} unread)` : title);
  }
  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 60;
  const scrollDown = () => { log.scrollTop = log.scrollHeight; };

  // ---- status -----------------------------------------------------------
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  function within(s) {
    if (s <= 60) return 'under a minute';
    if (s < 3600) return 'under ' + plural(Math.ceil(s / 60), 'minute');
    return 'under ' + plural(Math.ceil(s / 3600), 'hour');
  }
  function setStatus(s) {
    if (!s || !s.mode) return;
    mode = s.mode;
    const secs = Math.max(0, +s.typical_response_seconds || 0);
    statusLine.textContent = mode === 'async'
      ? 'We will respond by e-mail' + (secs ? ' within ' + plural(Math.max(1, Math.ceil(secs / 3600)), 'hour') : '')
      : secs ? 'Typical response time: ' + within(secs) : 'We are online';
    statusLine.hidden = false;
    layout();
  }

  // ---- messages ---------------------------------------------------------
  // A visitor's message is delivered once stored ("received"), read once
  // an agent has read it.
  const RANK = { sending: 0, failed: 1, queued: 2, sent: 2, received: 3, delivered: 3, read: 4 };
  const LABEL = { sending: 'Sending…', failed: 'Not sent', queued: 'Sent', sent: 'Sent', received: 'Delivered', delivered: 'Delivered', read: 'Read' };
  // A status never moves backwards (a late "delivered" after "read").
  const better = (old, now) => !(now in RANK) || RANK[old] > RANK[now] ? old : now;
  const when = t => { const x = Date.parse(t); return isNaN(x) ? Infinity : x; };
  function safeURL(u) {
    try { const x = new URL(u, base + '/'); if (x.protocol === 'https:' || x.protocol === 'http:') return x.href; } catch (e) { /* not a URL */ }
    return '';
  }
  function agentName(m) {
    const n = m.sender_name || (m.agent && m.agent.name) || m.sender || '';
    return n && !n.includes('@') ? n : 'Support';
  }
  function fill(r) {
    const m = r.m;
    const kids = [];
    if (m.text) kids.push(d.createTextNode(m.text));
    for (const a of m.attachments || []) {
      const url = safeURL(a.url || ''), name = a.name || 'Attachment';
      kids.push(el(url ? 'a' : 'span', url ? { class: 'att', href: url, target: '_blank', rel: 'noopener noreferrer', download: name } : { class: 'att' }, icon(CLIP), el('span', { text: name })));
    }
    if (m.survey && !r.me) kids.push(rating(r));
    r.bubble.replaceChildren(...kids);
    const t = when(m.created_at);
    const parts = [];
    if (t !== Infinity) parts.push(new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    if (r.me) parts.push(LABEL[m.status] || 'Sent');
    r.meta.textContent = parts.join(' · ');
    r.node.setAttribute('data-status', r.me ? m.status || '' : '');
  }
  // rating offers a survey's five answers; a click sends the number as a
  // message, which Switchboard records as the rating (never echoed).
  function rating(r) {
    if (saved.rated && saved.rated[r.m.id]) return el('div', { class: 'rating', text: 'Thank you for your rating (' + saved.rated[r.m.id] + '/5).' });
    const row = el('div', { class: 'rating', role: 'group', 'aria-label': 'Rate us' });
    for (let n = 1; n <= 5; n++) {
      const b = el('button', { type: 'button', text: String(n), 'aria-label': 'Rate ' + n + ' out of 5' });
      b.addEventListener('click', () => {
        if (!send({ type: 'message', client_id: uid(), text: String(n) })) { connect(); return say('Not connected yet: try again in a moment.'); }
        saved.rated = saved.rated || {};
        saved.rated[r.m.id] = n;
        save();
        fill(r);
      });
      row.appendChild(b);
    }
    return row;
  }
  function place(r) {
    const t = when(r.m.created_at);
    let before = null;
    if (t !== Infinity) {
      for (const n of log.children) {
        if (n !== r.node && when(n.sbRec.m.created_at) > t) { before = n; break; }
      }
    }
    log.insertBefore(r.node, before);
  }
  // upsert shows a message, or updates the one already shown with its id
  // or client_id; it reports whether the message is new here.
  function upsert(m) {
    if (!m || m.direction === 'note') return false;
    const cid = m.client_id || '';
    let r = m.id ? byID.get(m.id) : null;
    const mine = cid ? byClient.get(cid) : null;
    if (r && mine && mine !== r) mine.node.remove();
    r = r || mine;
    const fresh = !r;
    if (fresh) {
      const me = m.direction !== 'out';
      const bubble = el('div', { class: 'bubble' }), meta = el('div', { class: 'meta' });
      r = { me, bubble, meta, m: {}, node: el('div', { class: me ? 'msg me' : 'msg' }, me ? null : el('div', { class: 'who', text: agentName(m) }), bubble, meta) };
      r.node.sbRec = r;
    }
    const moved = fresh || (!r.m.created_at && m.created_at);
    r.m = Object.assign({}, r.m, m, { status: better(r.m.status, m.status) });
    if (m.id) byID.set(m.id, r);
    if (cid) byClient.set(cid, r);
    const stick = nearBottom() || r.me;
    fill(r);
    if (moved) place(r);
    if (stick) scrollDown();
    return fresh;
  }

  // ---- socket -----------------------------------------------------------
  function send(frame) {
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }
  function frameOf(p) {
    const f = { type: 'message', client_id: p.client_id, text: p.text };
    if (p.attachments && p.attachments.length) f.attachments = p.attachments.map(a => a.id);
    return f;
  }
  function connect() {
    if (ws || !hasSession()) return;
    clearTimeout(retryTimer);
    const s = ws = new WebSocket(wsBase + '/chat/ws?token=' + encodeURIComponent(saved.token));
    let opened = false;
    s.onopen = () => {
      opened = true;
      attempt = fails = 0;
      clearTimeout(connTimer);
      connTimer = 0;
      conn.hidden = true;
      readSent.clear();
      reads.length = 0;
      // Unsent messages go again with their client ids: stored once.
      saved.pending.forEach(p => send(frameOf(p)));
      markRead();
    };
    s.onmessage = e => { let f; try { f = JSON.parse(e.data); } catch (x) { return; } onFrame(f); };
    s.onclose = e => {
      if (ws !== s) return;
      ws = null;
      // A refused upgrade looks like any network failure: after a few,
      // ask the session endpoint whether the token is still good (it
      // answers 401 or 403 when not, and forget() starts afresh).
      if (!opened && ++fails % 4 === 3) session('', '', saved.token).catch(() => {});
      if (!connTimer) connTimer = setTimeout(() => { connTimer = 0; if (!ws || ws.readyState !== 1) conn.hidden = false; }, 3000);
      retryTimer = setTimeout(connect, Math.min(30000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2));
    };
  }
  function disconnect() {
    clearTimeout(retryTimer);
    if (ws) { const s = ws; ws = null; s.close(1000); }
  }
  function forget() {
    disconnect();
    saved = { pending: [] };
    save();
    mode = '';
    statusLine.hidden = true;
    byID.clear(); byClient.clear();
    log.replaceChildren();
    layout();
  }
  function onFrame(f) {
    switch (f.type) {
      case 'message': {
        const m = f.message || {};
        if (!m.client_id && f.client_id) m.client_id = f.client_id;
        if (m.client_id && saved.pending.some(p => p.client_id === m.client_id)) {
          saved.pending = saved.pending.filter(p => p.client_id !== m.client_id);
          save();
        }
        if (upsert(m) && m.direction === 'out') {
          typing.textContent = '';
          if (m.status !== 'read' && !(isOpen && d.visibilityState === 'visible')) { unread++; setBadge(); }
        }
        markRead();
        break;
      }
      case 'typing': {
        const t = `${(f.agent && f.agent.name) || 'Support'} is typing…`;
        if (typing.textContent !== t) typing.textContent = t;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { typing.textContent = ''; }, 6000);
        break;
      }
      case 'receipt': {
        const r = byID.get(f.message_id);
        if (r) { r.m.status = better(r.m.status, f.status); fill(r); }
        break;
      }
      case 'status': setStatus(f); break;
      case 'error': {
        const code = f.error && f.error.code;
        console.warn('Switchboard chat:', f.error && f.error.message);
        // Not stored (too many frames at once, or the server was busy):
        // the same frames again in a while; stored ones are stored once.
        if ((code === 'rate_limited' || code === 'unavailable') && !again) {
          again = setTimeout(() => {
            again = 0;
            saved.pending.forEach(p => send(frameOf(p)));
            readSent.clear();
            markRead();
          }, 3000);
        }
        break;
      }
    }
  }
  // markRead tells the server which agent messages the visitor has seen:
  // those shown while the panel is open and the page visible. One frame
  // each, four a second at most (the server takes five).
  function markRead() {
    if (!isOpen || d.visibilityState !== 'visible') return;
    unread = 0;
    setBadge();
    for (const [id, r] of byID) {
      if (!r.me && r.m.status !== 'read' && !readSent.has(id)) { readSent.add(id); reads.push(id); }
    }
    drainReads();
  }
  function drainReads() {
    if (readTimer || !reads.length) return;
    if (!send({ type: 'read', message_id: reads[0] })) { reads.length = 0; readSent.clear(); return; } // again on open
    reads.shift();
    readTimer = setTimeout(() => { readTimer = 0; drainReads(); }, 250);
  }

  // ---- session ----------------------------------------------------------
  async function post(path, body, headers) {
    const res = await fetch(base + path, { method: 'POST', body, headers, credentials: 'omit', mode: 'cors' });
    let j = {};
    try { j = await res.json(); } catch (e) { /* not JSON */ }
    return { res, j };
  }
  // session starts a chat, or, given the visitor's token, goes on with
  // the same visitor (adding a name or an address given later).
  function session(name, email, token) {
    const body = { site };
    if (name) body.name = name;
    if (email) body.email = email;
    if (userID) { body.user_id = userID; body.user_hash = userHash; }
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    return post('/chat/sessions', JSON.stringify(body), headers).then(({ res, j }) => {
      if (!res.ok || !j.visitor_token) {
        if (j.error) console.warn('Switchboard chat:', j.error.message);
        if (token && (res.status === 401 || res.status === 403)) {
          forget();
          throw new Error('This chat has ended. Please start a new one.');
        }
        throw new Error(res.status === 403 || res.status === 404 ? 'Chat is not available on this page.' : res.status === 429 ? 'Too many attempts: please wait a moment and try again.' : 'The chat could not start. Please try again.');
      }
      disconnect();
      saved = { token: j.visitor_token, uid: userID, name: name || saved.name || '', email: email || saved.email || '', pending: saved.pending };
      save();
      setStatus(j.status);
      layout();
      connect();
    }, () => { throw new Error('The chat could not start: check your connection and try again.'); });
  }
  function ensure() {
    if (hasSession()) return Promise.resolve();
    return starting || (starting = session(nameIn.value.trim(), emailIn.value.trim()).finally(() => { starting = null; }));
  }
  async function start() {
    if (!emailIn.checkValidity()) return emailIn.reportValidity();
    startBtn.disabled = true;
    try {
      await ensure();
      say('');
      input.focus();
    } catch (e) { say(e.message); } finally { startBtn.disabled = false; }
  }
  // giveEmail goes on with the same visitor, now with an address that
  // replies can go to.
  async function giveEmail() {
    const email = askEmail.value.trim();
    if (!askEmail.checkValidity() || !email) return askEmail.reportValidity();
    try { await session('', email, saved.token); } catch (e) { return say(e.message); }
    layout();
    (prechat.hidden ? input : nameIn).focus();
  }

  function uid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return [...b].map(x => x.toString(16).padStart(2, '0')).join('');
  }
  function queue(text, attachments) {
    const p = { client_id: uid(), text, attachments };
    saved.pending.push(p);
    save();
    upsert({ client_id: p.client_id, direction: 'in', text, attachments, status: 'sending' });
    scrollDown();
    if (!send(frameOf(p))) connect();
  }
  async function submit() {
    const text = input.value.trim();
    if ((!text && !staged.length) || uploading) return;
    try { await ensure(); } catch (e) { return say(e.message); }
    const atts = staged;
    staged = [];
    chips.replaceChildren();
    chips.hidden = true;
    input.value = '';
    input.style.height = '';
    queue(text, atts);
  }

  // ---- uploads ----------------------------------------------------------
  function refusal(f) {
    if (!f.size) return 'This file is empty.';
    if (f.size > MAX_BYTES) return TOO_BIG;
    if (f.type && !TYPES.test(f.type)) return TYPE_REFUSED;
    return '';
  }
  async function upload(f) {
    const why = staged.length + uploading >= 10 ? 'At most 10 files go with one message.' : refusal(f);
    if (why) return say(why);
    try { await ensure(); } catch (e) { return say(e.message); }
    const label = el('span', { text: 'Uploading ' + f.name + '…' });
    const chip = el('span', { class: 'chip' }, label);
    chips.append(chip);
    chips.hidden = false;
    uploading++;
    sendBtn.disabled = true;
    try {
      const body = new FormData();
      body.append('file', f, f.name);
      const { res, j } = await post('/chat/uploads', body, { Authorization: 'Bearer ' + saved.token });
      const a = j.attachment || j;
      if (!res.ok || !a.id) {
        const msg = j.error && j.error.message;
        throw new Error(res.status === 413 || (j.error && j.error.code === 'too_large') ? TOO_BIG
          : msg ? 'The file was refused: ' + msg + '.' : 'The file could not be sent. Please try again.');
      }
      const item = { id: a.id, name: a.name || f.name, url: a.url };
      staged.push(item);
      label.textContent = item.name;
      chip.append(el('button', {
        type: 'button', 'aria-label': 'Remove ' + item.name, onclick: () => {
          staged = staged.filter(x => x !== item);
          chip.remove();
          chips.hidden = !chips.children.length;
          input.focus();
        },
      }, icon(CLOSE)));
    } catch (e) {
      chip.remove();
      chips.hidden = !chips.children.length;
      say(e instanceof TypeError ? 'The file could not be sent: check your connection and try again.' : e.message);
    } finally {
      sendBtn.disabled = !!--uploading;
    }
  }

  // ---- start ------------------------------------------------------------
  saved.pending.forEach(p => upsert({ client_id: p.client_id, direction: 'in', text: p.text, attachments: p.attachments, status: 'sending' }));
  layout();
  const mount = () => { d.body.append(host); connect(); };
  if (d.body) mount(); else d.addEventListener('DOMContentLoaded', mount);
  w.SwitchboardChat = { open, close };
})();
