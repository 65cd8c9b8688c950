/* /dashboard: polls GET admin/stats every 2 s with the admin key (kept in this tab's
 * sessionStorage) and redraws the figures, charts and tables. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const KEY = "polyroute.adminKey";
  const REFRESH_MS = 2000;
  const state = { key: "", data: null, timer: null, busy: false, status: null, at: null };

  function setStatus(key, vars, kind) {
    state.status = { key, vars, kind };
    const node = $("status");
    node.textContent = key ? PR.t(key, vars) : "";
    node.className = "status" + (kind ? " " + kind : "");
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = $("auto").checked ? setInterval(refresh, REFRESH_MS) : null;
  }

  async function refresh() {
    if (!state.key || state.busy || document.hidden) return; // no polling from a hidden tab
    state.busy = true;
    try {
      const response = await fetch("admin/stats", {
        headers: { Authorization: "Bearer " + state.key },
        cache: "no-store",
      });
      if (response.ok) {
        state.data = await response.json();
        state.at = new Date();
        render();
        return;
      }
      let code = "";
      try {
        code = ((await response.clone().json()).error || {}).code || "";
      } catch (_) {
        code = "";
      }
      if (code === "admin_disabled") setStatus("dash.disabled", null, "warn");
      else if (response.status === 401 || response.status === 403) {
        setStatus("dash.badKey", null, "warn");
      } else setStatus("dash.error", { msg: await PR.errorMessage(response) }, "warn");
      state.data = null;
      $("content").hidden = true;
    } catch (error) {
      setStatus("dash.error", { msg: String(error.message || error) }, "warn");
    } finally {
      state.busy = false;
    }
  }

  function render() {
    const data = state.data;
    if (!data) {
      if (state.status) setStatus(state.status.key, state.status.vars, state.status.kind);
      return;
    }
    $("content").hidden = false;
    for (const d of data.deployments) PR.colourOf(d.name);
    setStatus(
      "dash.updated",
      {
        time: state.at.toLocaleTimeString(PR.lang === "zh" ? "zh-CN" : "en-GB"),
        uptime: PR.fmt.duration(data.uptime_s),
        pid: data.worker_pid,
      },
      "ok",
    );
    renderKpis(data);
    renderCharts(data);
    renderRoutes(data);
    renderDeployments(data);
    renderDecisions(data);
    renderExperiments(data);
  }

  function renderKpis(data) {
    const total = data.total;
    $("kpi-qps").textContent = PR.fmt.num(total.qps, 2);
    $("kpi-p50").textContent = PR.fmt.ms(total.p50_ms);
    $("kpi-p99").textContent = PR.fmt.ms(total.p99_ms);
    $("kpi-errors").textContent = PR.fmt.pct(total.error_rate);
    $("kpi-tokens").textContent =
      PR.fmt.count(total.tokens_in_1m) + " / " + PR.fmt.count(total.tokens_out_1m);
    $("kpi-cost").textContent = PR.fmt.usd(total.cost_1m) + " / " + PR.fmt.usd(total.totals.cost);
    $("kpi-inflight").textContent = String(data.in_flight);
  }

  function deploymentSeries(data, column) {
    return data.deployments
      .filter((d) => d.stats)
      .map((d) => ({ label: d.name, colour: PR.colourOf(d.name), values: d.stats.series[column] }));
  }

  function renderCharts(data) {
    const total = data.total.series;
    const all = PR.t("chart.total");
    const main = (label, values, dash, colour) => ({
      label,
      colour: colour || PR.TOTAL_COLOUR,
      values,
      width: 2.6,
      dash,
    });
    PR.lineChart($("chart-qps"), {
      title: PR.t("chart.qps"),
      t: total.t,
      series: [main(all, total.qps), ...deploymentSeries(data, "qps")],
      format: (v) => String(+v.toFixed(2)),
    });
    PR.lineChart($("chart-latency"), {
      title: PR.t("chart.latency"),
      t: total.t,
      series: [
        main(all + " p50", total.p50_ms),
        main(all + " p99", total.p99_ms, "6 4", PR.P99_COLOUR),
        ...deploymentSeries(data, "p50_ms").map((s) => ({ ...s, label: s.label + " p50" })),
      ],
      format: (v) => String(Math.round(v)),
    });
    PR.lineChart($("chart-errors"), {
      title: PR.t("chart.errors"),
      t: total.t,
      series: [main(all, total.error_rate), ...deploymentSeries(data, "error_rate")],
      format: (v) => +(v * 100).toFixed(2) + "%",
      yMax: 1,
      zeroIsData: data.total.totals.requests > 0,
    });
    PR.lineChart($("chart-tokens"), {
      title: PR.t("chart.tokens"),
      t: total.t,
      series: [main(all, total.tokens_per_s), ...deploymentSeries(data, "tokens_per_s")],
      format: (v) => PR.fmt.count(v),
    });
  }

  function figures(stats) {
    const s = stats || {};
    const totals = s.totals || {};
    return [
      PR.el("td", { class: "num", text: PR.fmt.num(s.qps, 2) }),
      PR.el("td", { class: "num", text: PR.fmt.ms(s.p50_ms) }),
      PR.el("td", { class: "num", text: PR.fmt.ms(s.p99_ms) }),
      PR.el("td", { class: "num" + (s.error_rate > 0 ? " bad" : ""), text: PR.fmt.pct(s.error_rate) }),
      PR.el("td", { class: "num", text: PR.fmt.count(totals.tokens_in) }),
      PR.el("td", { class: "num", text: PR.fmt.count(totals.tokens_out) }),
      PR.el("td", { class: "num", text: PR.fmt.usd(totals.cost) }),
      PR.el("td", { class: "num", text: PR.fmt.count(totals.requests || 0) }),
    ];
  }

  function byTraffic(a, b) {
    const ra = a.stats ? a.stats.totals.requests : 0;
    const rb = b.stats ? b.stats.totals.requests : 0;
    return rb - ra || a.name.localeCompare(b.name);
  }

  function renderRoutes(data) {
    const body = PR.clear($("routes-body"));
    for (const route of [...data.routes].sort(byTraffic)) {
      const tags = [];
      if (route.default) tags.push(PR.el("span", { class: "tag", text: PR.t("dash.default") }));
      if (route.direct) tags.push(PR.el("span", { class: "tag", text: PR.t("dash.direct") }));
      if (route.strategy === null) {
        tags.push(PR.el("span", { class: "tag", text: PR.t("dash.unrouted") }));
      }
      body.append(
        PR.el("tr", { "data-route": route.name }, [
          PR.el("th", { scope: "row" }, [route.name, ...tags]),
          PR.el("td", { text: route.strategy || PR.fmt.dash }),
          ...figures(route.stats),
        ]),
      );
    }
  }

  function breakerCell(breaker) {
    const label = PR.t("breaker." + breaker.state);
    const badge = PR.el("span", { class: "badge " + breaker.state, text: label });
    const detail = [];
    if (breaker.reason) detail.push(breaker.reason);
    if (breaker.retry_in_s > 0) detail.push(PR.t("breaker.retry", { s: breaker.retry_in_s.toFixed(1) }));
    const cell = PR.el("td", { "data-state": breaker.state }, badge);
    if (detail.length) cell.append(PR.el("div", { class: "reason", text: detail.join(" · ") }));
    return cell;
  }

  function renderDeployments(data) {
    const body = PR.clear($("deployments-body"));
    for (const d of [...data.deployments].sort(byTraffic)) {
      const swatch = PR.el("span", { class: "swatch" });
      swatch.style.background = PR.colourOf(d.name);
      body.append(
        PR.el("tr", { "data-deployment": d.name }, [
          PR.el("th", { scope: "row" }, [swatch, d.name]),
          breakerCell(d.breaker),
          PR.el("td", {
            class: "num" + (d.live.error_rate > 0 ? " bad" : ""),
            text: PR.fmt.pct(d.live.error_rate),
          }),
          PR.el("td", { class: "num", text: String(d.live.in_flight) }),
          ...figures(d.stats),
        ]),
      );
    }
  }

  function renderDecisions(data) {
    const box = PR.clear($("decisions"));
    const routes = data.routes.filter((r) => r.stats && r.stats.decisions_1m).sort(byTraffic);
    if (!routes.length) {
      box.append(PR.el("p", { class: "muted", text: PR.t("dash.noDecisions") }));
      return;
    }
    for (const route of routes) {
      const counts = route.stats.decisions_1m;
      const sum = Object.values(counts).reduce((a, b) => a + b, 0);
      const bar = PR.el("div", { class: "stack" });
      const keys = PR.el("div", { class: "stack-keys" });
      for (const [name, count] of Object.entries(counts)) {
        const share = count / sum;
        const part = PR.el("span", { class: "part", title: `${name}: ${count}` });
        part.style.width = (share * 100).toFixed(2) + "%";
        part.style.background = PR.colourOf(name);
        bar.append(part);
        const swatch = PR.el("span", { class: "swatch" });
        swatch.style.background = PR.colourOf(name);
        keys.append(
          PR.el("span", { class: "key" }, [swatch, `${name} ${PR.fmt.pct(share)} (${count})`]),
        );
      }
      box.append(
        PR.el("div", { class: "decision", "data-route": route.name }, [
          PR.el("div", { class: "decision-route", text: route.name }),
          PR.el("div", { class: "decision-bar" }, [bar, keys]),
        ]),
      );
    }
  }

  function renderExperiments(data) {
    const box = PR.clear($("experiments"));
    const names = Object.keys(data.experiments || {});
    if (!names.length) {
      box.append(PR.el("p", { class: "muted", text: PR.t("dash.noExperiments") }));
      return;
    }
    for (const name of names) {
      const arms = data.experiments[name];
      const maxOf = (pick) =>
        Math.max(0, ...Object.values(arms).map((a) => {
          const v = pick(a);
          return v ? v[1] : 0;
        }));
      const latencyMax = maxOf((a) => a.latency_ms.ci95 || [0, a.latency_ms.mean || 0]);
      const body = PR.el("tbody");
      Object.entries(arms).forEach(([arm, s], index) => {
        const colour = PR.PALETTE[(index + 7) % PR.PALETTE.length];
        const lat = s.latency_ms;
        const fb = s.feedback;
        body.append(
          PR.el("tr", { "data-arm": arm }, [
            PR.el("th", { scope: "row", text: arm }),
            PR.el("td", { class: "num", text: String(s.requests) }),
            PR.el("td", {}, [
              PR.fmt.pct(s.error_rate) + PR.fmt.interval(s.error_rate_ci95, PR.fmt.pct),
              PR.intervalBar(s.error_rate, s.error_rate_ci95, 1, colour),
            ]),
            PR.el("td", {}, [
              PR.fmt.ms(lat.mean) + PR.fmt.interval(lat.ci95, PR.fmt.ms),
              PR.intervalBar(lat.mean, lat.ci95, latencyMax, colour),
            ]),
            PR.el("td", { class: "num", text: PR.fmt.usd(s.cost_usd.mean) }),
            PR.el("td", {}, [
              (fb.n ? PR.fmt.num(fb.mean, 2) + PR.fmt.interval(fb.ci95, (v) => v.toFixed(2)) : PR.fmt.dash) +
                ` (n=${fb.n})`,
              PR.intervalBar(fb.mean, fb.ci95, 1, colour),
            ]),
          ]),
        );
      });
      const head = PR.el("thead", {}, PR.el("tr", {}, [
        PR.el("th", { text: PR.t("col.arm") }),
        PR.el("th", { class: "num", text: PR.t("col.requests") }),
        PR.el("th", { text: PR.t("col.errorRate") }),
        PR.el("th", { text: PR.t("col.latencyMean") }),
        PR.el("th", { class: "num", text: PR.t("col.costMean") }),
        PR.el("th", { text: PR.t("col.feedback") }),
      ]));
      box.append(
        PR.el("div", { class: "experiment", "data-experiment": name }, [
          PR.el("h3", { text: name }),
          PR.el("table", { class: "grid-table" }, [head, body]),
        ]),
      );
    }
  }

  function init() {
    PR.initLanguage($("lang"), render);
    state.key = PR.session.get(KEY);
    $("admin-key").value = state.key;
    $("auth").addEventListener("submit", (event) => {
      event.preventDefault();
      state.key = $("admin-key").value.trim();
      PR.session.set(KEY, state.key);
      if (state.key) refresh();
      else setStatus("dash.needKey");
    });
    $("forget").addEventListener("click", () => {
      state.key = "";
      state.data = null;
      $("admin-key").value = "";
      PR.session.set(KEY, "");
      $("content").hidden = true;
      setStatus("dash.needKey");
    });
    $("auto").addEventListener("change", schedule);
    if (state.key) refresh();
    else setStatus("dash.needKey");
    schedule();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
