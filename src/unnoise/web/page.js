// The explainer page: draws every figure from the bundle inlined in the page, on plain canvases.
// One classic script, no modules, no workers, no network (file:// safe). In live mode (unnoise serve)
// the live controls ask the server's /api/sample for new draws and redraw with the same functions.
"use strict";
const bundle = JSON.parse(document.getElementById("bundle").textContent);
const LIVE = bundle.live === true;
const $ = (id) => document.getElementById(id);
const COLORS = ["#d1495b", "#30638e", "#edae49", "#00798c", "#6a4c93", "#66a182"];
// every sentence the script writes: templates/words.json, inlined; {name} is filled from values
const WORDS = JSON.parse(document.getElementById("words").textContent);
function t(key, values) {
  if (!(key in WORDS)) throw new Error(`no words for ${key} in templates/words.json`);
  return WORDS[key].replace(/\{(\w+)\}/g, (m, name) => (values && name in values ? values[name] : m));
}

// ---- arrays: the encode.py format ------------------------------------------------------------------
function dec(item) {
  const raw = atob(item.b64), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const wide = item.bits !== 8, view = new DataView(bytes.buffer), count = wide ? bytes.length / 2 : bytes.length;
  const top = wide ? 65535 : 255, a = new Float32Array(count), span = item.hi - item.lo;
  for (let i = 0; i < count; i++) a[i] = item.lo + span * (wide ? view.getUint16(2 * i, true) : bytes[i]) / top;
  return {a: a, shape: item.shape};
}
const size = (shape, from) => shape.slice(from).reduce((p, v) => p * v, 1);

// ---- drawing --------------------------------------------------------------------------------------
function clear(cv) { const c = cv.getContext("2d"); c.clearRect(0, 0, cv.width, cv.height); return c; }

function bounds(a, pad) {   // [xmin, xmax, ymin, ymax] of interleaved (x, y) values
  let b = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < a.length; i += 2) {
    b = [Math.min(b[0], a[i]), Math.max(b[1], a[i]), Math.min(b[2], a[i + 1]), Math.max(b[3], a[i + 1])];
  }
  const px = (b[1] - b[0]) * (pad || 0.1), py = (b[3] - b[2]) * (pad || 0.1);
  return [b[0] - px, b[1] + px, b[2] - py, b[3] + py];
}
function mapper(cv, b) {
  return (x, y) => [(x - b[0]) / (b[1] - b[0]) * cv.width, cv.height - (y - b[2]) / (b[3] - b[2]) * cv.height];
}
function dots(c, a, off, n, at, color, r) {
  c.fillStyle = color;
  for (let i = 0; i < n; i++) { const p = at(a[off + 2 * i], a[off + 2 * i + 1]); c.fillRect(p[0] - r, p[1] - r, 2 * r, 2 * r); }
}
// one (C, H, W) image at a[off..] into the canvas at (x, y), `cell` screen pixels per image pixel: smoothed, but
// as blocks where the pixel grid is the point (inside an element of class "blocks": the debate, a latent's maps)
function image(c, a, off, C, H, W, x, y, cell, view) {
  const img = c.createImageData(W, H), s = view ? view.scale : 1, t = view ? view.shift : 0;
  for (let i = 0; i < H * W; i++) {
    for (let k = 0; k < 3; k++) {
      const v = a[off + (C === 3 ? k : 0) * H * W + i] * s + t;
      img.data[4 * i + k] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
    img.data[4 * i + 3] = 255;
  }
  const tmp = document.createElement("canvas");
  tmp.width = W; tmp.height = H; tmp.getContext("2d").putImageData(img, 0, 0);
  c.imageSmoothingEnabled = !c.canvas.closest(".blocks");
  c.imageSmoothingQuality = "high";
  c.drawImage(tmp, x, y, W * cell, H * cell);
}
// images a[base + k] for k < count, `cols` per row, into a canvas sized to fit
function images(cv, d, base, count, cols, cell, view) {
  const [C, H, W] = d.shape.slice(-3), per = C * H * W, rows = Math.ceil(count / cols);
  cv.width = cols * (W * cell + 2); cv.height = rows * (H * cell + 2);
  const c = clear(cv);
  for (let k = 0; k < count; k++) {
    image(c, d.a, (base + k) * per, C, H, W, (k % cols) * (W * cell + 2), Math.floor(k / cols) * (H * cell + 2), cell, view);
  }
}
// a line chart: series [{name, xs, ys, color}], options {xlog, ylog, xlabel, ylabel, marker: [x, y], mlabel, vline,
// hline, band}
function chart(cv, series, o) {
  const c = clear(cv), L = 58, R = 10, T = 10, Bm = 34, w = cv.width - L - R, h = cv.height - T - Bm;
  const fx = o.xlog ? Math.log10 : (v) => v, fy = o.ylog ? Math.log10 : (v) => v;
  let xs = [], ys = [];
  series.forEach((s) => { xs = xs.concat(s.xs); ys = ys.concat(s.ys); });
  if (o.hline !== undefined) ys.push(o.hline);
  if (o.band) ys = ys.concat(o.band.lo, o.band.hi);
  const x0 = Math.min(...xs.map(fx)), x1 = Math.max(...xs.map(fx));
  let y0 = Math.min(...ys.map(fy)), y1 = Math.max(...ys.map(fy));
  if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
  const X = (v) => L + (fx(v) - x0) / (x1 - x0 || 1) * w, Y = (v) => T + h - (fy(v) - y0) / (y1 - y0) * h;
  c.strokeStyle = "#999"; c.strokeRect(L, T, w, h);
  c.fillStyle = "#333"; c.font = "11px system-ui, sans-serif";
  c.fillText(o.xlabel || "", L + w / 2 - 30, cv.height - 4);
  c.save(); c.translate(10, T + h / 2 + 40); c.rotate(-Math.PI / 2); c.fillText(o.ylabel || "", 0, 0); c.restore();
  const ticks = (lo, hi, log) => {   // powers of ten on a log axis (the ends when fewer than two fit)
    if (!log) return [lo, (lo + hi) / 2, hi];
    const tens = [...Array(Math.max(0, Math.floor(hi) - Math.ceil(lo) + 1)).keys()].map((k) => Math.pow(10, Math.ceil(lo) + k));
    return tens.length > 1 ? tens : [Math.pow(10, lo), Math.pow(10, (lo + hi) / 2), Math.pow(10, hi)];
  };
  c.textAlign = "center";
  (o.xticks || ticks(x0, x1, o.xlog)).forEach((v) => c.fillText(fmt(v), X(v), T + h + 13));
  c.textAlign = "right";
  ticks(y0, y1, o.ylog).forEach((v) => c.fillText(fmt(v), L - 4, Y(v) + 4));
  c.textAlign = "left";
  if (o.band) {
    c.fillStyle = "rgba(48,99,142,0.15)"; c.beginPath();
    o.band.xs.forEach((x, i) => c.lineTo(X(x), Y(o.band.hi[i])));
    [...o.band.xs].reverse().forEach((x, i) => c.lineTo(X(x), Y(o.band.lo[o.band.xs.length - 1 - i])));
    c.fill();
  }
  if (o.hline !== undefined) {
    c.strokeStyle = "#777"; c.setLineDash([4, 3]); c.beginPath(); c.moveTo(L, Y(o.hline)); c.lineTo(L + w, Y(o.hline));
    c.stroke(); c.setLineDash([]); c.fillStyle = "#555"; c.fillText(o.hlabel || t("chart.floor"), L + 4, Y(o.hline) - 3);
  }
  series.forEach((s, k) => {
    c.strokeStyle = c.fillStyle = s.color || COLORS[k % COLORS.length]; c.lineWidth = 1.5; c.beginPath();
    s.xs.forEach((x, i) => (i ? c.lineTo(X(x), Y(s.ys[i])) : c.moveTo(X(x), Y(s.ys[i])))); c.stroke();
    s.xs.forEach((x, i) => c.fillRect(X(x) - 2, Y(s.ys[i]) - 2, 4, 4));
    (s.labels || []).forEach((t, i) => {
      const right = X(s.xs[i]) > L + w - 50;
      c.textAlign = right ? "right" : "left"; c.fillText(t, X(s.xs[i]) + (right ? -5 : 5), Y(s.ys[i]) + 12); c.textAlign = "left";
    });
    c.fillText(s.name, L + w - 150, T + 12 + 12 * k);
  });
  if (o.vline !== undefined) {
    c.strokeStyle = "#d1495b"; c.setLineDash([2, 3]); c.beginPath(); c.moveTo(X(o.vline), T); c.lineTo(X(o.vline), T + h);
    c.stroke(); c.setLineDash([]);
  }
  (o.ticks || []).forEach((v) => { c.strokeStyle = "#30638e"; c.beginPath(); c.moveTo(X(v), T + h); c.lineTo(X(v), T + h - 6); c.stroke(); });
  if (o.marker) {
    c.fillStyle = "#d1495b"; c.beginPath(); c.arc(X(o.marker[0]), Y(o.marker[1]), 5, 0, 2 * Math.PI); c.fill();
    const m = o.mlabel || t("chart.here");
    c.fillText(m, Math.min(X(o.marker[0]) + 7, L + w - 6 * m.length), Y(o.marker[1]) - 6);
  }
}
function fmt(v) {   // short numbers for ticks and labels: 0, 0.25, 12.3, 999, 1e-4
  const a = Math.abs(v);
  if (a < 1e-9) return "0";
  if (a >= 100) return Math.round(v).toLocaleString("en");
  return a < 0.01 ? v.toExponential(0) : +v.toFixed(2) + "";
}

// ---- controls ------------------------------------------------------------------------------------
function slider(id, max, value, draw) {
  const s = $(id); s.max = max; s.value = value;
  s.addEventListener("input", () => draw(+s.value));
  draw(+s.value);
  return s;
}
const players = [];
function player(s, fps) {   // play / pause a slider (its button: id + "-play"); pauses off-screen
  const button = $(s.id + "-play");
  let timer = null;
  const stop = () => { clearInterval(timer); timer = null; button.textContent = t("control.play"); };
  button.addEventListener("click", () => {
    if (timer) return stop();
    if (+s.value >= +s.max) { s.value = 0; }
    button.textContent = t("control.pause");
    timer = setInterval(() => { if (+s.value >= +s.max) return stop(); s.value = +s.value + 1; s.dispatchEvent(new Event("input")); }, 1000 / fps);
  });
  players.push({el: button.closest("section"), stop: stop});
}
function stepper(s) {   // its step buttons: id + "-prev", id + "-next"
  [[$(s.id + "-prev"), -1], [$(s.id + "-next"), 1]].forEach(([b, d]) => b.addEventListener("click", () => {
    s.value = Math.max(0, Math.min(+s.max, +s.value + d)); s.dispatchEvent(new Event("input"));
  }));
}
if ("IntersectionObserver" in window) {
  const seen = new IntersectionObserver((es) => es.forEach((e) => { if (!e.isIntersecting) players.filter((p) => p.el === e.target).forEach((p) => p.stop()); }));
  document.querySelectorAll("section").forEach((s) => seen.observe(s));
}
function say(id, text) { const el = $(id); if (el) el.textContent = text; }
function label(cv, text) { cv.setAttribute("aria-label", text); }

// ---- stamps: where each figure comes from ------------------------------------------------------------
function stamps() {
  document.querySelectorAll(".stamp").forEach((el) => {
    el.textContent = "";
    el.dataset.roles.split(" ").forEach((role) => {
      const s = bundle.runs[role];
      if (!s) return;
      const p = document.createElement("p");
      const seconds = s.train_seconds === null || s.train_seconds === undefined ? "?" : Math.round(s.train_seconds);
      p.textContent = t("stamp.run", {role: role, run: s.run, family: s.family, data: s.data, seed: s.seed,
                                      steps: s.steps, seconds: seconds, cpu: s.cpu}) +
        (s.metric ? t("stamp.metric", {metric: s.metric}) : "") + t("stamp.rebuild");
      const code = document.createElement("code"); code.textContent = s.command; p.appendChild(code);
      const copy = document.createElement("button"); copy.textContent = t("stamp.copy"); copy.className = "copy";
      copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(s.command));
      p.appendChild(copy); el.appendChild(p);
    });
  });
}
// what fills a section: the runs it needs (sections.missing), a claims folder to write, or (older pages) a sentence
function missing(id, m) {
  const el = $(id);
  if (!el || !m) return;
  let what = m;
  if (m.claims) what = t("missing.claims", {path: m.claims, folder: m.folder});
  else if (m.roles) what = t("missing.runs", {budget: m.budget, roles: m.roles.join(", ")}) + (m.need ? t(`missing.need_${m.need}`) : "");
  el.hidden = false; el.textContent = t("missing", {what: what});
}

// ---- the sections: one function each, called with its data from the bundle (sections.py: SECTIONS) ------------

// 1. noise: a slider over t mixes the clean data with one fixed noise draw
function drawNoise(data) {
  const pointsPart = data.points, imagePart = data.image;
  if (!pointsPart && !imagePart) return missing("noise-missing", t("missing.command"));
  const schedule = (pointsPart || imagePart).schedule, lim = [-3.5, 3.5, -3.5, 3.5];
  const pts = pointsPart && {x0: dec(pointsPart.x0).a, eps: dec(pointsPart.eps).a};
  const img = imagePart && {x0: dec(imagePart.x0), eps: dec(imagePart.eps).a};
  const curve = (name, s) => ({name: name + s.name, xs: s.t.map((t, i) => i / (s.t.length - 1)), ys: s.logsnr});
  slider("noise-t", schedule.t.length - 1, 0, (k) => {
    if (pointsPart) {
      const s = pointsPart.schedule, cv = $("noise-points"), c = clear(cv), at = mapper(cv, lim);
      const n = pts.x0.length / 2, xt = new Float32Array(2 * n);
      for (let i = 0; i < 2 * n; i++) xt[i] = s.alpha[k] * pts.x0[i] + s.sigma[k] * pts.eps[i];
      dots(c, xt, 0, n, at, "#30638e", 1.5);
      label(cv, t("noise.points", {n: n, t: fmt(s.t[k]), alpha: s.alpha[k].toFixed(2), sigma: s.sigma[k].toFixed(2)}));
    }
    if (imagePart) {
      const s = imagePart.schedule, d = img.x0, xt = new Float32Array(d.a.length);
      for (let i = 0; i < xt.length; i++) xt[i] = s.alpha[k] * d.a[i] + s.sigma[k] * img.eps[i];
      const [C, H, W] = d.shape.slice(-3), cv = $("noise-image");
      cv.width = cv.height = 160; image(clear(cv), xt, 0, C, H, W, 0, 0, 160 / W, imagePart.view);
      label(cv, t("noise.image", {t: fmt(s.t[k])}));
    }
    const series = [];
    if (pointsPart) series.push(curve(t("noise.curve_points"), pointsPart.schedule));
    if (imagePart) series.push(curve(t("noise.curve_images"), imagePart.schedule));
    const u = k / (schedule.t.length - 1), tmax = schedule.t[schedule.t.length - 1], tmin = schedule.t[0];
    chart($("noise-snr"), series, {xlabel: t("noise.x"), ylabel: t("noise.y"), marker: [u, series[0].ys[k]],
      ticks: schedule.steps.map((t) => (t - tmin) / (tmax - tmin))});
    say("noise-now", t("noise.now", {t: fmt(schedule.t[k]), tmax: fmt(tmax), alpha: schedule.alpha[k].toFixed(3),
                                     sigma: schedule.sigma[k].toFixed(3), logsnr: schedule.logsnr[k].toFixed(2)}));
  });
}

// 2. denoise: the sampler's states x_t and x0 estimates, step by step (live: a new draw from the server)
function drawDenoise(data) {
  if (!data.points && !data.image) return missing("denoise-missing", t("missing.command"));
  const traceOf = (part) => part && {xt: dec(part.xt), x0: dec(part.x0), t: part.t};
  const traces = {points: traceOf(data.points), image: traceOf(data.image)};
  const longest = () => Math.max(...[traces.points, traces.image].filter((d) => d).map((d) => d.x0.shape[0]));
  let last = longest();
  // the slider runs over the longest trace; each panel shows the same share of its own F steps
  const draw = (f) => {
    const pointsTrace = traces.points, imageTrace = traces.image;
    const step = (d) => Math.round(f / last * d.x0.shape[0]);
    if (pointsTrace) {
      const n = pointsTrace.xt.shape[1], F = pointsTrace.x0.shape[0], k = step(pointsTrace);
      const lim = bounds(pointsTrace.xt.a.subarray(0, 2 * n), 0.05);
      [["denoise-xt", pointsTrace.xt, k, "#30638e"], ["denoise-x0", pointsTrace.x0, Math.min(k, F - 1), "#d1495b"]]
        .forEach(([id, d, j, col]) => { const cv = $(id), c = clear(cv); dots(c, d.a, j * 2 * n, n, mapper(cv, lim), col, 1.5); });
      label($("denoise-xt"), t("denoise.points", {k: k, F: F}));
    }
    if (imageTrace) {
      const n = imageTrace.xt.shape[1], F = imageTrace.x0.shape[0], k = step(imageTrace), cols = Math.min(n, 10);
      images($("denoise-img-xt"), imageTrace.xt, k * n, n, cols, 8, null);
      images($("denoise-img-x0"), imageTrace.x0, Math.min(k, F - 1) * n, n, cols, 8, null);
      label($("denoise-img-x0"), t("denoise.images", {k: Math.min(k, F - 1) + 1, F: F}));
    }
    const ref = imageTrace || pointsTrace, F = ref.x0.shape[0], k = step(ref);
    say("denoise-now", k < F ? t("denoise.now", {k: k + 1, F: F, t: fmt(ref.t[k])}) : t("denoise.done", {F: F}));
  };
  const s = slider("denoise-step", last, last, draw);
  player(s, 6); stepper(s);
  if (LIVE && data.image) {
    live("denoise-live", "images-diffusion", (body) => Object.assign(body, {frames: true, n: 10}), (r) => {
      traces.image = traceOf(r.frames);
      last = longest(); s.max = last; s.value = 0; draw(0);
    });
  }
}

// 3. why it works: the share of noise along the data against the dimension
const PERPENDICULAR = "perpendicular";   // the claim (claims/geometry.py NAME) that measures the same share
function drawWhy(data) {
  const rows = data.geometry, tangent = data.tangent, xs = rows.map((r) => r.D), pc = (v) => `${(100 * v).toFixed(1)} %`;
  const start = Math.max(0, rows.findIndex((r) => tangent && r.D >= tangent.D));
  slider("why-d", rows.length - 1, start, (k) => {
    const r = rows[k];
    chart($("why-chart"), [{name: t("why.measured"), xs: xs, ys: rows.map((q) => q.mean)},
      {name: t("why.law"), xs: xs, ys: rows.map((q) => q.law_mean), color: "#777"}],
      {xlog: true, ylog: true, xlabel: t("why.x"), ylabel: t("why.y"),
       band: {xs: xs, lo: rows.map((q) => Math.max(q.lo, 1e-6)), hi: rows.map((q) => q.hi)},
       marker: [r.D, r.mean], mlabel: t("why.marker", {D: r.D})});
    say("why-now", t("why.now", {D: r.D, share: pc(r.mean), lo: pc(r.lo), hi: pc(r.hi), off: pc(1 - r.mean)}));
  });
  const claim = (bundle.sections.claims.rows || []).find((r) => r.name === PERPENDICULAR);
  if (claim) say("why-claim", t("why.claim", {ours: claim.ours, verdict: claim.verdict}));
  if (tangent) {
    say("why-tangent", t("why.tangent", {D: tangent.D, d: tangent.d, n: tangent.n, k: tangent.k, share: pc(tangent.mean),
                                          expected: pc(tangent.expected), off: pc(1 - tangent.mean)}));
  }
}

// 4. the learned field: arrows at t, each method's paths from the same noise, W2 against NFE
function drawField(data) {
  missing("field-missing-methods", data.missing_methods);
  if (data.missing) return missing("field-missing", data.missing);
  const where = dec(data.where).a, arrows = dec(data.arrows), real = dec(data.real).a, n = where.length / 2;
  const lim = bounds(where, 0.02);
  if (LIVE) {
    const pick = $("field-live").querySelector("[name=model]");
    [...pick.options].forEach((o) => { if (!bundle.runs[o.value]) o.remove(); });
    if (pick.options.length) {
      live("field-live", pick.value, (body) => Object.assign(body, {run: pick.value, n: 600}), (r) => {
        const cv = $("field-samples"), c = clear(cv), at = mapper(cv, lim);
        dots(c, real, 0, real.length / 2, at, "#bbb", 1);
        dots(c, dec(r.x).a, 0, r.x.shape[0], at, "#d1495b", 1.2);
      });
    }
  }
  slider("field-t", data.t.length - 1, Math.round(data.t.length / 3), (k) => {
    const cv = $("field-arrows"), c = clear(cv), at = mapper(cv, lim);
    dots(c, real, 0, real.length / 2, at, "#bbb", 1);
    let top = 1e-9;
    for (let i = 0; i < n; i++) top = Math.max(top, Math.hypot(arrows.a[(k * n + i) * 2], arrows.a[(k * n + i) * 2 + 1]));
    const scale = 0.9 * (lim[1] - lim[0]) / Math.sqrt(n) / top;
    c.strokeStyle = "#30638e"; c.lineWidth = 1.2;
    for (let i = 0; i < n; i++) {
      const x = where[2 * i], y = where[2 * i + 1];
      const dx = arrows.a[(k * n + i) * 2] * scale, dy = arrows.a[(k * n + i) * 2 + 1] * scale;
      const p = at(x, y), q = at(x + dx, y + dy), ang = Math.atan2(q[1] - p[1], q[0] - p[0]);
      c.beginPath(); c.moveTo(p[0], p[1]); c.lineTo(q[0], q[1]);
      c.lineTo(q[0] - 4 * Math.cos(ang - 0.5), q[1] - 4 * Math.sin(ang - 0.5)); c.moveTo(q[0], q[1]);
      c.lineTo(q[0] - 4 * Math.cos(ang + 0.5), q[1] - 4 * Math.sin(ang + 0.5)); c.stroke();
    }
    say("field-now", t("field.now", {t: fmt(data.t[k])}));
  });
  const box = $("field-paths"), trajs = data.trajectories.map((m) => ({m: m, d: dec(m.xt)}));
  box.textContent = "";
  const canvases = trajs.map((tr) => {
    const fig = document.createElement("figure"), cv = document.createElement("canvas");
    const cap = document.createElement("figcaption");
    cv.width = cv.height = 200; cv.setAttribute("role", "img"); cap.textContent = t("field.caption", {name: tr.m.name, sampler: tr.m.sampler});
    fig.appendChild(cv); fig.appendChild(cap); box.appendChild(fig); return cv;
  });
  const all = trajs.length ? bounds(trajs[0].d.a, 0.05) : lim, last = trajs.length ? trajs[0].d.shape[0] - 1 : 0;
  const s = slider("field-progress", last, 0, (f) => {
    trajs.forEach((tr, j) => {
      const cv = canvases[j], c = clear(cv), at = mapper(cv, all), [F, m] = tr.d.shape;
      const k = Math.round(f * (F - 1) / Math.max(1, last));
      c.strokeStyle = "rgba(48,99,142,0.25)";
      for (let i = 0; i < m; i++) {
        c.beginPath();
        for (let t = 0; t <= k; t++) {
          const p = at(tr.d.a[(t * m + i) * 2], tr.d.a[(t * m + i) * 2 + 1]); t ? c.lineTo(p[0], p[1]) : c.moveTo(p[0], p[1]);
        }
        c.stroke();
      }
      dots(c, tr.d.a, k * m * 2, m, at, "#d1495b", 1.5);
      label(cv, t("field.paths", {name: tr.m.name, m: m, k: k, F: F - 1}));
    });
  });
  player(s, 12);
  const w2 = data.w2;
  chart($("field-w2"), w2.curves.map((c) => ({name: c.name, xs: c.nfe || w2.nfe, ys: c.w2})),
    {xlog: true, ylog: true, xticks: w2.nfe, xlabel: t("field.x"), ylabel: t("w2.y"),
     hline: w2.floor, hlabel: t("w2.floor", {floor: w2.floor.toFixed(3)})});
}

// 5. guidance: samples at each w, and accuracy against FID / floor (live: a new draw at any w)
function drawGuidance(data) {
  if (data.missing) return missing("guidance-missing", data.missing);
  const samples = dec(data.samples), per = samples.shape[1], curve = data.curve;
  const draw = (k) => {
    const row = curve[k];
    images($("guidance-grid"), samples, k * per, per, 10, 5, null);
    label($("guidance-grid"), t("guidance.grid", {w: data.w[k]}));
    chart($("guidance-curve"),
      [{name: "", xs: curve.map((r) => r.ratio), ys: curve.map((r) => r.accuracy), labels: curve.map((r) => t("guidance.point", {w: r.w}))}],
      {xlog: true, xlabel: t("guidance.x"), ylabel: t("guidance.y"), marker: [row.ratio, row.accuracy]});
    say("guidance-now", t("guidance.now", {w: data.w[k], accuracy: row.accuracy.toFixed(3), fid: row.fid.toFixed(2),
                                           floor: row.floor.toFixed(2), ratio: row.ratio.toFixed(2), n: row.n,
                                           level: realLevel(row, "level")}));
  };
  slider("guidance-w", data.w.length - 1, data.w.indexOf(1), draw);
  if (LIVE) {
    live("guidance-live", "images-diffusion", (body) => Object.assign(body, {n: 40, label: "each"}), (r) => {
      images($("guidance-grid"), dec(r.x), 0, r.x.shape[0], 10, 5, null);
      say("guidance-now", t("guidance.live", {n: r.x.shape[0], seconds: r.seconds.toFixed(2)}));
    });
  }
}

// real data's expected FID level over the floor (a fresh draw of real images scores it), where the bundle has it
function realLevel(row, key) {
  return row.level ? t(key, {real: (row.level / row.floor).toFixed(2)}) : "";
}

// 6. the debate: each family generating one image per class, frame by frame, and the measured table
function drawDebate(data) {
  missing("debate-missing", data.missing);
  if (!data.panels.length) return;
  const box = $("debate-panels"), panels = data.panels.map((p) => ({p: p, d: dec(p.frames)}));
  box.textContent = "";
  const cvs = panels.map((q) => {
    const fig = document.createElement("figure"), cv = document.createElement("canvas");
    const cap = document.createElement("figcaption");
    cv.setAttribute("role", "img"); fig.appendChild(cv); fig.appendChild(cap); box.appendChild(fig); return {cv: cv, cap: cap};
  });
  const cls = $("debate-class"), steps = 48, classes = panels[0].d.shape[0];
  cls.textContent = "";
  for (let c = 0; c < classes; c++) { const o = document.createElement("option"); o.textContent = c; cls.appendChild(o); }
  const draw = (f) => panels.forEach((q, j) => {   // q.live: a served draw of this class (F, 1, C, H, W)
    const live = q.live, F = live ? live.d.shape[0] : q.d.shape[1], k = Math.round(f / steps * (F - 1));
    const [C, H, W] = q.d.shape.slice(-3), at = live ? live.captions[k] : q.p.captions[k];
    const cv = cvs[j].cv; cv.width = cv.height = 160;
    image(clear(cv), live ? live.d.a : q.d.a, (live ? k : (+cls.value) * F + k) * C * H * W, C, H, W, 0, 0, 160 / W, null);
    cvs[j].cap.textContent = t("debate.caption", {name: q.p.name, at: at});
    label(cv, t("debate.label", {name: q.p.name, c: cls.value, at: at}));
  });
  const s = slider("debate-progress", steps, steps, draw);
  cls.addEventListener("change", () => { panels.forEach((q) => { q.live = null; }); draw(+s.value); });
  player(s, 8);
  if (LIVE) liveDebate(data, panels, cls, () => { s.value = 0; draw(0); });
  const body = $("debate-table");
  data.table.forEach((r) => {
    const tr = document.createElement("tr");
    const trained = bundle.runs[r.role] ? Math.round(bundle.runs[r.role].train_seconds) : "?";
    [r.name, r.params.toLocaleString(), trained, r.nfe, r.ms.toFixed(0), r.accuracy === null ? "-" : r.accuracy.toFixed(3),
     t("debate.fid", {fid: r.fid.toFixed(2), floor: r.floor.toFixed(2), ratio: r.ratio.toFixed(2), level: realLevel(r, "level.short")})]
      .forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
    body.appendChild(tr);
  });
}

// live: each family draws the chosen class again from the reader's seed, frame by frame, from the server
function liveDebate(data, panels, cls, redraw) {
  const box = $("debate-live");
  if (!box) return;
  box.hidden = false;
  box.querySelector("button").addEventListener("click", async () => {
    const status = box.querySelector(".status"), said = [];
    status.textContent = t("live.sampling");
    for (const [j, q] of panels.entries()) {
      const role = data.table[j].role, body = {run: role, n: 1, label: +cls.value, frames: true,
                                               seed: +box.querySelector("[name=seed]").value};
      if (role === "images-diffusion") Object.assign(body, {sampler: "dpmpp_2m", nfe: 20});
      try {
        const r = await fetch("api/sample", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
        const j2 = await r.json();
        if (!r.ok) { said.push(t("text.refused", {name: q.p.name, error: j2.error || r.statusText})); continue; }
        const d = dec(j2.frames.x0), F = d.shape[0];
        const captions = j2.frames.xt ? j2.frames.t.map((u, k) => t("debate.live_step", {k: k + 1, F: F, t: fmt(u)})) : j2.frames.t;
        q.live = {d: d, captions: captions};
        said.push(t("text.done", {name: q.p.name, nfe: j2.nfe, seconds: j2.seconds.toFixed(2)}));
      } catch (e) { said.push(t("text.silent", {name: q.p.name, error: e})); }
    }
    status.textContent = said.join("; ");
    redraw();
  });
}

// 10. the claims: the table `unnoise claims` wrote, or the quick ones this page measured
function drawClaims(data) {
  if (data.missing) return missing("claims-missing", data.missing);
  const body = $("claims-table"), trs = [];
  body.textContent = "";
  data.rows.forEach((r) => {
    const tr = document.createElement("tr");
    if (r.later) tr.className = "later";  // not measured on this page: the command and time that measure it
    const verdict = r.later && r.later.seconds ? t(r.later.gone.length ? "claims.later_runs" : "claims.later_long",
      {runs: r.later.gone.join(", "), seconds: r.later.seconds, name: r.later.name}) : r.verdict;
    [r.claim, r.experiment, r.ours, r.reference, verdict].forEach((v) => {
      const td = document.createElement("td"); td.textContent = v === undefined ? "" : v; tr.appendChild(td);
    });
    body.appendChild(tr); trs.push(tr);
  });
  const show = $("claims-show"), pick = () => {
    trs.forEach((tr, i) => { tr.hidden = show.value !== "all" && (show.value === "later") !== !!data.rows[i].later; });
    say("claims-now", t("claims.now", {k: trs.filter((tr) => !tr.hidden).length, n: trs.length}));
  };
  show.addEventListener("change", pick);
  pick();
}

// 10. watch it learn: each run's samples from the same noise at 1, 5, 20 and 100 % of training, its loss curve
function drawLearn(data) {
  if (data.missing) return missing("learn-missing", data.missing);
  const box = $("learn-panels"), redraw = [];
  box.textContent = "";
  const pct = (f) => `${+(100 * f).toFixed(1)} %`;
  data.panels.forEach((p, j) => {
    const d = dec(p.samples), head = document.createElement("p"), row = document.createElement("div");
    head.textContent = p.name; row.className = "row"; box.appendChild(head);
    const figs = p.marks.map((m, i) => {
      const fig = document.createElement("figure"), cv = document.createElement("canvas");
      const cap = document.createElement("figcaption");
      cap.textContent = t("learn.caption", {pct: pct(m.fraction), step: m.step, metric: m.metric, ratio: m.ratio.toFixed(2)});
      cv.setAttribute("role", "img"); label(cv, t("learn.label", {name: p.name, at: cap.textContent}));
      if (p.kind === "images") images(cv, d, i * d.shape[1], d.shape[1], 5, 5);
      else {
        cv.width = cv.height = 130;
        const m2 = d.shape[1], lim = bounds(d.a, 0.05);
        dots(clear(cv), d.a, i * m2 * 2, m2, mapper(cv, lim), "#d1495b", 1);
      }
      fig.appendChild(cv); fig.appendChild(cap); row.appendChild(fig);
      return fig;
    });
    const loss = document.createElement("canvas");
    loss.id = `learn-loss-${j}`; loss.width = 520; loss.height = 200; loss.setAttribute("role", "img");
    label(loss, t("learn.loss_label", {name: p.name}));
    row.appendChild(loss); box.appendChild(row);
    redraw.push((k) => {
      figs.forEach((f, i) => { f.className = i === k ? "picked" : ""; });
      const at = p.loss.step.findIndex((s) => s >= p.marks[k].step), y = p.loss.loss[at < 0 ? p.loss.loss.length - 1 : at];
      chart(loss, [{name: t("learn.loss"), xs: p.loss.step, ys: p.loss.loss}],
        {xlabel: t("learn.loss_x"), ylabel: t("learn.loss"), ylog: true, marker: [p.marks[k].step, y]});
    });
  });
  const marks = data.panels[0].marks;
  slider("learn-k", marks.length - 1, marks.length - 1, (k) => {
    redraw.forEach((f) => f(k));
    say("learn-now", t("learn.now", {pct: pct(marks[k].fraction)}));
  });
  player($("learn-k"), 1);
  chart($("learn-metric"), data.panels.map((p) => ({name: p.name, xs: p.marks.map((m) => 100 * m.fraction),
                                                    ys: p.marks.map((m) => m.ratio)})),
    {xlog: true, ylog: true, xticks: marks.map((m) => 100 * m.fraction), xlabel: t("learn.x"),
     ylabel: t("learn.y"), hline: 1, hlabel: t("learn.floor")});
}

// ---- live controls (unnoise serve) -----------------------------------------------------------------
function live(id, run, shape, done) {
  const box = $(id);
  if (!box || !bundle.runs[run]) return;
  box.hidden = false;
  const val = (name) => box.querySelector(`[name=${name}]`);
  box.querySelector("button").addEventListener("click", async () => {
    const body = {run: run, seed: +val("seed").value, guidance: val("guidance") ? +val("guidance").value : 1};
    if (val("sampler")) { body.sampler = val("sampler").value; body.nfe = +val("nfe").value; }
    if (val("label")) body.label = val("label").value === "" ? "each" : +val("label").value;
    shape(body);
    const status = box.querySelector(".status"); status.textContent = t("live.sampling");
    try {
      const r = await fetch("api/sample", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
      const j = await r.json();
      if (!r.ok) { status.textContent = j.error || r.statusText; return; }
      status.textContent = t("live.done", {nfe: j.nfe, seconds: j.seconds.toFixed(2)});
      done(j);
    } catch (e) { status.textContent = t("live.silent", {error: e}); }
  });
}

// 7. how few steps: the same noise through 1, 2, 4 and 30 calls per method; quality against calls
function drawFew(data) {
  missing("few-missing-methods", data.missing_methods);
  if (data.missing) return missing("few-missing", data.missing);
  if (LIVE) {
    const pick = $("few-live").querySelector("[name=model]");
    [...pick.options].forEach((o) => { if (!bundle.runs[o.value]) o.remove(); });
    if (pick.options.length) {
      const nfe = $("few-live").querySelector("[name=nfe]");
      const shape = (body) => Object.assign(body, {run: pick.value, n: 10, label: "each", nfe: +nfe.value},
                                             pick.value === "images-diffusion" ? {sampler: "dpmpp_2m"} : {});
      live("few-live", pick.value, shape, (r) => {
        images($("few-samples"), dec(r.x), 0, r.x.shape[0], 10, 5, null);
      });
    }
  }
  const box = $("few-grid"), w2 = data.w2, columns = data.nfe.map(() => []);
  const calls = (k) => t(k > 1 ? "few.calls" : "few.call", {k: k});
  box.textContent = "";
  data.panels.forEach((p, j) => {
    const d = dec(p.samples), row = document.createElement("div"), lim = bounds(d.a, 0.05), m = d.shape[1];
    const head = document.createElement("p");
    head.textContent = p.name; box.appendChild(head); row.className = "row";
    data.nfe.forEach((k, i) => {
      const fig = document.createElement("figure"), cv = document.createElement("canvas");
      const cap = document.createElement("figcaption"), curve = w2 && w2.curves[j];
      const at = curve ? curve.nfe.indexOf(k) : -1;
      cv.width = cv.height = 130; cv.setAttribute("role", "img");
      cap.textContent = calls(k) + (at >= 0 ? t("few.ratio", {ratio: (curve.w2[at] / w2.floor).toFixed(2)}) : "");
      fig.appendChild(cv); fig.appendChild(cap); row.appendChild(fig); columns[i].push(fig);
      const c = clear(cv);
      dots(c, d.a, i * m * 2, m, mapper(cv, lim), "#d1495b", 1);
      label(cv, `${p.name}, ${cap.textContent}`);
    });
    box.appendChild(row);
  });
  slider("few-calls", data.nfe.length - 1, 0, (i) => {   // one column of the grid, and where it sits on each chart
    const k = data.nfe[i], at = (c, ys) => { const q = c.nfe.indexOf(k); return q < 0 ? null : ys[q]; };
    columns.forEach((figs, q) => figs.forEach((f) => { f.className = q === i ? "picked" : ""; }));
    const said = [], on = [];
    if (w2) {
      chart($("few-w2"), w2.curves.map((c) => ({name: c.name, xs: c.nfe, ys: c.w2})),
        {xlog: true, ylog: true, xticks: data.nfe, xlabel: t("few.x_points"), ylabel: t("w2.y"),
         hline: w2.floor, hlabel: t("w2.floor", {floor: w2.floor.toFixed(3)}), vline: k});
      w2.curves.forEach((c) => { const v = at(c, c.w2); if (v !== null) said.push(t("few.method", {name: c.name, ratio: (v / w2.floor).toFixed(2)})); });
      if (said.length) on.push(t("few.now_points", {methods: said.splice(0).join(", ")}));
    }
    if (data.images.length) {
      chart($("few-images"), data.images.map((c) => ({name: c.name, xs: c.nfe, ys: c.ratio,
                                                      labels: c.nfe.length === 1 ? [t("few.point", {name: c.name, nfe: c.nfe[0]})] : []})),
        {xlog: true, ylog: true, xlabel: t("few.x_images"), ylabel: t("few.y_images"), hline: 1,
         hlabel: t("few.floor_images"), vline: k});
      data.images.forEach((c) => { const v = at(c, c.ratio); if (v !== null) said.push(t("few.method", {name: c.name, ratio: v.toFixed(2)})); });
      if (said.length) on.push(t("few.now_images", {methods: said.join(", ")}));
    }
    say("few-now", calls(k) + (on.length ? t("few.now", {figures: on.join("; ")}) : ""));
  });
}

// 8. the same, on text: one passage per order, as it is written; bits per character beside the floor
function drawText(data) {
  missing("text-missing-methods", data.missing_methods);
  if (data.missing) return missing("text-missing", data.missing);
  const box = $("text-panels"), boxes = [];
  box.textContent = "";
  data.panels.forEach((p) => {
    const fig = document.createElement("figure"), pre = document.createElement("pre"), cap = document.createElement("figcaption");
    pre.className = "passage"; pre.setAttribute("aria-label", t("text.label", {name: p.name}));
    cap.textContent = p.name; fig.appendChild(cap); fig.appendChild(pre); box.appendChild(fig); boxes.push(pre);
  });
  const last = data.panels[0].frames.length - 1;
  const draw = (k) => data.panels.forEach((p, j) => { boxes[j].textContent = p.frames[k]; });
  const s = slider("text-progress", last, last, draw);
  player(s, 2);
  if (LIVE) liveText(data, boxes);
  const rows = $("text-table"), f = (v, d) => (v === null || v === undefined ? "-" : v.toFixed(d));
  rows.textContent = "";
  data.panels.forEach((p) => {
    const tr = document.createElement("tr");
    const floor = p.bits_per_char_floor ? t("text.floor", {floor: f(p.bits_per_char_floor, 3)}) : "";
    const cells = [p.name, t("text.bits", {bits: f(p.bits_per_char, 3), stderr: f(p.bits_per_char_stderr, 3), kind: p.bits_per_char_kind, floor: floor}),
                   t("text.judged", {ours: f(p.sample_bits_per_char, 2), real: f(p.real_bits_per_char, 2), judge: p.judge}),
                   p.word_share === undefined ? "-" : t("text.words", {ours: f(p.word_share, 2), real: f(p.real_word_share, 2)}), `${p.calls}`];
    cells.forEach((c) => { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
    rows.appendChild(tr);
  });
}

// live: each served text run writes from the reader's prompt (and suffix, for the diffusion models)
function liveText(data, boxes) {
  const box = $("text-live");
  if (!box) return;
  box.hidden = false;
  const val = (name) => box.querySelector(`[name=${name}]`).value;
  box.querySelector("button").addEventListener("click", async () => {
    const status = box.querySelector(".status"), said = [];
    status.textContent = t("text.writing");
    for (const [j, p] of data.panels.entries()) {
      const body = {run: p.role, n: 1, seed: +val("seed"), length: +val("length"), prompt: val("prompt")};
      if (p.infills) { body.suffix = val("suffix"); body.nfe = +val("nfe"); }
      try {
        const r = await fetch("api/sample", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
        const j2 = await r.json();
        if (!r.ok) { said.push(t("text.refused", {name: p.name, error: j2.error || r.statusText})); continue; }
        boxes[j].textContent = j2.text[0];
        said.push(t("text.done", {name: p.name, nfe: j2.nfe, seconds: j2.seconds.toFixed(2)}));
      } catch (e) { said.push(t("text.silent", {name: p.name, error: e})); }
    }
    status.textContent = said.join("; ");
  });
}

// 9. why latent? an image, its latent and its decoding; the same noise level in pixels and in the latent
function drawLatent(data) {
  if (data.missing) return missing("latent-missing", data.missing);
  const one = (id, item, cell) => images($(id), dec(item), 0, 1, 1, cell, null);
  one("latent-image", data.image, 6); one("latent-rebuilt", data.reconstruction, 6);
  const maps = dec(data.latent);
  images($("latent-maps"), maps, 0, maps.shape[0], maps.shape[0], 12, null);
  const pixel = dec(data.pixel), noised = dec(data.noised_latent), last = data.t.length - 1;
  const draw = (k) => {
    images($("latent-pixel"), pixel, k, 1, 1, 6, null);
    images($("latent-noised"), noised, k, 1, 1, 6, null);
    say("latent-now", t("latent.now", {t: fmt(data.t[k])}));
  };
  const s = slider("latent-level", last, 0, draw);
  if (data.samples) {   // a page written before the gallery has none
    const shown = dec(data.samples);
    images($("latent-gallery"), shown, 0, shown.shape[0], 10, Math.max(2, Math.round(56 / shown.shape[3])), null);
    say("latent-samples-caption", t(data.conditional ? "latent.samples_classes" : "latent.samples", {n: shown.shape[0]}));
  } else $("latent-gallery").closest("figure").hidden = true;
  if (LIVE) {
    if (!data.conditional) $("latent-live").querySelector(".classes").hidden = true;  // no classes: no guidance
    const shape = (body) => Object.assign(body, {n: 10}, data.conditional ? {label: "each"} : {guidance: 1});
    live("latent-live", "images-latent", shape, (r) => {
      images($("latent-samples"), dec(r.x), 0, r.x.shape[0], 10, 5, null);
    });
  }
  player(s, 2);
  const cost = {data: data.data, pixel_values: data.pixel_values, pixel_ms: data.pixel_ms.toFixed(2), net: data.net,
                latent_values: data.latent_values, latent_ms: data.latent_ms.toFixed(2), fid: data.quality.fid.toFixed(2),
                floor: data.quality.floor.toFixed(2)};
  say("latent-cost", data.quality.accuracy === null ? t("latent.cost", cost)
    : t("latent.cost_classes", {...cost, accuracy: data.quality.accuracy.toFixed(3)}));
}

// ---- every section on the page, by its key (its <section id>, its key in bundle.sections) ----------------------
const SECTIONS = {noise: drawNoise, denoise: drawDenoise, why: drawWhy, field: drawField, guidance: drawGuidance,
                  debate: drawDebate, few: drawFew, text: drawText, latent: drawLatent, learn: drawLearn, claims: drawClaims};
document.querySelectorAll("main > section").forEach((el) => {
  try {
    if (!SECTIONS[el.id]) throw new Error(`page.js draws no section ${el.id}`);
    SECTIONS[el.id](bundle.sections[el.id]);
  } catch (e) { console.error(el.id, e); }
});
try { stamps(); } catch (e) { console.error("stamps", e); }
document.querySelectorAll("table").forEach((t) => {   // each cell names its column, for the phone's cards (page.css)
  const names = [...t.querySelectorAll("thead th")].map((th) => th.textContent);
  t.querySelectorAll("tbody tr").forEach((tr) => [...tr.children].forEach((td, i) => { if (names[i]) td.dataset.label = names[i]; }));
});
document.body.dataset.ready = "yes";
