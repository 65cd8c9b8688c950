/* /playground: send a chat prompt (streamed, SSE over fetch) or an image prompt to this
 * gateway and show the answer beside the routing decision. The API key stays in this
 * tab's sessionStorage and goes only to this origin, as the Authorization header. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const KEY = "polyroute.apiKey";
  const DASH = "–";
  const state = { models: [], controller: null, requestId: null, status: null };

  function setStatus(key, vars) {
    state.status = key ? { key, vars } : null;
    $("status").textContent = key ? PR.t(key, vars) : "";
    $("status").className = "status" + (key ? " warn" : "");
  }

  function mode() {
    return $("mode-image").checked ? "image" : "chat";
  }

  function headers(json) {
    const result = { "x-polyroute-playground": "1" };
    const key = $("api-key").value.trim();
    if (key) result.Authorization = "Bearer " + key;
    if (json) result["Content-Type"] = "application/json";
    return result;
  }

  async function loadModels() {
    try {
      const response = await fetch("v1/models", { headers: headers(false), cache: "no-store" });
      if (!response.ok) {
        setStatus("play.modelsError", { message: await PR.errorMessage(response) });
        state.models = [];
      } else {
        state.models = (await response.json()).data || [];
        setStatus(null);
      }
    } catch (error) {
      setStatus("play.modelsError", { message: String(error.message || error) });
      state.models = [];
    }
    fillModels();
  }

  function fillModels() {
    const select = $("model");
    const previous = select.value;
    const kind = mode();
    PR.clear(select);
    select.append(PR.el("option", { value: "", "data-i18n": "play.auto", text: PR.t("play.auto") }));
    const groups = { route: [], deployment: [] };
    for (const model of state.models) {
      const info = model.polyroute || {};
      const kinds = info.kinds || [];
      if (kinds.length && !kinds.includes(kind)) continue;
      (groups[info.type === "deployment" ? "deployment" : "route"]).push(model);
    }
    for (const [type, label] of [["route", "play.routes"], ["deployment", "play.deployments"]]) {
      if (!groups[type].length) continue;
      const group = PR.el("optgroup", { label: PR.t(label), "data-group": type });
      for (const model of groups[type]) {
        const strategy = model.polyroute && model.polyroute.strategy;
        const text = type === "route" && strategy ? `${model.id} (${strategy})` : model.id;
        group.append(PR.el("option", { value: model.id, text }));
      }
      select.append(group);
    }
    if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  }

  function setText(id, value) {
    $(id).textContent = value === null || value === undefined || value === "" ? DASH : String(value);
  }

  function resetOutput() {
    for (const id of [
      "ex-route", "ex-path", "ex-strategy", "ex-deployment", "ex-fallbacks", "ex-attempts",
      "ex-arm", "ex-ensemble", "ex-latency", "ex-ttft", "ex-server-latency", "ex-tokens",
      "ex-cost", "ex-request-id",
    ]) {
      setText(id, null);
    }
    $("ex-signals").textContent = DASH;
    PR.clear($("ex-rejected"));
    const answer = $("answer");
    answer.textContent = "";
    answer.className = "answer";
    $("image").hidden = true;
    $("image").removeAttribute("src");
    $("feedback-result").textContent = "";
    $("thumbs-up").disabled = true;
    $("thumbs-down").disabled = true;
    state.requestId = null;
  }

  function showDryRun(plan) {
    setText("ex-route", plan.route);
    setText("ex-path", (plan.path || []).join(" → "));
    setText("ex-strategy", plan.strategy);
    setText("ex-deployment", plan.deployment);
    setText("ex-fallbacks", (plan.fallbacks || []).join(", ") || PR.t("play.none"));
    setText("ex-arm", plan.arm ? `${plan.experiment} / ${plan.arm}` : PR.t("play.none"));
    setText(
      "ex-ensemble",
      plan.ensemble ? `${plan.ensemble.aggregator}: ${plan.ensemble.members.join(", ")}` : PR.t("play.none"),
    );
    $("ex-signals").textContent = JSON.stringify(plan.signals || {}, null, 2);
    const list = PR.clear($("ex-rejected"));
    const rejected = plan.rejected || [];
    if (!rejected.length) list.append(PR.el("li", { class: "muted", text: PR.t("play.none") }));
    for (const r of rejected) list.append(PR.el("li", { text: `${r.target} (${r.route}): ${r.reason}` }));
  }

  function showServed(response) {
    const get = (name) => response.headers.get(name);
    state.requestId = get("x-request-id");
    setText("ex-request-id", state.requestId);
    if (get("x-polyroute-route")) setText("ex-route", get("x-polyroute-route"));
    if (get("x-polyroute-strategy")) setText("ex-strategy", get("x-polyroute-strategy"));
    if (get("x-polyroute-deployment")) setText("ex-deployment", get("x-polyroute-deployment"));
    if (get("x-polyroute-attempts")) setText("ex-attempts", get("x-polyroute-attempts"));
    if (get("x-polyroute-arm")) setText("ex-arm", get("x-polyroute-arm").replace("/", " / "));
  }

  function showError(status, message) {
    const answer = $("answer");
    answer.className = "answer error";
    answer.textContent = PR.t("play.error", { status, message });
  }

  async function readStream(response, started, signal) {
    const answer = $("answer");
    answer.className = "answer pending";
    answer.textContent = PR.t("play.waiting");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let text = "";
    let usage = null;
    let first = null;
    const handle = (payload) => {
      if (payload === "[DONE]") return;
      let event;
      try {
        event = JSON.parse(payload);
      } catch (_) {
        return;
      }
      if (event.error) {
        showError(event.error.code || "stream", event.error.message || "");
        return;
      }
      if (event.usage) usage = event.usage;
      const choice = (event.choices || [])[0];
      const piece = choice && choice.delta && choice.delta.content;
      if (piece) {
        if (first === null) {
          first = performance.now() - started;
          answer.className = "answer";
          answer.textContent = "";
        }
        text += piece;
        answer.textContent = text;
      }
    };
    for (;;) {
      if (signal.aborted) break;
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) handle(data);
      }
    }
    if (first === null && answer.className === "answer pending") answer.textContent = "";
    return { usage, ttft: first };
  }

  async function readImage(response) {
    const body = await response.json();
    const item = (body.data || [])[0] || {};
    const image = $("image");
    if (item.b64_json) image.src = "data:image/png;base64," + item.b64_json;
    else if (item.url && /^https?:\/\//.test(item.url)) image.src = item.url;
    image.alt = item.revised_prompt || $("prompt").value;
    image.hidden = !image.getAttribute("src");
    $("answer").textContent = item.revised_prompt || "";
    return { usage: body.usage || null, ttft: null };
  }

  function showFigures(usage, latency, ttft) {
    setText("ex-latency", PR.fmt.ms(latency));
    if (ttft !== null && ttft !== undefined) setText("ex-ttft", PR.fmt.ms(ttft));
    if (usage && (usage.prompt_tokens !== undefined || usage.completion_tokens !== undefined)) {
      setText("ex-tokens", `${usage.prompt_tokens ?? DASH} / ${usage.completion_tokens ?? DASH}`);
    }
  }

  /* The gateway's own figures for the request (kept a moment after the answer ends). */
  async function loadSummary(requestId) {
    for (let attempt = 0; attempt < 5; attempt++) {
      const response = await fetch("playground/api/requests/" + encodeURIComponent(requestId), {
        headers: headers(false),
        cache: "no-store",
      });
      if (response.ok) {
        const s = await response.json();
        setText("ex-server-latency", PR.fmt.ms(s.latency_ms));
        if (s.ttft_ms !== null) setText("ex-ttft", PR.fmt.ms(s.ttft_ms));
        if (s.attempts) setText("ex-attempts", s.attempts);
        if (s.usage) {
          const estimated = s.usage.estimated ? ` (${PR.t("play.estimated")})` : "";
          const tokens = s.usage.images
            ? `${s.usage.prompt_tokens} / ${PR.t("play.images", { n: s.usage.images })}`
            : `${s.usage.prompt_tokens} / ${s.usage.completion_tokens}`;
          setText("ex-tokens", tokens + estimated);
        }
        setText("ex-cost", s.cost_usd === null ? null : "$" + Number(s.cost_usd.toPrecision(4)));
        return;
      }
      if (response.status !== 404) return;
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }

  async function send(event) {
    event.preventDefault();
    const prompt = $("prompt").value.trim();
    if (!prompt || state.controller) return;
    resetOutput();
    const kind = mode();
    const model = $("model").value;
    const body = kind === "image"
      ? { prompt, n: 1, response_format: "b64_json" }
      : {
          messages: [{ role: "user", content: prompt }],
          stream: true,
          stream_options: { include_usage: true },
        };
    if (model) body.model = model;
    const controller = (state.controller = new AbortController());
    $("send").disabled = true;
    $("stop").disabled = false;
    try {
      const dry = await fetch("v1/route", {
        method: "POST",
        headers: headers(true),
        body: JSON.stringify({ ...body, endpoint: kind }),
        signal: controller.signal,
      });
      if (dry.ok) showDryRun(await dry.json());
      const started = performance.now();
      const url = kind === "image" ? "v1/images/generations" : "v1/chat/completions";
      const response = await fetch(url, {
        method: "POST",
        headers: headers(true),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      showServed(response);
      let result = { usage: null, ttft: null };
      if (!response.ok) showError(response.status, await PR.errorMessage(response));
      else if (kind === "image") result = await readImage(response);
      else result = await readStream(response, started, controller.signal);
      showFigures(result.usage, performance.now() - started, result.ttft);
      if (state.requestId) {
        $("thumbs-up").disabled = false;
        $("thumbs-down").disabled = false;
        await loadSummary(state.requestId);
      }
    } catch (error) {
      if (error.name === "AbortError") {
        $("answer").append(document.createTextNode("\n" + PR.t("play.stopped")));
      } else showError("-", String(error.message || error));
    } finally {
      state.controller = null;
      $("send").disabled = false;
      $("stop").disabled = true;
    }
  }

  async function feedback(score) {
    if (!state.requestId) return;
    const out = $("feedback-result");
    out.textContent = "…";
    try {
      const response = await fetch("v1/feedback", {
        method: "POST",
        headers: headers(true),
        body: JSON.stringify({ request_id: state.requestId, score }),
      });
      if (response.ok) {
        const answer = await response.json();
        const where = Object.entries(answer)
          .filter(([name]) => name !== "request_id" && name !== "recorded")
          .map(([name, value]) => `${name}=${value}`)
          .join(", ");
        out.textContent = PR.t("play.feedbackSaved", { where: where || "ok" });
        out.dataset.outcome = "recorded";
      } else if (response.status === 404) {
        out.textContent = PR.t("play.feedbackUnknown");
        out.dataset.outcome = "unknown";
      } else {
        out.textContent = PR.t("play.error", {
          status: response.status,
          message: await PR.errorMessage(response),
        });
        out.dataset.outcome = "error";
      }
    } catch (error) {
      out.textContent = PR.t("play.error", { status: "-", message: String(error.message || error) });
      out.dataset.outcome = "error";
    }
  }

  function setPlaceholder() {
    $("prompt").dataset.i18nPlaceholder =
      mode() === "image" ? "play.placeholderImage" : "play.placeholderChat";
    PR.applyStrings();
  }

  function init() {
    PR.initLanguage($("lang"), () => {
      fillModels();
      if (state.status) setStatus(state.status.key, state.status.vars);
    });
    $("api-key").value = PR.session.get(KEY);
    $("api-key").addEventListener("change", () => {
      PR.session.set(KEY, $("api-key").value.trim());
      loadModels();
    });
    for (const radio of document.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", () => {
        setPlaceholder();
        fillModels();
      });
    }
    $("ask").addEventListener("submit", send);
    $("stop").addEventListener("click", () => state.controller && state.controller.abort());
    $("thumbs-up").addEventListener("click", () => feedback(1));
    $("thumbs-down").addEventListener("click", () => feedback(0));
    setPlaceholder();
    resetOutput();
    loadModels();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
