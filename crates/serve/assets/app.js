// stocklake dashboard: plain JavaScript, no dependencies, refreshed every two seconds.
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);
  // The read token, when the server wants one: given once in the link's fragment
  // (…/#token=…, which never reaches a server or its logs) or typed into the form, kept for
  // this tab only, and sent as an Authorization header — never in a URL.
  const KEY = "stocklake-read-token";
  const fromHash = location.hash.startsWith("#token=") ? decodeURIComponent(location.hash.slice(7)) : "";
  if (fromHash) {
    sessionStorage.setItem(KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  let token = sessionStorage.getItem(KEY) || "";
  class Unauthorized extends Error {}
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const num = (v) => (v == null || v === "" ? null : Number(v));
  const fmt = (v, d) => { const n = num(v); return n == null ? "–" : n.toLocaleString(undefined, { maximumFractionDigits: d == null ? 1 : d }); };
  let store = params.get("store") || "";
  // the alerts shown: "open" (to do) or "handled" (snoozed or resolved by someone), bookmarkable
  let view = params.get("alerts") === "handled" ? "handled" : "open";
  // the write token (serve.write_token) for acting on alerts, asked for when the server wants it
  const WKEY = "stocklake-write-token";

  async function get(path, q) {
    const u = new URL(path, location.href);
    Object.entries(q || {}).forEach(([k, v]) => { if (v !== "" && v != null) u.searchParams.set(k, v); });
    const headers = { accept: "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    const r = await fetch(u, { headers, credentials: "omit" });
    if (r.status === 401) throw new Unauthorized(token ? "the read token was refused" : "a read token is needed");
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  function askForToken(why) {
    const form = $("login");
    form.hidden = false;
    $("login-why").textContent = why;
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("login-token").value.trim();
    if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY);
    $("login-token").value = "";
    $("login").hidden = true;
    refresh();
  });

  function ago(t) {
    if (!t) return "";
    const s = (Date.now() - Date.parse(t)) / 1000;
    if (s < 90) return Math.max(0, Math.round(s)) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return new Date(t).toLocaleString();
  }

  async function stores() {
    const d = await get("v1/stores");
    const sel = $("store");
    const seen = new Set(Array.from(sel.options).map((o) => o.value));
    d.stores.forEach((s) => {
      if (!seen.has(s.store_id)) {
        const o = document.createElement("option");
        o.value = s.store_id;
        o.textContent = s.store_id + (s.name ? " · " + s.name : "");
        sel.appendChild(o);
      }
    });
    sel.value = store;
    let fine = 0, below = 0, out = 0;
    d.stores.filter((s) => !store || s.store_id === store).forEach((s) => { fine += s.fine; below += s.below_reorder_point; out += s.out_of_stock; });
    $("k-products").textContent = fmt(fine + below + out, 0);
    $("k-out").textContent = fmt(out, 0);
    $("k-below").textContent = fmt(below, 0);
  }

  async function categories() {
    const d = await get("v1/stock/summary", { store_id: store });
    const agg = {};
    d.categories.forEach((c) => {
      const a = agg[c.category] || (agg[c.category] = { fine: 0, below: 0, out: 0 });
      a.fine += c.fine; a.below += c.below_reorder_point; a.out += c.out_of_stock;
    });
    const rows = Object.entries(agg).sort((a, b) => (b[1].out + b[1].below) - (a[1].out + a[1].below) || a[0].localeCompare(b[0]));
    if (!rows.length) { $("categories").innerHTML = '<p class="empty">no stock levels yet</p>'; return; }
    $("categories").innerHTML = rows.map(([name, a]) => {
      const t = a.fine + a.below + a.out || 1;
      const seg = (cls, n) => n ? `<div class="seg ${cls}" data-share="${(100 * n) / t}" title="${n} ${cls}"></div>` : "";
      return `<div class="cat" data-testid="category-row"><div>${esc(name)}</div><div class="bar">${seg("fine", a.fine)}${seg("below", a.below)}${seg("out", a.out)}</div><div class="counts">${a.fine} · ${a.below} · ${a.out}</div></div>`;
    }).join("");
    // widths through the DOM, not inline style attributes: the page's policy allows no inline style
    $("categories").querySelectorAll(".seg[data-share]").forEach((el) => { el.style.width = el.dataset.share + "%"; });
  }

  async function velocity() {
    const d = await get("v1/sales/velocity", { store_id: store, hours: 48 });
    const pts = d.hours.map((h) => ({ t: Date.parse(h.hour), v: num(h.units) || 0 }));
    if (pts.length < 2) { $("velocity").innerHTML = '<p class="empty">not enough sales yet</p>'; return; }
    const W = 640, H = 220, L = 44, B = 24, T = 10, R = 8;
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t, vmax = Math.max(...pts.map((p) => p.v)) || 1;
    const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / vmax) * (H - T - B);
    const line = pts.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join("");
    const area = line + `L${x(t1).toFixed(1)},${y(0)}L${x(t0).toFixed(1)},${y(0)}Z`;
    const ticks = [0, 0.5, 1].map((f) => `<text x="${L - 6}" y="${y(vmax * f) + 4}" text-anchor="end">${fmt(vmax * f, 0)}</text><line x1="${L}" x2="${W - R}" y1="${y(vmax * f)}" y2="${y(vmax * f)}" stroke="#e3e6ec"/>`).join("");
    const labels = [t0, (t0 + t1) / 2, t1].map((t, i) => `<text x="${x(t)}" y="${H - 6}" text-anchor="${["start", "middle", "end"][i]}">${new Date(t).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" })}</text>`).join("");
    $("velocity").innerHTML = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="units sold per hour">${ticks}<path d="${area}" fill="#2f5bd322"/><path d="${line}" fill="none" stroke="#2f5bd3" stroke-width="2"/>${labels}</svg>`;
  }

  // what a person did about an alert, in a few words
  function handled(a) {
    const bits = [];
    if (a.outcome) bits.push(a.outcome.replace(/_/g, " "));
    if (a.snoozed_until && Date.parse(a.snoozed_until) > Date.now()) bits.push("snoozed to " + new Date(a.snoozed_until).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }));
    if (a.assignee) bits.push("→ " + a.assignee);
    if (a.acknowledged_at) bits.push("seen " + ago(a.acknowledged_at));
    return bits.length ? `<br><small class="empty" data-testid="alert-state">${esc(bits.join(" · "))}</small>` : "";
  }

  const buttons = (a) => `<td class="acts">
      <button type="button" data-act="acknowledge" data-id="${esc(a.alert_id)}" data-testid="act-acknowledge" title="seen: keep it in the list">seen</button>
      <button type="button" data-act="snooze" data-id="${esc(a.alert_id)}" data-testid="act-snooze" title="out of the list for a day, unless it gets worse">snooze 1 day</button>
      <button type="button" data-act="shelf_empty" data-id="${esc(a.alert_id)}" data-testid="act-empty" title="checked the shelf: empty (a count of 0)">shelf empty</button>
      <button type="button" data-act="stock_found" data-id="${esc(a.alert_id)}" data-testid="act-found" title="checked the shelf: counted some (a stock count)">found…</button>
      <button type="button" data-act="ordered" data-id="${esc(a.alert_id)}" data-testid="act-ordered" title="already ordered">ordered</button></td>`;

  async function alerts() {
    const d = await get("v1/alerts", { status: view, store_id: store, limit: 60 });
    if (view === "open") $("k-alerts").textContent = fmt(d.total ?? d.count, 0);
    if (!d.alerts.length) { $("alerts").innerHTML = `<tr><td colspan="9" class="empty">${view === "open" ? "nothing to do" : "nothing handled"}</td></tr>`; return; }
    $("alerts").innerHTML = d.alerts.map((a) => `<tr data-testid="alert-row" data-alert="${esc(a.alert_id)}">
      <td><span class="sev ${esc(a.severity)}">${esc(a.severity)}</span></td>
      <td>${esc(a.store_id)}</td>
      <td>${esc(a.product_name || a.sku)}<br><small class="empty">${esc(a.sku)}</small></td>
      <td>${esc(a.alert_type.replace(/_/g, " "))}</td>
      <td class="n">${fmt(a.on_hand, 3)}</td>
      <td class="n"><b>${num(a.suggested_order_qty) ? fmt(a.suggested_order_qty, 3) : "–"}</b></td>
      <td>${esc(a.message)}${handled(a)}</td>
      <td>${esc(ago(a.opened_at))}</td>${buttons(a)}</tr>`).join("");
  }

  // POST an action; the write token is asked for once when the server wants one. One
  // idempotency key per click: a request sent again is the same action, never a second count.
  async function act(id, body) {
    const key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
    const send = () => {
      const headers = { "content-type": "application/json", accept: "application/json", "idempotency-key": key };
      const w = sessionStorage.getItem(WKEY) || token;
      if (w) headers.authorization = "Bearer " + w;
      return fetch(new URL(`v1/alerts/${encodeURIComponent(id)}/actions`, location.href), { method: "POST", headers, body: JSON.stringify(body), credentials: "omit" });
    };
    let r = await send();
    if (r.status === 401 || r.status === 403) {
      const w = window.prompt("A write token (serve.write_token) is needed to act on alerts:");
      if (!w) return;
      sessionStorage.setItem(WKEY, w.trim());
      r = await send();
    }
    const answer = await r.json().catch(() => ({}));
    $("live").textContent = r.ok ? `alert ${id}: ${body.action}${body.outcome ? " · " + body.outcome.replace(/_/g, " ") : ""} kept` : `alert ${id}: ${answer.message || r.status}`;
    refresh();
  }

  $("alerts").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-act]");
    if (!b) return;
    const id = b.dataset.id, what = b.dataset.act;
    if (what === "acknowledge") act(id, { action: "acknowledge" });
    else if (what === "snooze") act(id, { action: "snooze", until: new Date(Date.now() + 86400000).toISOString() });
    else if (what === "shelf_empty" || what === "ordered") act(id, { action: "resolve", outcome: what });
    else if (what === "stock_found") {
      const n = window.prompt("How many are on the shelf and in the back room?");
      if (n == null || n.trim() === "") return;
      act(id, { action: "resolve", outcome: "stock_found", counted_quantity: n.trim() });
    }
  });

  $("alert-view").value = view;
  $("alert-view").addEventListener("change", (e) => {
    view = e.target.value;
    const u = new URL(location.href);
    if (view === "handled") u.searchParams.set("alerts", "handled"); else u.searchParams.delete("alerts");
    history.replaceState(null, "", u);
    refresh();
  });

  async function orders() {
    const d = await get("v1/orders", { store_id: store, limit: 300 });
    if (!d.orders.length) { $("orders").innerHTML = '<tr><td colspan="6" class="empty">nothing to order</td></tr>'; return; }
    let head = "";
    $("orders").innerHTML = d.orders.map((o) => {
      const h = o.store_id + "|" + (o.supplier_id || "") + "|" + o.order_date;
      const group = h === head ? "" : `<tr class="group" data-testid="order-group"><td colspan="6"><b>${esc(o.store_id)}</b> · ${esc(o.supplier_id || "no supplier in master data")} · order ${esc(o.order_date)} · delivery ${esc(new Date(o.expected_delivery).toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }))}</td></tr>`;
      head = h;
      return group + `<tr data-testid="order-row">
      <td>${esc(o.product_name || o.sku)}<br><small class="empty">${esc(o.sku)}</small></td>
      <td class="n"><b>${fmt(o.quantity, 3)}</b></td>
      <td class="n">${fmt(o.cases, 0)}</td>
      <td class="n">${fmt(o.on_hand, 3)}</td>
      <td class="n">${fmt(o.on_order, 3)}</td>
      <td><small>${esc(o.reason)}</small></td></tr>`;
    }).join("");
  }

  // the CSV through fetch, so that a read token goes in a header, never in a URL
  $("orders-csv").addEventListener("click", async () => {
    const u = new URL("v1/orders", location.href);
    u.searchParams.set("format", "csv");
    if (store) u.searchParams.set("store_id", store);
    const headers = token ? { authorization: "Bearer " + token } : {};
    const r = await fetch(u, { headers, credentials: "omit" });
    if (!r.ok) { $("live").textContent = "CSV download failed: " + r.status; return; }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await r.blob());
    a.download = "orders" + (store ? "-" + store : "") + ".csv";
    a.click();
    URL.revokeObjectURL(a.href);
  });

  async function pipeline() {
    const d = await get("v1/pipeline");
    const stages = d.stages || [];
    $("stages").innerHTML = stages.map((s) => {
      const cls = s.state === "running" ? "ok" : s.state === "retrying" ? "retry" : "off";
      const lag = s.lag_seconds == null ? "" : " · lag " + fmt(s.lag_seconds, 1) + " s";
      return `<span class="chip ${cls}" data-testid="stage-chip">${esc(s.stage)} ${esc(s.state)}${lag}</span>`;
    }).join("");
    const ingest = stages.find((s) => s.stage === "ingest");
    $("k-rate").textContent = ingest ? fmt(ingest.throughput, 0) : "–";
    $("pipeline").innerHTML = stages.map((s) => `<tr data-testid="stage-row">
      <td><b>${esc(s.stage)}</b></td><td>${esc(s.state)}</td>
      <td><code>${esc(typeof s.checkpoint === "string" ? s.checkpoint : JSON.stringify(s.checkpoint || ""))}</code></td>
      <td class="n">${s.lag_seconds == null ? "–" : fmt(s.lag_seconds, 1) + " s"}</td>
      <td class="n">${s.backlog == null ? "–" : fmt(s.backlog, 0)}</td>
      <td class="n">${fmt(s.throughput, 0)}</td>
      <td class="n">${fmt(s.records_total, 0)}</td>
      <td>${s.last_error ? `<span class="err">${esc(s.last_error)}</span> <small class="empty">${esc(ago(s.last_error_at))}</small>` : ""}</td></tr>`).join("");
    // lines gold could not take and set aside: counted, the newest shown with why
    const gold = d.gold || {};
    const dead = (gold.counts && gold.counts.dead_letters) || 0;
    $("dead").hidden = !dead;
    if (dead) {
      const newest = (gold.dead_letters || []).map((x) => `<li><code>${esc(x.event_id)}#${esc(x.line_no)}</code> ${esc(x.store_id)} · ${esc(x.sku)} · ${esc(x.event_type)} ${esc(x.quantity)}: <span class="err">${esc(x.error)}</span></li>`).join("");
      $("dead").innerHTML = `<b>${fmt(dead, 0)} dead letters</b> <small class="empty">lines gold could not take, set aside (GET /v1/dead-letters)</small><ul>${newest}</ul>`;
    }
  }

  async function refresh() {
    const parts = [stores, categories, velocity, alerts, orders, pipeline];
    const results = await Promise.allSettled(parts.map((f) => f()));
    const failed = results.filter((r) => r.status === "rejected");
    const denied = failed.find((r) => r.reason instanceof Unauthorized);
    if (denied) askForToken(denied.reason.message);
    $("live").textContent = failed.length ? "refresh failed: " + failed[0].reason.message : "live · " + new Date().toLocaleTimeString();
  }

  $("store").addEventListener("change", (e) => {
    store = e.target.value;
    const u = new URL(location.href);
    if (store) u.searchParams.set("store", store); else u.searchParams.delete("store");
    history.replaceState(null, "", u);
    refresh();
  });
  refresh();
  setInterval(refresh, 2000);
})();
