// The desk page: one account's blotter, fills, positions and risk, live from its WebSocket stream (docs/desk.md).
// Everything comes from the REST API with the key typed in (kept for this tab only, in sessionStorage); the stream
// opens with a one-time ticket and resumes after the last frame it saw when it reconnects. Text from the server is
// put in the page as text, never as markup.
"use strict";

const state = {
  key: sessionStorage.getItem("oms.key") || "",
  account: null,
  socket: null,
  seq: 0,
  streamId: null,
  orders: new Map(), // order_id -> its table row
  fills: new Set(), // exec ids shown
  refresh: null,
  generation: 0, // bumped when the account changes: late answers of the previous one are dropped
};

const $ = (selector) => document.querySelector(selector);

function say(text, bad = true) {
  const message = $("#message");
  message.textContent = text;
  message.style.color = bad ? "" : "var(--ok)";
}

async function api(method, path, body) {
  const headers = { "X-API-Key": state.key };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await answer.text();
  const data = text ? JSON.parse(text) : null;
  if (!answer.ok) {
    const error = new Error(data && data.code ? `${data.code}: ${data.message}` : `HTTP ${answer.status}`);
    error.code = data && data.code;
    throw error;
  }
  return data;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function fillList(dl, pairs) {
  dl.replaceChildren();
  for (const [name, value, className] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value === null || value === undefined ? "n/a" : String(value);
    if (className) dd.className = className;
    dl.append(dt, dd);
  }
}

// -- orders and fills --

function showOrder(order, fresh) {
  let row = state.orders.get(order.order_id);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.orderId = order.order_id;
    state.orders.set(order.order_id, row);
    $("#orders tbody").prepend(row);
  }
  row.dataset.clientOrderId = order.client_order_id;
  row.dataset.status = order.status;
  row.replaceChildren(
    cell(order.order_id, "num"), cell(order.client_order_id), cell(order.symbol), cell(order.side),
    cell(order.ord_type), cell(order.qty, "num"), cell(order.price, "num"), cell(order.status, `s-${order.status}`),
    cell(order.cum_qty, "num"), cell(order.leaves_qty, "num"), cell(order.avg_px, "num"), cell(order.session),
    cell((order.updated_at || "").replace("T", " ").slice(0, 23)),
  );
  if (fresh) {
    row.classList.remove("fresh");
    void row.offsetWidth; // restart the highlight
    row.classList.add("fresh");
  }
}

function showFill(fill) {
  if (state.fills.has(fill.exec_id)) return;
  state.fills.add(fill.exec_id);
  const row = document.createElement("tr");
  row.dataset.execId = fill.exec_id;
  const when = new Date(Number(BigInt(fill.ts_ns) / 1000000n)).toISOString().replace("T", " ").slice(0, 23);
  row.append(
    cell(fill.exec_id, "num"), cell(fill.order_id, "num"), cell(fill.client_order_id), cell(fill.symbol),
    cell(fill.side), cell(fill.qty, "num"), cell(fill.price, "num"), cell(fill.venue), cell(when),
  );
  $("#fills tbody").prepend(row);
}

async function loadOrders(generation) {
  $("#orders tbody").replaceChildren();
  state.orders.clear();
  try {
    const orders = await api("GET", `/v1/orders?account=${encodeURIComponent(state.account)}&status=all&limit=500`);
    if (generation !== state.generation) return;
    for (const order of orders.reverse()) showOrder(order, false); // oldest first: the newest ends on top
  } catch (error) {
    if (error.code === "forbidden") return placeholder("#orders", "this key may not read orders");
    throw error;
  }
}

async function loadFills(generation) {
  $("#fills tbody").replaceChildren();
  state.fills.clear();
  try {
    const fills = await api("GET", `/v1/accounts/${encodeURIComponent(state.account)}/executions?limit=500`);
    if (generation !== state.generation) return;
    for (const fill of fills) showFill(fill);
  } catch (error) {
    if (error.code === "forbidden") return placeholder("#fills", "this key may not read executions");
    throw error;
  }
}

function placeholder(table, text) {
  const row = document.createElement("tr");
  const td = cell(text);
  td.colSpan = 13;
  row.append(td);
  $(`${table} tbody`).replaceChildren(row);
}

// -- positions and risk --

async function loadAccount() {
  const account = encodeURIComponent(state.account);
  const [summary, risk] = await Promise.allSettled([
    api("GET", `/v1/accounts/${account}/positions`), api("GET", `/v1/accounts/${account}/risk`),
  ]);
  if (summary.status === "fulfilled") {
    const s = summary.value;
    fillList($("#summary"), [["Cash", s.cash], ["Equity", s.equity], ["Realized P&L", s.realized_pnl],
      ["Unrealized P&L", s.unrealized_pnl], ["Exposure", s.exposure]]);
    const body = $("#positions tbody");
    body.replaceChildren();
    for (const p of s.positions) {
      const row = document.createElement("tr");
      row.dataset.symbol = p.symbol;
      row.append(cell(p.symbol), cell(p.qty, "num"), cell(p.cost, "num"), cell(p.realized_pnl, "num"),
        cell(p.market_value, "num"), cell(p.unrealized_pnl, "num"));
      body.append(row);
    }
  } else {
    fillList($("#summary"), [["Positions", summary.reason.message]]);
  }
  if (risk.status === "fulfilled") {
    const r = risk.value;
    const l = r.limits;
    fillList($("#risk"), [
      ["Trading state", r.trading_state, r.trading_state === "active" ? "" : "alert"],
      ["Kill switch", r.kill_switch ? "ON" : "off", r.kill_switch ? "alert" : ""],
      ["Working orders", r.working_orders], ["Buying power", r.buying_power], ["Drawdown level", r.drawdown_level],
      ["Max order notional", l.max_order_notional], ["Credit limit", l.credit_limit],
      ["Max gross / net", `${l.max_gross_notional} / ${l.max_net_notional}`], ["Max open orders", l.max_open_orders],
    ]);
    $("#risk").dataset.tradingState = r.trading_state;
    $("#risk").dataset.killSwitch = String(r.kill_switch);
  } else {
    fillList($("#risk"), [["Risk", risk.reason.message]]);
  }
}

function refreshSoon() {
  clearTimeout(state.refresh);
  state.refresh = setTimeout(() => loadAccount().catch((error) => say(error.message)), 300);
}

// -- the stream --

function setLink(up) {
  const link = $("#link");
  link.textContent = up ? `live · seq ${state.seq}` : "offline";
  link.className = `badge ${up ? "on" : "off"}`;
}

async function openStream(generation, resume) {
  let ticket;
  try {
    ticket = (await api("POST", "/v1/stream-tickets")).ticket;
  } catch (error) {
    setLink(false);
    return void setTimeout(() => generation === state.generation && openStream(generation, resume), 2000);
  }
  if (generation !== state.generation) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let url = `${scheme}//${location.host}/v1/accounts/${encodeURIComponent(state.account)}/stream?ticket=${ticket}`;
  if (resume && state.streamId) url += `&since_seq=${state.seq}&stream_id=${state.streamId}`;
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onmessage = (message) => {
    if (generation !== state.generation) return;
    const frame = JSON.parse(message.data);
    if (frame.code) {  // refused (this key may not read the account's orders): no reconnecting
      state.socket = null;
      return say(`stream: ${frame.code}: ${frame.message}`);
    }
    if (frame.type === "subscribed") {
      const gap = resume && !frame.resumed;
      state.streamId = frame.stream_id;
      state.seq = frame.seq;
      setLink(true);
      if (gap) Promise.all([loadOrders(generation), loadFills(generation)]).catch((error) => say(error.message));
      return;
    }
    state.seq = frame.seq;
    setLink(true);
    onFrame(frame, generation);
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    setLink(false);
    setTimeout(() => generation === state.generation && openStream(generation, true), 1000);
  };
}

function onFrame(frame, generation) {
  if (frame.type === "order_filled") {
    showFill({ exec_id: frame.exec_id, order_id: frame.order_id, client_order_id: frame.client_order_id,
      symbol: frame.symbol, side: frame.side, qty: frame.last_qty, price: frame.last_px, venue: frame.venue || "",
      ts_ns: frame.ts_ns });
  }
  if (frame.order_id && (frame.type.startsWith("order_") || frame.type === "cancel_rejected")) {
    // the order as it stands now, from the API: the frame has only what changed
    api("GET", `/v1/orders/${frame.order_id}`)
      .then((order) => generation === state.generation && showOrder(order, true))
      .catch((error) => say(error.message));
  }
  refreshSoon();
}

// -- actions --

async function act(action) {
  const account = encodeURIComponent(state.account);
  try {
    if (action === "kill-on" || action === "kill-off") {
      const out = await api("POST", `/v1/accounts/${account}/kill-switch`, { on: action === "kill-on" });
      say(`kill switch ${out.on ? "on" : "off"}: ${out.canceled.length} order(s) canceled`, false);
    } else {
      const out = await api("POST", `/v1/accounts/${account}/trading-state`, { state: action });
      say(`${out.account} is ${out.state}`, false);
    }
  } catch (error) {
    say(error.message);
  }
  refreshSoon();
}

// -- start --

async function choose(account) {
  state.generation += 1;
  const generation = state.generation;
  state.account = account;
  state.seq = 0;
  state.streamId = null;
  if (state.socket) {
    const old = state.socket;
    state.socket = null;
    old.close();
  }
  say("");
  try {
    await Promise.all([loadOrders(generation), loadFills(generation), loadAccount()]);
  } catch (error) {
    say(error.message);
  }
  openStream(generation, false);
}

async function connect(event) {
  if (event) event.preventDefault();
  state.key = $("#key").value || state.key;
  if (!state.key) return;
  try {
    const { accounts } = await api("GET", "/v1/accounts");
    sessionStorage.setItem("oms.key", state.key);
    const select = $("#account");
    const options = accounts.map((a) => Object.assign(document.createElement("option"), { value: a, textContent: a }));
    select.replaceChildren(...options);
    select.disabled = accounts.length === 0;
    const wanted = new URLSearchParams(location.search).get("account");
    if (accounts.length) await choose(accounts.includes(wanted) ? wanted : accounts[0]);
    else say("this key sees no account");
  } catch (error) {
    say(error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", connect);
  $("#account").addEventListener("change", (event) => choose(event.target.value));
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  setInterval(() => state.account && loadAccount().catch((error) => say(error.message)), 5000);
  if (state.key) connect();
});
