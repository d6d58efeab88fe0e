// The gallery page: polls the server for trajectories and redraws only the ones that changed.
"use strict";
(() => {
  const BASE = location.pathname.replace(/\/+$/, "");
  const QUERY = location.search; // carries whatever the page was opened with (e.g. an access token)
  const POLL_MS = 1500;
  const main = document.querySelector("main");
  const status = document.querySelector("header.page .status");
  const cards = new Map(); // trajectory id -> {updated, node}
  let focused = false;

  const loadImage = (img, imageId) => { img.src = `${BASE}/images/${encodeURIComponent(imageId)}.png${QUERY}`; };

  async function getJSON(path) {
    const response = await fetch(`${BASE}/api/${path}${QUERY}`, { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return response.json();
  }

  async function refresh() {
    const list = await getJSON("trajectories");
    const wanted = new Set(list.map((s) => s.id));
    for (const [id, card] of cards) if (!wanted.has(id)) { card.node.remove(); cards.delete(id); }
    let previous = null;
    for (const summary of list) {
      let card = cards.get(summary.id);
      if (!card || card.updated !== summary.updated_at) {
        const detail = await getJSON(`trajectories/${encodeURIComponent(summary.id)}`);
        const node = GEMS.renderTrajectory(detail, loadImage);
        if (card) card.node.replaceWith(node);
        card = { updated: summary.updated_at, node };
        cards.set(summary.id, card);
      }
      // newest first: each card goes right after the previous one
      const place = previous ? previous.nextSibling : main.firstChild;
      if (card.node !== place) main.insertBefore(card.node, place);
      previous = card.node;
    }
    document.querySelector(".empty").hidden = list.length > 0;
    if (!focused && location.hash.length > 1) {
      const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
      if (target) { target.classList.add("focus"); target.scrollIntoView(); focused = true; }
    }
  }

  async function poll() {
    try {
      await refresh();
      status.textContent = `${cards.size} trajectories · updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      status.textContent = `cannot reach the server (${error.message}); retrying`;
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
