// The instructor's dashboard: the grid is rendered by the server; this
// keeps it live from the classroom's event stream and wires the sandbox
// reset buttons. A "reload" event (events were lost) refetches the grid.

const page = document.getElementById("dashboard");
if (page) dashboard(page.dataset.classroom);

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function cellText(c) {
  if (!c.attempted) return "";
  return `${c.passed ? "✔" : "✘"} ${c.attempts}× · ${c.hints} hints · ${c.seconds}s`;
}

function paint(td, c) {
  td.textContent = cellText(c);
  td.classList.toggle("passed", !!c.passed);
  td.classList.toggle("attempted", !!c.attempted && !c.passed);
}

function dashboard(id) {
  const status = document.getElementById("dashboard-status");
  const row = (learner) => page.querySelector(`tr[data-learner="${CSS.escape(learner)}"]`);

  async function reload() {
    const res = await fetch(`/api/classrooms/${id}/grid`, { headers: { Accept: "application/json" } });
    if (!res.ok) return;
    const grid = await res.json();
    for (const l of grid.learners) {
      const tr = row(l.learner);
      if (!tr) {
        window.location.reload(); // a new learner joined: the server renders rows
        return;
      }
      tr.querySelector(".sandbox-state").textContent = l.sandbox;
      for (const td of tr.querySelectorAll("td[data-cell]")) {
        paint(td, l.cells[td.dataset.cell] || {});
      }
    }
  }

  const events = new EventSource(`/classrooms/${id}/events`);
  events.onopen = () => { status.textContent = "live"; };
  events.onerror = () => { status.textContent = "reconnecting…"; };
  events.addEventListener("reload", reload);
  events.addEventListener("check", (e) => {
    const ev = JSON.parse(e.data);
    const tr = row(ev.learner);
    if (!tr) { reload(); return; }
    const td = tr.querySelector(`td[data-cell="${CSS.escape(ev.lesson + "#" + ev.step)}"]`);
    if (td) paint(td, ev.cell);
    tr.querySelector(".sandbox-state").textContent = "running";
  });

  page.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-reset]");
    if (!button) return;
    if (!window.confirm("Delete this learner's sandbox? Their terminal will start a fresh one.")) return;
    button.disabled = true;
    try {
      const res = await fetch(button.dataset.reset, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: "{}",
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok) button.closest("tr").querySelector(".sandbox-state").textContent = "none";
      else window.alert(body.error || `Reset failed: ${res.status}`);
    } finally {
      button.disabled = false;
    }
  });
}
