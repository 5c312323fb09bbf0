// The watch page: an instructor's read-only, live view of a learner's
// terminal over /ws/watch. Nothing typed here is sent; the server would drop
// it anyway.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";

const CLOSE_TRY_AGAIN = 1013; // fell behind the output: reconnect to catch up

const page = document.getElementById("watch");
if (page) watch(page.dataset.learner, Number(page.dataset.tab));

function watch(learner, tab) {
  const host = document.getElementById("terminals");
  const panel = document.getElementById("term-status");
  const message = document.getElementById("status-message");
  const term = new Terminal({
    disableStdin: true,
    cursorBlink: false,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    scrollback: 5000,
    theme: { background: "#11151c" },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  const el = document.createElement("div");
  el.className = "terminal-host";
  host.appendChild(el);
  term.open(el);
  const safeFit = () => { try { fit.fit(); } catch { /* not visible yet */ } };
  new ResizeObserver(safeFit).observe(host);
  safeFit();

  let retries = 0;
  function show(text) {
    message.textContent = text;
    panel.hidden = false;
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/watch?learner=${encodeURIComponent(learner)}&tab=${tab}`);
    ws.binaryType = "arraybuffer";
    let ended = false;
    // The server replays the whole scrollback first: start from a clean screen.
    ws.onopen = () => term.reset();
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") {
        term.write(new Uint8Array(ev.data));
        return;
      }
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "exit") {
        ended = true;
        term.write(`\r\n\x1b[2m[the learner's shell exited with code ${msg.code}]\x1b[0m\r\n`);
        return;
      }
      if (msg.type !== "status") return;
      if (msg.state === "ready") {
        retries = 0;
        panel.hidden = true;
      } else {
        show(msg.message || "Waiting for the learner's terminal…");
      }
    };
    ws.onclose = (ev) => {
      if (ended) {
        show("The learner's shell ended; waiting for a new one.");
        retries = 0;
      } else if (ev.code === CLOSE_TRY_AGAIN) {
        retries = 0;
      } else {
        show("Connection lost; reconnecting…");
      }
      setTimeout(connect, Math.min(10000, 500 * 2 ** retries++));
    };
  }
  connect();
}
