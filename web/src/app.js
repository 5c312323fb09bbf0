// The lesson page: terminal tabs (xterm.js over /ws/terminal), Run buttons
// that type a block into the active tab, Check and hint buttons that call the
// JSON API, and a draggable split between instructions and terminal.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { WebLinksAddon } from "@xterm/addon-web-links";

// Close codes the server uses beyond the standard ones.
const CLOSE_TAKEN_OVER = 4001; // another socket took this tab over
const CLOSE_TRY_AGAIN = 1013; // the socket fell behind; reconnect

const page = document.getElementById("lesson");

if (page) {
  const track = page.dataset.track;
  const slug = page.dataset.slug;
  const api = `/api/lessons/${encodeURIComponent(track)}/${encodeURIComponent(slug)}`;
  const lifetime = lifetimeBanner();
  const terminals = createTerminals(track, slug, lifetime);
  wireRunButtons(terminals);
  wireChecks(api);
  wireHints(api);
  wireGutter();
  wireDrill(`/api/drills/${encodeURIComponent(track)}/${encodeURIComponent(slug)}`);
}

// ---- terminal tabs ----------------------------------------------------------

function createTerminals(track, slug, lifetime) {
  const host = document.getElementById("terminals");
  if (!host) return null;
  const tabsBar = document.getElementById("tabs");
  const addTab = document.getElementById("add-tab");
  const status = statusPanel();
  const tabs = [];
  let active = null;

  function open(n) {
    const el = document.createElement("div");
    el.className = "terminal-host";
    host.appendChild(el);
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "tab");
    button.textContent = `Terminal ${n + 1}`;
    button.addEventListener("click", () => select(tab));
    tabsBar.insertBefore(button, addTab);

    const term = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      scrollback: 5000,
      theme: { background: "#11151c" },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.loadAddon(new WebLinksAddon());
    term.open(el);
    const tab = { n, el, button, term, fit, ws: null, exited: false, retries: 0 };
    tabs.push(tab);

    term.onData((data) => send(tab, new TextEncoder().encode(data)));
    term.onResize(({ cols, rows }) => control(tab, { type: "resize", cols, rows }));
    connect(tab);
    select(tab);
    return tab;
  }

  function connect(tab) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}/ws/terminal?tab=${tab.n}&lesson=${encodeURIComponent(track + "/" + slug)}`;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    tab.ws = ws;
    tab.exited = false;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      tab.retries = 0;
      safeFit(tab);
      control(tab, { type: "resize", cols: tab.term.cols, rows: tab.term.rows });
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") {
        tab.term.write(new Uint8Array(ev.data));
        return;
      }
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "status") onStatus(tab, msg);
      if (msg.type === "exit") {
        tab.exited = true;
        tab.term.write(`\r\n\x1b[2m[the shell exited with code ${msg.code}; press Enter for a new one]\x1b[0m\r\n`);
      }
    };
    ws.onclose = (ev) => {
      if (tab.ws !== ws) return;
      tab.ws = null;
      if (tab.exited || tab.failed) return;
      if (ev.code === CLOSE_TAKEN_OVER) {
        // The same tab was opened in another window; do not fight over it.
        if (tab === active) {
          status.error("This terminal is open in another window.", () => {
            status.show("Reconnecting…", -1);
            connect(tab);
          });
        }
        return;
      }
      if (!opened && lifetime) {
        // Refused before the upgrade (429: the server is full, or too many
        // sandboxes were started for this learner): say why, and retry when
        // the server says to.
        lifetime.refusal().then((refused) => {
          if (!refused) return retryLater(ev.code);
          tab.failed = true;
          const wait = Math.max(1, refused.retry_after_seconds);
          if (tab === active) status.error(refused.error, () => { tab.failed = false; connect(tab); });
          setTimeout(() => { if (tab.failed) { tab.failed = false; connect(tab); } }, wait * 1000);
        });
        return;
      }
      retryLater(ev.code);
    };
    function retryLater(code) {
      if (code === CLOSE_TRY_AGAIN) tab.retries = 0; // fell behind: catch up from scrollback at once
      // The server keeps the shell for a while: reconnect and get the scrollback back.
      const delay = Math.min(10000, 500 * 2 ** tab.retries++);
      if (tab === active) status.show(`Connection lost; reconnecting in ${Math.round(delay / 1000)} s…`, -1);
      setTimeout(() => connect(tab), delay);
    }
  }

  function onStatus(tab, msg) {
    if (tab !== active) return;
    switch (msg.state) {
      case "ready":
      case "reconnected":
        tab.failed = false;
        status.hide();
        if (lifetime) lifetime.refresh();
        tab.term.focus();
        break;
      case "error":
        tab.failed = true;
        status.error(msg.message || "Your sandbox could not be started.", () => {
          tab.failed = false;
          status.show("Trying again…", 0);
          connect(tab);
        });
        break;
      default:
        status.show(msg.message || "Starting your sandbox…", msg.percent);
    }
  }

  function send(tab, bytes) {
    if (tab.exited) {
      // Any key after an exit starts a fresh shell in the same sandbox.
      tab.term.reset();
      connect(tab);
      return;
    }
    if (tab.ws && tab.ws.readyState === WebSocket.OPEN) tab.ws.send(bytes);
  }

  function control(tab, msg) {
    if (tab.ws && tab.ws.readyState === WebSocket.OPEN) tab.ws.send(JSON.stringify(msg));
  }

  function select(tab) {
    active = tab;
    for (const t of tabs) {
      t.el.hidden = t !== tab;
      t.button.setAttribute("aria-selected", String(t === tab));
    }
    safeFit(tab);
    tab.term.focus();
  }

  function safeFit(tab) {
    try { tab.fit.fit(); } catch { /* not visible yet */ }
  }

  addTab.addEventListener("click", () => open(tabs.length));
  new ResizeObserver(() => active && safeFit(active)).observe(host);
  open(0);

  return {
    // type sends text to the active tab as if typed.
    type(text) {
      if (!active) return;
      send(active, new TextEncoder().encode(text));
      active.term.focus();
    },
  };
}

function statusPanel() {
  const box = document.getElementById("term-status");
  const msg = document.getElementById("status-message");
  const bar = document.getElementById("status-bar");
  const retry = document.getElementById("status-retry");
  const progress = box.querySelector(".progress");
  let onRetry = null;
  retry.addEventListener("click", () => onRetry && onRetry());
  return {
    show(text, percent) {
      box.hidden = false;
      box.classList.remove("error");
      retry.hidden = true;
      msg.textContent = text;
      progress.hidden = percent < 0;
      if (percent >= 0) {
        bar.style.width = `${percent}%`;
        progress.setAttribute("aria-valuenow", String(percent));
      }
    },
    error(text, retryFn) {
      box.hidden = false;
      box.classList.add("error");
      msg.textContent = text;
      progress.hidden = true;
      onRetry = retryFn;
      retry.hidden = false;
    },
    hide() { box.hidden = true; },
  };
}

// ---- sandbox lifetime -----------------------------------------------------------

// lifetimeBanner warns before the learner's sandbox ends (GET /api/sandbox
// says when) and offers to extend it (POST /api/sandbox/extend).
function lifetimeBanner() {
  const box = document.getElementById("lifetime");
  if (!box) return null;
  const text = document.getElementById("lifetime-message");
  const extend = document.getElementById("lifetime-extend");
  let state = null; // the last answer's sandbox
  let fetchedAt = 0;
  let timer = null;

  function minutes(s) {
    return s < 90 ? `${Math.max(0, Math.round(s))} s` : `${Math.round(s / 60)} min`;
  }

  function render() {
    if (!state) { box.hidden = true; return; }
    const left = state.seconds_left - (Date.now() - fetchedAt) / 1000;
    if (left > state.warn_seconds) { box.hidden = true; return; }
    box.hidden = false;
    if (left <= 0) {
      text.textContent = "Your sandbox has ended. Reload the page for a new one: the steps you passed are replayed in it.";
      extend.hidden = true;
      return;
    }
    const at = new Date(state.expires_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (state.extensions_left > 0) {
      text.textContent = `Your sandbox ends in ${minutes(left)} (at ${at}).`;
      extend.textContent = `Extend by ${minutes(state.extend_seconds)}`;
      extend.hidden = false;
    } else {
      text.textContent = `Your sandbox ends in ${minutes(left)} (at ${at}) and cannot be extended again.`;
      extend.hidden = true;
    }
  }

  function set(sandbox) {
    state = sandbox;
    fetchedAt = Date.now();
    render();
  }

  async function fetchState() {
    const res = await fetch("/api/sandbox", { credentials: "same-origin" });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    return res.json();
  }

  async function refresh() {
    try { set((await fetchState()).sandbox); } catch { /* keep the last state */ }
  }

  extend.addEventListener("click", async () => {
    extend.disabled = true;
    try {
      set((await postJSON("/api/sandbox/extend", {})).sandbox);
    } catch (err) {
      text.textContent = `Could not extend: ${err.message}`;
    } finally {
      extend.disabled = false;
    }
  });

  // Ask the server now and then (an instructor may reset the sandbox);
  // count down in between.
  timer = setInterval(() => {
    if (Date.now() - fetchedAt > 60000) refresh(); else render();
  }, 5000);

  return {
    refresh,
    // refusal is why the server refuses to make a sandbox now, or null.
    async refusal() {
      try { return (await fetchState()).refused || null; } catch { return null; }
    },
    stop() { clearInterval(timer); },
  };
}

// ---- run buttons --------------------------------------------------------------

function wireRunButtons(terminals) {
  for (const button of document.querySelectorAll("button.run")) {
    if (!terminals) { button.hidden = true; continue; }
    button.addEventListener("click", () => {
      const code = button.closest(".runnable").querySelector("code");
      let text = code.textContent;
      if (!text.endsWith("\n")) text += "\n";
      terminals.type(text);
    });
  }
}

// ---- checks and hints ---------------------------------------------------------

// The server refuses a POST without this page's CSRF token (from the
// layout's meta tag) in the X-CSRF-Token header.
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function postJSON(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function wireChecks(api) {
  for (const button of document.querySelectorAll("button.check")) {
    button.addEventListener("click", async () => {
      const section = button.closest(".step");
      const step = Number(button.dataset.step);
      const statusEl = section.querySelector(".check-status");
      const answers = {};
      for (const quiz of section.querySelectorAll(".quiz")) {
        answers[quiz.dataset.check] = [...quiz.querySelectorAll("input:checked")].map((i) => Number(i.value));
      }
      button.disabled = true;
      const wait = Number(button.dataset.wait || 0);
      statusEl.textContent = wait > 0
        ? `Checking… (waiting up to ${wait} s for your sandbox to settle)`
        : "Checking…";
      try {
        const res = await postJSON(`${api}/check`, { step, answers });
        showResults(section, res);
        statusEl.textContent = res.passed ? "Step passed." : "Not yet: see what is still missing below.";
        if (res.passed) markPassed(section);
      } catch (err) {
        statusEl.textContent = `Could not check: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }
}

function showResults(section, res) {
  for (const r of res.results) {
    const li = section.querySelector(`.result[data-check="${CSS.escape(r.id)}"]`);
    if (!li) continue;
    li.classList.remove("pending", "pass", "fail");
    li.classList.add(r.passed ? "pass" : "fail");
    li.querySelector(".mark").textContent = r.passed ? "✓" : "✗";
    li.querySelector(".message").textContent = r.message || "";
    let hint = li.querySelector(".check-hint");
    if (!r.passed && r.hint) {
      if (!hint) {
        hint = document.createElement("span");
        hint.className = "check-hint";
        li.appendChild(hint);
      }
      hint.textContent = `Hint: ${r.hint}`;
    } else if (hint) {
      hint.remove();
    }
  }
}

function markPassed(section) {
  if (section.classList.contains("passed")) return;
  section.classList.add("passed");
  const total = document.querySelectorAll(".step").length;
  const passed = document.querySelectorAll(".step.passed").length;
  document.getElementById("lesson-count").textContent = String(passed);
  document.getElementById("lesson-bar").style.width = `${Math.round((100 * passed) / total)}%`;
}

function wireHints(api) {
  for (const button of document.querySelectorAll("button.hint")) {
    const total = Number(button.dataset.total);
    const update = () => {
      const shown = Number(button.dataset.shown);
      button.hidden = shown >= total;
      button.textContent = shown === 0 ? "Show a hint" : `Another hint (${shown} of ${total} shown)`;
    };
    update();
    button.addEventListener("click", async () => {
      const section = button.closest(".step");
      const index = Number(button.dataset.shown);
      try {
        const res = await postJSON(`${api}/hint`, { step: Number(button.dataset.step), index });
        const div = document.createElement("div");
        div.className = "hint-text";
        div.textContent = res.hint;
        section.querySelector(".hints").appendChild(div);
        button.dataset.shown = String(index + 1);
        update();
      } catch (err) {
        section.querySelector(".check-status").textContent = `Could not load the hint: ${err.message}`;
      }
    });
  }
}

// ---- resizable split ----------------------------------------------------------

function wireGutter() {
  const gutter = document.getElementById("gutter");
  if (!gutter) return;
  const root = document.documentElement;
  const saved = localStorage.getItem("kubelab.split");
  if (saved) root.style.setProperty("--left", saved);
  const setLeft = (pct) => {
    const v = `${Math.min(80, Math.max(20, pct)).toFixed(1)}%`;
    root.style.setProperty("--left", v);
    localStorage.setItem("kubelab.split", v);
  };
  gutter.addEventListener("pointerdown", (ev) => {
    gutter.setPointerCapture(ev.pointerId);
    const move = (e) => setLeft((100 * e.clientX) / window.innerWidth);
    const up = () => {
      gutter.removeEventListener("pointermove", move);
      gutter.removeEventListener("pointerup", up);
    };
    gutter.addEventListener("pointermove", move);
    gutter.addEventListener("pointerup", up);
  });
  gutter.addEventListener("keydown", (ev) => {
    const current = parseFloat(getComputedStyle(root).getPropertyValue("--left")) || 45;
    if (ev.key === "ArrowLeft") setLeft(current - 2);
    if (ev.key === "ArrowRight") setLeft(current + 2);
  });
}

// ---- drills -------------------------------------------------------------------

// wireDrill drives the drill bar: Start (a fresh sandbox, so the page
// reloads), the time left counted down from the server's figure, the score
// polled from the server, Finish, and the review link once it is over.
function wireDrill(api) {
  const bar = document.getElementById("drill");
  if (!bar) return;
  const limit = Number(bar.dataset.timeLimit);
  const clock = document.getElementById("drill-clock");
  const timeBar = document.getElementById("drill-time-bar");
  const score = document.getElementById("drill-score");
  const start = document.getElementById("drill-start");
  const finish = document.getElementById("drill-finish");
  const review = document.getElementById("drill-review");
  const status = document.getElementById("drill-status");
  let deadline = 0; // local time the server's deadline falls at
  let ticker = 0;
  let poller = 0;

  const fmt = (ms) => {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")} left`;
  };
  const tick = () => {
    const left = Math.max(0, deadline - Date.now());
    clock.textContent = fmt(left);
    timeBar.style.width = `${(100 * left) / limit}%`;
    if (left === 0) refresh();
  };
  const show = (d) => {
    score.textContent = `score ${d.score} of ${d.max_score}`;
    start.textContent = d.running ? "Restart drill" : "Start drill";
    finish.hidden = !d.running;
    review.hidden = !d.review;
    if (d.review) review.href = d.review;
    clearInterval(ticker);
    clearInterval(poller);
    if (d.running) {
      deadline = Date.now() + d.time_left_ms;
      tick();
      ticker = setInterval(tick, 1000);
      poller = setInterval(refresh, 5000);
    } else {
      clock.textContent = d.timed_out ? "time is up" : "finished";
      timeBar.style.width = "0%";
    }
  };
  async function refresh() {
    const res = await fetch(api, { credentials: "same-origin" });
    if (res.ok) show(await res.json());
  }
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      await postJSON(`${api}/start`, {});
      location.reload(); // the terminal reconnects to the fresh sandbox
    } catch (err) {
      status.textContent = `Could not start: ${err.message}`;
      start.disabled = false;
    }
  });
  finish.addEventListener("click", async () => {
    try {
      show(await postJSON(`${api}/finish`, {}));
    } catch (err) {
      status.textContent = `Could not finish: ${err.message}`;
    }
  });
  // Checks and hints change the score: refresh once they have answered.
  document.addEventListener("click", (ev) => {
    if (ev.target.closest("button.check, button.hint")) setTimeout(refresh, 1500);
  });
  refresh();
}
