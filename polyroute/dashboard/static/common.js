/* polyroute dashboard + playground: shared helpers (strings in English and Chinese,
 * number formats, DOM building). Plain JS, no dependencies, no network access except
 * this gateway's own endpoints. Text from the server is always set with textContent. */
"use strict";

const PR = (window.PR = {});

PR.STRINGS = {
  en: {
    "nav.dashboard": "Dashboard",
    "nav.playground": "Playground",
    "lang.label": "Language",
    "dash.title": "Live dashboard",
    "dash.adminKey": "Admin key",
    "dash.connect": "Connect",
    "dash.forget": "Forget key",
    "dash.auto": "Auto-refresh every 2 s",
    "dash.needKey": "Enter the admin key (server.admin_key) to see the live figures.",
    "dash.disabled":
      "The dashboard is off: this gateway has no admin key. Set server.admin_key " +
      "(for the demo: POLYROUTE_ADMIN_KEY=… polyroute demo) and reload.",
    "dash.badKey": "The admin key was not accepted.",
    "dash.error": "Could not load the figures: {msg}",
    "dash.updated": "Updated {time} · uptime {uptime} · worker pid {pid}",
    "dash.note":
      "Figures live in this worker process's memory: with several workers, each shows " +
      "the requests it served. Latency percentiles are of successful requests.",
    "dash.windows":
      "QPS, latency and error rate: last minute; tokens, cost and requests: since start.",
    "dash.attemptsNote":
      "Failed attempts: the share of all tries of the deployment (retried ones included) " +
      "that failed within stats.error_window (60 s by default); the other columns count the " +
      "requests it answered.",
    "dash.noExperiments": "No A/B traffic yet.",
    "dash.noDecisions": "No routed requests in the last minute.",
    "dash.default": "default",
    "dash.direct": "deployment, named directly",
    "dash.unrouted": "refused before routing",
    "kpi.qps": "Requests/s (1 min)",
    "kpi.p50": "Latency p50",
    "kpi.p99": "Latency p99",
    "kpi.errors": "Error rate (1 min)",
    "kpi.tokens": "Tokens in / out (1 min)",
    "kpi.cost": "Cost (1 min / total)",
    "kpi.inflight": "In flight",
    "chart.qps": "Requests per second",
    "chart.latency": "Latency (ms)",
    "chart.errors": "Error rate",
    "chart.tokens": "Tokens per second",
    "chart.total": "all",
    "chart.noData": "no traffic yet",
    "chart.now": "now",
    "sec.routes": "Routes",
    "sec.deployments": "Deployments and circuit breakers",
    "sec.decisions": "Routing decisions (last minute)",
    "sec.experiments": "A/B experiments (95 % confidence intervals)",
    "col.route": "Route",
    "col.strategy": "Strategy",
    "col.qps": "QPS",
    "col.p50": "p50",
    "col.p99": "p99",
    "col.errors": "Errors",
    "col.tokensIn": "Tokens in",
    "col.tokensOut": "Tokens out",
    "col.cost": "Cost",
    "col.requests": "Requests",
    "col.deployment": "Deployment",
    "col.breaker": "Breaker",
    "col.inflight": "In flight",
    "col.failedAttempts": "Failed attempts",
    "col.kinds": "Kinds",
    "col.arm": "Arm",
    "col.errorRate": "Error rate [95 % CI]",
    "col.latencyMean": "Mean latency [95 % CI]",
    "col.costMean": "Mean cost",
    "col.feedback": "Feedback [95 % CI]",
    "col.total": "total",
    "breaker.closed": "closed",
    "breaker.open": "open",
    "breaker.half_open": "half-open",
    "breaker.retry": "retry in {s} s",
    "play.title": "Playground",
    "play.apiKey": "API key",
    "play.apiKeyHint": "Kept in this tab only (sessionStorage); sent only to this gateway.",
    "play.route": "Route",
    "play.auto": "Let the router decide (default route)",
    "play.routes": "Routes",
    "play.deployments": "Deployments",
    "play.mode": "Request",
    "play.chat": "Chat (streamed)",
    "play.image": "Image",
    "play.prompt": "Prompt",
    "play.placeholderChat": "Ask anything…",
    "play.placeholderImage": "Describe an image…",
    "play.send": "Send",
    "play.stop": "Stop",
    "play.answer": "Answer",
    "play.waiting": "Waiting for the first token…",
    "play.stopped": "Stopped.",
    "play.explanation": "Decision explanation",
    "play.path": "Path",
    "play.strategy": "Strategy",
    "play.deployment": "Deployment",
    "play.fallbacks": "Fallbacks",
    "play.attempts": "Attempts",
    "play.arm": "A/B arm",
    "play.ensemble": "Ensemble",
    "play.latency": "Latency (measured here)",
    "play.ttft": "Time to first token",
    "play.serverLatency": "Latency (gateway)",
    "play.tokens": "Tokens in / out",
    "play.cost": "Cost",
    "play.requestId": "Request id",
    "play.signals": "Signals (dry run of the same request)",
    "play.rejected": "Filtered out",
    "play.none": "none",
    "play.estimated": "estimated",
    "play.images": "{n} image(s)",
    "play.feedback": "Was this answer good?",
    "play.up": "👍 Good",
    "play.down": "👎 Bad",
    "play.feedbackSaved": "Recorded: {where}",
    "play.feedbackUnknown":
      "Not recorded: feedback is kept for routes that learn from it (A/B or adaptive).",
    "play.error": "Error {status}: {message}",
    "play.modelsError": "Could not list the models: {message}",
  },
  zh: {
    "nav.dashboard": "仪表盘",
    "nav.playground": "试验场",
    "lang.label": "语言",
    "dash.title": "实时仪表盘",
    "dash.adminKey": "管理密钥",
    "dash.connect": "连接",
    "dash.forget": "清除密钥",
    "dash.auto": "每 2 秒自动刷新",
    "dash.needKey": "请输入管理密钥（server.admin_key）以查看实时数据。",
    "dash.disabled":
      "仪表盘未启用：本网关没有配置管理密钥。请设置 server.admin_key" +
      "（演示模式：POLYROUTE_ADMIN_KEY=… polyroute demo）后刷新页面。",
    "dash.badKey": "管理密钥无效。",
    "dash.error": "无法加载数据：{msg}",
    "dash.updated": "更新于 {time} · 已运行 {uptime} · 工作进程 {pid}",
    "dash.note":
      "数据保存在当前工作进程的内存中：多进程部署时，每个进程只显示自己处理的请求。" +
      "延迟分位数只统计成功的请求。",
    "dash.windows": "QPS、延迟和错误率：最近 1 分钟；token、费用和请求数：启动以来累计。",
    "dash.attemptsNote":
      "失败尝试：在 stats.error_window（默认 60 秒）内对该部署的所有尝试（含被重试的）中失败的比例；" +
      "其余各列只统计由它最终应答的请求。",
    "dash.noExperiments": "暂无 A/B 流量。",
    "dash.noDecisions": "最近 1 分钟没有经过路由的请求。",
    "dash.default": "默认",
    "dash.direct": "直接指定的部署",
    "dash.unrouted": "在路由前被拒绝",
    "kpi.qps": "每秒请求数（1 分钟）",
    "kpi.p50": "延迟 p50",
    "kpi.p99": "延迟 p99",
    "kpi.errors": "错误率（1 分钟）",
    "kpi.tokens": "输入 / 输出 token（1 分钟）",
    "kpi.cost": "费用（1 分钟 / 累计）",
    "kpi.inflight": "处理中",
    "chart.qps": "每秒请求数",
    "chart.latency": "延迟（毫秒）",
    "chart.errors": "错误率",
    "chart.tokens": "每秒 token 数",
    "chart.total": "全部",
    "chart.noData": "暂无流量",
    "chart.now": "现在",
    "sec.routes": "路由",
    "sec.deployments": "部署与熔断器",
    "sec.decisions": "路由决策分布（最近 1 分钟）",
    "sec.experiments": "A/B 实验（95% 置信区间）",
    "col.route": "路由",
    "col.strategy": "策略",
    "col.qps": "QPS",
    "col.p50": "p50",
    "col.p99": "p99",
    "col.errors": "错误",
    "col.tokensIn": "输入 token",
    "col.tokensOut": "输出 token",
    "col.cost": "费用",
    "col.requests": "请求数",
    "col.deployment": "部署",
    "col.breaker": "熔断器",
    "col.inflight": "处理中",
    "col.failedAttempts": "失败尝试",
    "col.kinds": "类型",
    "col.arm": "分组",
    "col.errorRate": "错误率 [95% 置信区间]",
    "col.latencyMean": "平均延迟 [95% 置信区间]",
    "col.costMean": "平均费用",
    "col.feedback": "反馈 [95% 置信区间]",
    "col.total": "合计",
    "breaker.closed": "闭合（正常）",
    "breaker.open": "断开",
    "breaker.half_open": "半开（探测中）",
    "breaker.retry": "{s} 秒后重试",
    "play.title": "试验场",
    "play.apiKey": "API 密钥",
    "play.apiKeyHint": "只保存在当前标签页（sessionStorage），只发送给本网关。",
    "play.route": "路由",
    "play.auto": "由路由器决定（默认路由）",
    "play.routes": "路由",
    "play.deployments": "部署",
    "play.mode": "请求类型",
    "play.chat": "对话（流式）",
    "play.image": "图像",
    "play.prompt": "提示词",
    "play.placeholderChat": "想问什么都可以…",
    "play.placeholderImage": "描述你想生成的图像…",
    "play.send": "发送",
    "play.stop": "停止",
    "play.answer": "回答",
    "play.waiting": "正在等待第一个 token…",
    "play.stopped": "已停止。",
    "play.explanation": "决策解释",
    "play.path": "路径",
    "play.strategy": "策略",
    "play.deployment": "部署",
    "play.fallbacks": "备选部署",
    "play.attempts": "尝试次数",
    "play.arm": "A/B 分组",
    "play.ensemble": "集成",
    "play.latency": "延迟（浏览器测得）",
    "play.ttft": "首 token 时间",
    "play.serverLatency": "延迟（网关测得）",
    "play.tokens": "输入 / 输出 token",
    "play.cost": "费用",
    "play.requestId": "请求 ID",
    "play.signals": "信号（同一请求的试运行）",
    "play.rejected": "被过滤的部署",
    "play.none": "无",
    "play.estimated": "估算",
    "play.images": "{n} 张图像",
    "play.feedback": "这个回答好吗？",
    "play.up": "👍 好",
    "play.down": "👎 不好",
    "play.feedbackSaved": "已记录：{where}",
    "play.feedbackUnknown": "未记录：只有会从反馈中学习的路由（A/B 或自适应）才保存反馈。",
    "play.error": "错误 {status}：{message}",
    "play.modelsError": "无法获取模型列表：{message}",
  },
};

PR.lang = "en";

PR.t = function (key, vars) {
  const table = PR.STRINGS[PR.lang] || PR.STRINGS.en;
  let text = key in table ? table[key] : PR.STRINGS.en[key] || key;
  if (vars) {
    for (const [name, value] of Object.entries(vars)) {
      text = text.split("{" + name + "}").join(String(value));
    }
  }
  return text;
};

/* Fill every [data-i18n] element's text and [data-i18n-placeholder] placeholder. */
PR.applyStrings = function (root) {
  const scope = root || document;
  for (const node of scope.querySelectorAll("[data-i18n]")) {
    node.textContent = PR.t(node.dataset.i18n);
  }
  for (const node of scope.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = PR.t(node.dataset.i18nPlaceholder);
  }
  document.documentElement.lang = PR.lang === "zh" ? "zh-CN" : "en";
};

/* The language: a saved choice, else the browser's (zh* -> zh), else English. */
PR.initLanguage = function (select, onChange) {
  let saved = null;
  try {
    saved = localStorage.getItem("polyroute.lang");
  } catch (_) {
    saved = null;
  }
  const browser = (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  PR.lang = saved === "zh" || saved === "en" ? saved : browser;
  select.value = PR.lang;
  PR.applyStrings();
  select.addEventListener("change", () => {
    PR.lang = select.value === "zh" ? "zh" : "en";
    try {
      localStorage.setItem("polyroute.lang", PR.lang);
    } catch (_) {
      /* private mode: the choice lasts for this page only */
    }
    PR.applyStrings();
    if (onChange) onChange();
  });
};

PR.session = {
  get(name) {
    try {
      return sessionStorage.getItem(name) || "";
    } catch (_) {
      return "";
    }
  },
  set(name, value) {
    try {
      if (value) sessionStorage.setItem(name, value);
      else sessionStorage.removeItem(name);
    } catch (_) {
      /* storage off: the value lives in the input only */
    }
  },
};

/* el("td", {class: "num", title: "x"}, "text" | [children]) */
PR.el = function (tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  PR.append(node, children);
  return node;
};

PR.append = function (node, children) {
  if (children === null || children === undefined) return node;
  for (const child of Array.isArray(children) ? children : [children]) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

PR.clear = function (node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
};

PR.fmt = {
  dash: "–",
  num(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return PR.fmt.dash;
    return Number(value).toFixed(digits === undefined ? 2 : digits);
  },
  ms(value) {
    if (value === null || value === undefined) return PR.fmt.dash;
    if (value >= 10000) return (value / 1000).toFixed(1) + " s";
    if (value >= 100) return Math.round(value) + " ms";
    return value.toFixed(1) + " ms";
  },
  pct(value) {
    if (value === null || value === undefined) return PR.fmt.dash;
    return (value * 100).toFixed(value > 0 && value < 0.1 ? 2 : 1) + " %";
  },
  count(value) {
    if (value === null || value === undefined) return PR.fmt.dash;
    if (value >= 1e6) return (value / 1e6).toFixed(2) + "M";
    if (value >= 1e4) return (value / 1e3).toFixed(1) + "k";
    return String(Math.round(value));
  },
  usd(value) {
    if (value === null || value === undefined) return PR.fmt.dash;
    if (value === 0) return "$0";
    if (value >= 1) return "$" + value.toFixed(2);
    return "$" + Number(value.toPrecision(3)).toString();
  },
  duration(seconds) {
    const s = Math.floor(seconds || 0);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  },
  interval(ci, format) {
    if (!ci) return "";
    return " [" + format(ci[0]) + ", " + format(ci[1]) + "]";
  },
};

/* Colours: one per deployment, stable for the page's life (assigned in config order). */
PR.PALETTE = [
  "#e8590c",
  "#2f9e44",
  "#9c36b5",
  "#0c8599",
  "#f08c00",
  "#c2255c",
  "#5c940d",
  "#1971c2",
  "#862e9c",
  "#495057",
];
PR.TOTAL_COLOUR = "#1c3faa";
PR.P99_COLOUR = "#7048e8";
PR.colours = {};
PR.colourOf = function (name) {
  if (!(name in PR.colours)) {
    PR.colours[name] = PR.PALETTE[Object.keys(PR.colours).length % PR.PALETTE.length];
  }
  return PR.colours[name];
};

/* The error message of an OpenAI-style error body, or the status text. */
PR.errorMessage = async function (response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return String(body.error.message);
  } catch (_) {
    /* not JSON */
  }
  return response.statusText || "HTTP " + response.status;
};
