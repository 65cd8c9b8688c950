/* Hand-written SVG charts for the dashboard: time-series lines and confidence-interval
 * bars. No library: an <svg> built with the DOM, redrawn on every refresh. */
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  /* A round upper bound for an axis: 1, 2, 2.5, 5 x 10^n. */
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * power >= value * 1.0001) return step * power;
    }
    return 10 * power;
  }

  /* lineChart(container, {t: [s...], series: [{label, colour, values, width}], format})
   * `t` are seconds relative to now (e.g. -295 .. 0); values may hold nulls (gaps). */
  PR.lineChart = function (container, options) {
    const W = 520;
    const H = 200;
    const left = 58;
    const right = 12;
    const top = 12;
    const bottom = 24;
    const t = options.t || [];
    const series = options.series || [];
    const format = options.format || ((v) => String(v));
    PR.clear(container);
    const root = svg("svg", {
      viewBox: `0 0 ${W} ${H}`,
      class: "chart-svg",
      role: "img",
      "aria-label": options.title || "",
    });
    container.appendChild(root);

    let peak = 0;
    let points = 0;
    for (const s of series) {
      for (const v of s.values) {
        if (v !== null && v !== undefined) {
          points += 1;
          if (v > peak) peak = v;
        }
      }
    }
    const yMax = options.yMax ? Math.min(options.yMax, niceMax(peak)) : niceMax(peak);
    const t0 = t.length ? t[0] : -300;
    const t1 = t.length ? t[t.length - 1] : 0;
    const x = (sec) => left + ((sec - t0) / (t1 - t0 || 1)) * (W - left - right);
    const y = (v) => top + (1 - v / yMax) * (H - top - bottom);

    // grid and y labels
    for (let i = 0; i <= 4; i++) {
      const value = (yMax * i) / 4;
      const gy = y(value);
      svg("line", { x1: left, x2: W - right, y1: gy, y2: gy, class: "grid" }, root);
      const label = svg("text", { x: left - 6, y: gy + 4, class: "axis", "text-anchor": "end" }, root);
      label.textContent = format(value);
    }
    // x labels: every minute
    for (let sec = Math.ceil(t0 / 60) * 60; sec <= t1; sec += 60) {
      const label = svg("text", { x: x(sec), y: H - 6, class: "axis", "text-anchor": "middle" }, root);
      label.textContent = sec === 0 ? PR.t("chart.now") : `${sec / 60} min`;
    }
    if (t1 < 0) {
      const label = svg("text", { x: x(t1), y: H - 6, class: "axis", "text-anchor": "end" }, root);
      label.textContent = PR.t("chart.now");
    }

    const drawn = peak > 0 || options.zeroIsData;
    if (!drawn) {
      const empty = svg("text", { x: W / 2, y: H / 2, class: "empty", "text-anchor": "middle" }, root);
      empty.textContent = PR.t("chart.noData");
    } else {
      for (const s of series) {
        let d = "";
        let run = 0;
        const singles = [];
        s.values.forEach((v, i) => {
          if (v === null || v === undefined) {
            if (run === 1) singles.push(i - 1);
            run = 0;
            return;
          }
          d += `${run === 0 ? "M" : "L"}${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`;
          run += 1;
        });
        if (run === 1) singles.push(s.values.length - 1);
        const path = svg(
          "path",
          {
            d: d || "M0,0",
            fill: "none",
            stroke: s.colour,
            "stroke-width": s.width || 1.6,
            "stroke-linejoin": "round",
            "stroke-dasharray": s.dash || "none",
            class: "line",
            "data-series": s.label,
          },
          root,
        );
        svg("title", {}, path).textContent = s.label;
        for (const i of singles) {
          svg("circle", { cx: x(t[i]), cy: y(s.values[i]), r: 2.6, fill: s.colour }, root);
        }
      }
    }
    root.dataset.points = String(drawn ? points : 0);

    const legend = PR.el("div", { class: "legend" });
    for (const s of series) {
      const swatch = PR.el("span", { class: "swatch" });
      swatch.style.background = s.colour;
      legend.append(PR.el("span", { class: "key" }, [swatch, s.label]));
    }
    container.appendChild(legend);
  };

  /* A confidence interval drawn on a shared scale [lo, hi]: a bar and the mean's dot. */
  PR.intervalBar = function (mean, ci, scaleMax, colour) {
    const W = 120;
    const H = 14;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "ci", width: W, height: H });
    svg("line", { x1: 0, x2: W, y1: H / 2, y2: H / 2, class: "grid" }, root);
    if (mean === null || mean === undefined || !(scaleMax > 0)) return root;
    const x = (v) => Math.max(0, Math.min(W, (v / scaleMax) * W));
    if (ci) {
      svg("rect", {
        x: x(ci[0]),
        y: 3,
        width: Math.max(1.5, x(ci[1]) - x(ci[0])),
        height: H - 6,
        fill: colour,
        "fill-opacity": 0.35,
      }, root);
    }
    svg("circle", { cx: x(mean), cy: H / 2, r: 3.2, fill: colour }, root);
    return root;
  };
})();
