// Draws one trajectory (as gems://trajectories/{id} stores it) into DOM elements.
// Shared by the gallery page and the MCP App; `loadImage(img, imageId)` says how an image is fetched.
"use strict";
const GEMS = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const passed = (candidate) => (candidate.verdicts || []).filter((v) => v.passed).length;
  const judged = (round) => round.candidates.some((c) => c.verdicts !== null && c.verdicts !== undefined);
  const roundPassed = (round) => (judged(round) ? Math.max(...round.candidates.map(passed)) : 0);
  // The same rules as types.Round.best_candidate and types.Trajectory.best_round: first/earliest on ties.
  function bestCandidate(round) {
    let best = round.candidates[0];
    for (const c of round.candidates) if (passed(c) > passed(best)) best = c;
    return best;
  }
  function bestRound(trajectory) {
    let best = null;
    for (const r of trajectory.rounds) if (judged(r) && (best === null || roundPassed(r) > roundPassed(best))) best = r;
    return best ? best.index : null;
  }

  const box = (b) => `[${b.map((x) => Number(x).toFixed(2)).join(", ")}]`;

  function verdictList(trajectory, candidate) {
    const answers = new Map((candidate.verdicts || []).map((v) => [v.requirement_id, v]));
    // A judge that reports detections repeats them as every verdict's note: say them once instead.
    const found = candidate.detections;
    const items = trajectory.checklist.map((q) => {
      const v = answers.get(q.id);
      const [cls, mark] = v === undefined ? ["unknown", "?"] : v.passed ? ["pass", "✓"] : ["fail", "✗"];
      const note = v && v.note && !found ? el("span", { class: "note" }, ` (${v.note})`) : null;
      return el("li", { class: cls, "data-question": q.id }, `${mark} ${q.question}`, note);
    });
    if (found) {
      const names = found.map((d) => `${d.color ? d.color + " " : ""}${d.object} ${box(d.box)}`);
      items.push(el("li", { class: "note" }, `found: ${names.join("; ") || "nothing"}`));
    }
    return el("ul", { class: "verdicts" }, items);
  }

  function candidateFigure(trajectory, round, candidate, number, isBest, loadImage) {
    const total = trajectory.checklist.length;
    const img = el("img", { alt: `round ${round.index} image ${number} (seed ${candidate.seed})`,
                            "data-image-id": candidate.image_id, width: round.params.width, height: round.params.height });
    loadImage(img, candidate.image_id);
    const score = candidate.verdicts ? ` · ${passed(candidate)}/${total} pass` : " · not judged yet";
    return el("figure", { class: isBest ? "candidate best" : "candidate" }, img,
      el("figcaption", {}, `image ${number} · seed ${candidate.seed}${score}`), verdictList(trajectory, candidate));
  }

  function roundSection(trajectory, round, best, loadImage) {
    const isBest = round.index === best;
    const top = judged(round) ? bestCandidate(round) : null;
    const total = trajectory.checklist.length;
    const regions = [];
    if (round.layout && round.layout.length)
      regions.push("layout: " + round.layout.map((r) => `${r.prompt} ${box(r.box)}`).join("; "));
    if (round.edits && round.edits.length)
      regions.push("edits: " + round.edits.map((r) => `${r.prompt || "(erase)"} ${box(r.box)}`).join("; "));
    const head = el("h3", {}, `Round ${round.index} · ${round.mode}`,
      judged(round) ? ` · ${roundPassed(round)}/${total} pass` : " · not judged yet",
      isBest ? el("span", { class: "badge best" }, "best round") : null);
    return el("section", { class: isBest ? "round best" : "round", "data-round": round.index }, head,
      el("div", { class: "prompt" }, round.prompt),
      regions.map((line) => el("div", { class: "regions" }, line)),
      el("div", { class: "candidates" }, round.candidates.map((c, i) =>
        candidateFigure(trajectory, round, c, i + 1, top !== null && c === top && judged(round), loadImage))),
      round.experience ? el("p", { class: "experience" },
        el("span", { class: "source" }, `experience (${round.experience_source || "agent"}): `), round.experience) : null);
  }

  function lessonList(title, lessons) {
    if (!lessons || !lessons.length) return null;
    return [el("h3", {}, title), el("ul", { class: "lessons" }, lessons.map((l) => el("li", {}, l.text,
      el("div", { class: "why" }, `${l.kind} · from “${l.intent}” · ${l.question}` +
        (l.score !== undefined ? ` · score ${Number(l.score).toFixed(2)}` : "")))))];
  }

  // detail: {trajectory, best_round?, answer?, lessons_recalled?, lessons_kept?}
  function renderTrajectory(detail, loadImage) {
    const t = detail.trajectory;
    const best = detail.best_round !== undefined ? detail.best_round : bestRound(t);
    const total = t.checklist.length;
    // The server's own words for the image to show: "answer: image <id> (round 2, 6/6)".
    const bestLine = detail.answer ? detail.answer : best === null ? "no judged round yet"
      : `best round ${best} (${roundPassed(t.rounds[best - 1])}/${total})`;
    const status = t.status === "done" ? `done (${t.done_reason})` : "active";
    return el("article", { class: "traj", id: t.id, "data-updated": t.updated_at },
      el("h2", {}, t.intent, el("span", { class: `badge ${t.status}` }, status)),
      el("div", { class: "meta" },
        `${t.id} · ${t.model || "model"} · ${t.rounds.length}/${t.max_rounds} rounds · ${bestLine}` +
        (t.skill ? ` · skill ${t.skill}` : "") + ` · ${new Date(t.created_at * 1000).toLocaleString()}`),
      el("h3", {}, "Checklist"),
      el("ol", { class: "checklist" }, t.checklist.map((q) =>
        el("li", {}, q.question, el("span", { class: "kind" }, ` · ${q.id} · ${q.kind}`)))),
      lessonList("Lessons recalled from earlier tasks", detail.lessons_recalled),
      t.rounds.map((r) => roundSection(t, r, best, loadImage)),
      lessonList("Lessons this trajectory left", detail.lessons_kept));
  }

  return { el, renderTrajectory, bestRound };
})();
