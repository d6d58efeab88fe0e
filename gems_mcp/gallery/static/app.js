// The MCP App (ui://gems/trajectory): talks JSON-RPC with the host over postMessage (SEP-1865).
// It reads the trajectory through the host (resources/read), so it works even where the host drops
// the tool result's image content, and polls while the trajectory is active to show new rounds.
"use strict";
(() => {
  const PROTOCOL_VERSION = "2026-01-26";
  const POLL_MS = 2000;
  const main = document.querySelector("main");
  const note = document.querySelector(".empty");
  const pending = new Map();
  const images = new Map(); // image id -> data: URL
  let nextId = 1;
  let current = null; // trajectory id shown
  let timer = null;
  let shown = ""; // updated_at of what is drawn

  const send = (message) => window.parent.postMessage({ jsonrpc: "2.0", ...message }, "*");
  function request(method, params) {
    const id = nextId++;
    send({ id, method, params });
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  }
  const notify = (method, params) => send({ method, params: params || {} });

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const msg = event.data;
    if (!msg || msg.jsonrpc !== "2.0") return;
    if (msg.id !== undefined && !msg.method) {
      const waiter = pending.get(msg.id);
      if (!waiter) return;
      pending.delete(msg.id);
      if (msg.error) waiter.reject(new Error(msg.error.message || "host error"));
      else waiter.resolve(msg.result);
      return;
    }
    if (msg.method === "ui/notifications/tool-result") showResult(msg.params || {});
    else if (msg.method === "ui/resource-teardown") { stop(); send({ id: msg.id, result: {} }); }
    else if (msg.id !== undefined) {
      const result = msg.method === "ping" ? { result: {} } : { error: { code: -32601, message: `${msg.method} is not handled` } };
      send({ id: msg.id, ...result });
    }
  });

  // The trajectory a generate/refine result is about: its resource link, else its first text line.
  function trajectoryId(result) {
    for (const block of result.content || []) {
      const match = block.type === "resource_link" && /^gems:\/\/trajectories\/([^/]+)$/.exec(block.uri || "");
      if (match) return match[1];
    }
    for (const block of result.content || []) {
      const match = block.type === "text" && /trajectory (t-[0-9a-f]+)/.exec(block.text || "");
      if (match) return match[1];
    }
    return null;
  }

  async function loadImage(img, imageId) {
    try {
      if (!images.has(imageId)) {
        const read = await request("resources/read", { uri: `gems://images/${imageId}` });
        const item = read.contents[0];
        images.set(imageId, `data:${item.mimeType || "image/png"};base64,${item.blob}`);
      }
      img.src = images.get(imageId);
    } catch (error) {
      img.alt = `${img.alt}: could not be read (${error.message})`;
    }
  }

  async function draw() {
    const read = await request("resources/read", { uri: `gems://trajectories/${current}` });
    const trajectory = JSON.parse(read.contents[0].text);
    if (String(trajectory.updated_at) !== shown) {
      shown = String(trajectory.updated_at);
      main.replaceChildren(GEMS.renderTrajectory({ trajectory, answer: trajectory.answer }, loadImage));
      requestAnimationFrame(() => notify("ui/notifications/size-changed",
        { height: document.documentElement.scrollHeight }));
    }
    return trajectory.status === "active";
  }

  function stop() { if (timer) clearTimeout(timer); timer = null; }

  async function follow() {
    let again = false;
    try {
      again = await draw();
    } catch (error) {
      note.hidden = false;
      note.textContent = `Could not read the trajectory through the host: ${error.message}`;
    }
    if (again) timer = setTimeout(follow, POLL_MS);
  }

  function showResult(result) {
    const id = trajectoryId(result);
    if (!id) {
      note.hidden = false;
      note.textContent = (result.content || []).filter((b) => b.type === "text").map((b) => b.text).join("\n")
        || "This result names no trajectory.";
      return;
    }
    note.hidden = true;
    stop();
    if (id !== current) { current = id; shown = ""; }
    follow();
  }

  request("ui/initialize", {
    protocolVersion: PROTOCOL_VERSION,
    appInfo: { name: "gems-trajectory", version: "1" },
    appCapabilities: {},
  }).then(() => notify("ui/notifications/initialized"), (error) => {
    note.hidden = false;
    note.textContent = `The host did not start this view: ${error.message}`;
  });
})();
