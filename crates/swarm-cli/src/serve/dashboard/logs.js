// A task's log, streamed as it is written (Server-Sent Events from the offset this page has);
// a reconnect goes on from there. When the log reached its head+tail cap, the page says so.

const KEEP = 1 << 20; // characters of log kept on the page
const log = { task: null, attempt: null, offset: 0, source: null, ended: false, retry: null, text: "" };

function closeLog() {
  if (log.source) log.source.close();
  clearTimeout(log.retry);
  Object.assign(log, { task: null, attempt: null, offset: 0, source: null, ended: false, retry: null, text: "" });
  $("log-cap").hidden = true;
}

function openLog(t) {
  const last = (t.attempts || []).filter((a) => a.kind !== "resolver").at(-1);
  const attempt = last ? last.n : 0;
  if (log.task === t.id && log.attempt === attempt) return; // already shown, or streaming
  closeLog();
  Object.assign(log, { task: t.id, attempt });
  $("log-title").textContent = attempt ? `Log — attempt ${attempt}` : "Log";
  $("log").textContent = attempt ? "(no output yet)" : "(not started)";
  $("log-state").textContent = "";
  if (attempt) connectLog();
}

function connectLog() {
  const url = `${runPath()}/tasks/${encodeURIComponent(log.task)}/log?attempt=${log.attempt}&offset=${log.offset}`;
  const source = new EventSource(url);
  const mine = () => log.source === source;
  log.source = source;
  $("log-state").textContent = "live";
  source.addEventListener("chunk", (e) => {
    if (!mine()) return;
    const c = JSON.parse(e.data);
    if (c.offset !== log.offset) return; // a piece this page has already
    log.offset = c.next;
    log.text = (log.text + c.text).slice(-KEEP);
    const pre = $("log"), atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = log.text;
    pre.dataset.bytes = String(log.offset);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  });
  source.addEventListener("capped", (e) => {
    if (!mine()) return;
    $("log-cap").textContent = JSON.parse(e.data).message;
    $("log-cap").hidden = false;
  });
  source.addEventListener("end", () => {
    if (!mine()) return;
    source.close();
    log.ended = true;
    $("log-state").textContent = `attempt ${log.attempt} ended`;
    if (!log.text) $("log").textContent = "(no output)";
  });
  // The browser would reconnect from the first byte: this page goes on from its offset instead.
  source.onerror = () => {
    if (!mine() || log.ended) return;
    source.close();
    $("log-state").textContent = "reconnecting…";
    log.retry = setTimeout(() => { if (mine()) connectLog(); }, 1000);
  };
}
