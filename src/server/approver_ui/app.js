// The approver page's only script (served from /approvals/ui/app.js; the page's CSP allows no
// other). The approver token lives in sessionStorage for this tab and travels only as an
// `Authorization: Bearer` header: never in a URL, never in a cookie. Every text that comes
// from the server (commands, paths, reasons, client names: attacker-chosen) is rendered
// with textContent, never parsed as HTML.
"use strict";

(() => {
  const KEY = "sshwarden-approver-token";
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  // id -> <li> of a pending request: kept across polls so a half-done confirmation survives.
  const shown = new Map();

  const token = () => sessionStorage.getItem(KEY) || "";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function status(text) {
    $("status").textContent = text;
  }

  function api(path, method) {
    return fetch(path, {
      method: method || "GET",
      headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  }

  function showError(text) {
    const e = $("error");
    e.textContent = text;
    e.hidden = !text;
  }

  function signOut(why) {
    sessionStorage.removeItem(KEY);
    if (timer) clearInterval(timer);
    timer = null;
    shown.clear();
    $("pending").replaceChildren();
    $("decided").replaceChildren();
    $("main-view").hidden = true;
    $("signout").hidden = true;
    $("signin-view").hidden = false;
    status("");
    showError(why || "");
  }

  function age(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  // `upload:PATH` / `download:PATH` are transfers; anything else is a command.
  function describe(what) {
    for (const kind of ["upload", "download"]) {
      if (what.startsWith(kind + ":")) return [kind === "upload" ? "Upload to" : "Download from", what.slice(kind.length + 1)];
    }
    return ["Command", what];
  }

  function details(r, now) {
    const dl = el("dl");
    const row = (name, value, cls) => {
      dl.append(el("dt", null, name));
      const dd = el("dd", cls, value);
      dl.append(dd);
      return dd;
    };
    row("Hosts", r.hosts, "hosts");
    row("Rule", r.rule || "-", "rule");
    row("Reason", r.reason, "reason");
    row("Client", r.client, "client");
    if (now !== undefined) row("Age", age(now - r.requested_at_ms), "age");
    return dl;
  }

  function pendingItem(r, now) {
    const li = el("li", "request");
    li.dataset.id = r.id;
    const [label, text] = describe(r.what);
    li.append(el("div", "label", label), el("div", "what", text), details(r, now));
    const actions = el("div", "actions");
    const outcome = el("span", "outcome");
    const ask = (verb) => {
      const yes = el("button", "confirm confirm-" + verb, verb === "approve" ? "Confirm approve" : "Confirm deny");
      const no = el("button", "cancel", "Cancel");
      yes.type = no.type = "button";
      yes.addEventListener("click", () => decide(r.id, verb, actions, outcome));
      no.addEventListener("click", () => actions.replaceChildren(...choices()));
      actions.replaceChildren(yes, no);
    };
    const choices = () => {
      const approve = el("button", "approve", "Approve");
      const deny = el("button", "deny", "Deny");
      approve.type = deny.type = "button";
      approve.addEventListener("click", () => ask("approve"));
      deny.addEventListener("click", () => ask("deny"));
      return [approve, deny];
    };
    actions.replaceChildren(...choices());
    li.append(actions, outcome);
    return li;
  }

  async function decide(id, verb, actions, outcome) {
    actions.replaceChildren();
    outcome.className = "outcome";
    outcome.textContent = verb === "approve" ? "Approving…" : "Denying…";
    try {
      const resp = await api("/approvals/" + encodeURIComponent(id) + "/" + verb, "POST");
      if (resp.status === 401) return signOut("The approver token was refused.");
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(body.error || "HTTP " + resp.status);
      outcome.textContent = body.decision === "approved" ? "Approved." : "Denied.";
    } catch (e) {
      outcome.className = "outcome failed";
      outcome.textContent = "Not decided: " + e.message;
    }
    poll();
  }

  function decidedItem(d) {
    const li = el("li", "decided " + d.decision);
    li.dataset.id = d.id;
    const when = new Date(d.decided_at_ms).toLocaleString();
    const [label, text] = describe(d.what);
    li.append(el("div", "verdict", d.decision + " by " + d.by + " at " + when), el("div", "label", label));
    li.append(el("div", "what", text), details(d));
    return li;
  }

  function render(data) {
    const now = data.now_ms || Date.now();
    const list = $("pending");
    const live = new Set();
    for (const r of data.approvals || []) {
      live.add(r.id);
      let li = shown.get(r.id);
      if (!li) {
        li = pendingItem(r, now);
        shown.set(r.id, li);
        list.append(li);
      } else {
        const a = li.querySelector("dd.age");
        if (a) a.textContent = age(now - r.requested_at_ms);
      }
    }
    for (const [id, li] of shown) {
      if (!live.has(id)) {
        li.remove();
        shown.delete(id);
      }
    }
    $("empty").hidden = live.size > 0;
    $("decided").replaceChildren(...(data.decided || []).map(decidedItem));
  }

  async function poll() {
    try {
      const resp = await api("/approvals");
      if (resp.status === 401) return signOut("The approver token was refused.");
      if (!resp.ok) return status("The server answered " + resp.status + ".");
      render(await resp.json());
      status("Updated " + new Date().toLocaleTimeString());
    } catch (e) {
      status("Cannot reach the server: " + e.message);
    }
  }

  function start() {
    $("signin-view").hidden = true;
    $("main-view").hidden = false;
    $("signout").hidden = false;
    showError("");
    poll();
    if (!timer) timer = setInterval(poll, POLL_MS);
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $("token");
    const offered = input.value.trim();
    input.value = "";
    if (!offered) return showError("Enter the approver token.");
    sessionStorage.setItem(KEY, offered);
    try {
      const resp = await api("/approvals");
      if (!resp.ok) {
        const why = resp.status === 401 ? "Wrong token: the server refused it." : "The server answered " + resp.status + ".";
        return signOut(why);
      }
    } catch (e) {
      return signOut("Cannot reach the server: " + e.message);
    }
    start();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut(""));
    if (token()) start();
  });
})();
