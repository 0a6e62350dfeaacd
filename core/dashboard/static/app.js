// The dashboard page: its first state from GET dashboard/state, then one EventSource on the admin listener
// (dashboard/events); Chart.js served by the same listener. Every value goes in through textContent, never innerHTML: route names and URLs come from the config.
'use strict';

(function () {
  const MAX_POINTS = 300;
  const STATUS_COLORS = { '1xx': '#8a8a8a', '2xx': '#2e9d50', '3xx': '#3b7bd6', '4xx': '#d89614', '5xx': '#cf3b2f' };
  const byId = (id) => document.getElementById(id);

  const fmt = (v, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
  const int = (v) => (v === null || v === undefined ? '–' : Math.round(v).toLocaleString('en'));
  const clock = (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false });
  const duration = (s) => {
    if (s === null || s === undefined) return '–';
    if (s < 120) return `${Math.floor(s)}s`;
    if (s < 7200) return `${Math.floor(s / 60)}m`;
    return `${(s / 3600).toFixed(1)}h`;
  };

  function lineChart(id, datasets, options = {}) {
    return new Chart(byId(id), {
      type: 'line',
      data: { labels: [], datasets: datasets.map((d) => ({ pointRadius: 0, borderWidth: 2, tension: 0.2, data: [], ...d })) },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: { x: { ticks: { maxTicksLimit: 6 } }, y: { beginAtZero: true, ...(options.y ?? {}) } },
        plugins: { legend: { labels: { boxWidth: 12 } } },
      },
    });
  }

  const charts = {
    rps: lineChart('chart-rps', [{ label: 'req/s', borderColor: '#3b7bd6', backgroundColor: '#3b7bd633', fill: true }]),
    latency: lineChart('chart-latency', [
      { label: 'p50', borderColor: '#2e9d50' },
      { label: 'p95', borderColor: '#d89614' },
      { label: 'p99', borderColor: '#cf3b2f' },
    ]),
    status: lineChart(
      'chart-status',
      Object.entries(STATUS_COLORS).map(([c, color]) => ({ label: c, borderColor: color })),
    ),
    connections: lineChart('chart-connections', [
      { label: 'connections', borderColor: '#7a4fd0' },
      { label: 'in flight', borderColor: '#1a9aa0' },
    ]),
  };

  const series = {
    rps: (p) => [p.rps],
    latency: (p) => [p.p50, p.p95, p.p99],
    status: (p) => Object.keys(STATUS_COLORS).map((c) => p.statusPerS[c] ?? 0),
    connections: (p) => [p.activeConnections, p.inFlight],
  };

  let lastT = 0;
  function addPoints(points, redraw) {
    // The newest sample can come twice (in the history and as the first sample after it): chart it once.
    points = points.filter((p) => p.t > lastT);
    if (points.length > 0) lastT = points[points.length - 1].t;
    for (const [name, chart] of Object.entries(charts)) {
      for (const p of points) {
        chart.data.labels.push(clock(p.t));
        series[name](p).forEach((v, i) => chart.data.datasets[i].data.push(v));
      }
      const extra = chart.data.labels.length - MAX_POINTS;
      if (extra > 0) {
        chart.data.labels.splice(0, extra);
        for (const d of chart.data.datasets) d.data.splice(0, extra);
      }
      if (redraw) chart.update('none');
    }
  }

  function clearCharts() {
    lastT = 0;
    for (const chart of Object.values(charts)) {
      chart.data.labels.length = 0;
      for (const d of chart.data.datasets) d.data.length = 0;
    }
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function fillTable(id, rows, toCells, empty) {
    const body = byId(id).querySelector('tbody');
    const trs = rows.map((r) => {
      const tr = document.createElement('tr');
      for (const td of toCells(r)) tr.appendChild(td);
      return tr;
    });
    if (trs.length === 0) {
      const tr = document.createElement('tr');
      const td = cell(empty, 'muted');
      td.colSpan = byId(id).querySelectorAll('thead th').length;
      tr.appendChild(td);
      trs.push(tr);
    }
    body.replaceChildren(...trs);
  }

  function health(t) {
    if (t.draining > 0) return ['draining (left DNS)', 'state-half-open'];
    if (t.healthy === t.workers) return ['up', 'state-ok'];
    const why = [];
    if (t.activeHealthy < t.workers) why.push('active check failing');
    if (t.passiveDown > 0) why.push('passively marked down');
    return [`${t.healthy === 0 ? 'down' : `up on ${t.healthy}/${t.workers}`} (${why.join(', ')})`, 'state-down'];
  }

  function circuit(t) {
    const states = Object.entries(t.circuit);
    if (states.length === 1) return [states[0][0], `state-${states[0][0]}`];
    const worst = ['open', 'half-open', 'closed'].find((s) => t.circuit[s] > 0) ?? 'closed';
    return [states.map(([s, n]) => `${s} ×${n}`).join(', '), `state-${worst}`];
  }

  function renderAlerts(alerts) {
    const table = byId('alerts');
    const note = byId('alerts-empty');
    if (alerts === null || alerts === undefined || !Array.isArray(alerts.rules)) {
      table.hidden = true;
      note.hidden = false;
      note.textContent = 'Alerting not configured.';
      return;
    }
    if (alerts.rules.length === 0) {
      table.hidden = true;
      note.hidden = false;
      note.textContent = 'No alert rules.';
      return;
    }
    note.hidden = true;
    table.hidden = false;
    fillTable(
      'alerts',
      alerts.rules,
      (r) => [
        cell(r.name),
        cell(r.severity ?? ''),
        cell(r.state, `state-${r.state}`),
        cell(fmt(r.value, 3), 'num'),
        cell(fmt(r.threshold, 3), 'num'),
        cell([r.route && `route ${r.route}`, r.upstream && `upstream ${r.upstream}`].filter(Boolean).join(', ') || r.metric || ''),
        cell(r.activeSince ? clock(Date.parse(r.activeSince) || r.activeSince) : ''),
        cell(r.lastNotifyError ?? ''),
      ],
      '',
    );
  }

  function render(s) {
    byId('config-version').textContent = String(s.configVersion);
    const reloadError = byId('reload-error');
    reloadError.hidden = s.lastReloadError === null;
    reloadError.textContent = s.lastReloadError === null ? '' : `last reload rejected: ${s.lastReloadError.join('; ')}`;
    byId('kpi-rps').textContent = fmt(s.rps);
    byId('kpi-requests').textContent = int(s.requests);
    byId('kpi-p50').textContent = fmt(s.p50, 2);
    byId('kpi-p95').textContent = fmt(s.p95, 2);
    byId('kpi-p99').textContent = fmt(s.p99, 2);
    byId('kpi-error-rate').textContent = `${fmt(s.errorRate * 100, 2)}%`;
    byId('kpi-connections').textContent = int(s.activeConnections);
    byId('kpi-in-flight').textContent = int(s.inFlight);

    fillTable(
      'routes',
      s.routes,
      (r) => [
        cell(r.name),
        cell(r.path ?? ''),
        cell(fmt(r.rps), 'num'),
        cell(fmt(r.p99, 2), 'num'),
        cell(fmt(r.clientErrorsPerS), 'num'),
        cell(fmt(r.serverErrorsPerS), 'num'),
        cell(int(r.requests), 'num'),
      ],
      'No routes.',
    );
    fillTable(
      'targets',
      s.targets,
      (t) => {
        const [h, hClass] = health(t);
        const [c, cClass] = circuit(t);
        return [
          cell(t.upstream),
          cell(t.source === null || t.source === undefined ? t.url : `${t.url} (${t.source})`),
          cell(h, hClass),
          cell(c, cClass),
          cell(int(t.inFlight), 'num'),
          cell(fmt(t.rps), 'num'),
          cell(fmt(t.failuresPerS), 'num'),
          cell(fmt(t.latencyMs, 2), 'num'),
        ];
      },
      'No upstreams.',
    );
    fillTable(
      'backends',
      s.backends ?? [],
      (b) => [
        cell(b.route),
        cell(b.upstream),
        cell(String(b.weight), b.weight === 0 ? 'num state-pending' : 'num'),
        cell(b.share === null ? '–' : fmt(b.share * 100), 'num'),
        cell(fmt(b.rps), 'num'),
        cell(fmt(b.canaryPerS), 'num'),
        cell(fmt(b.errorsPerS), b.errorsPerS > 0 ? 'num state-down' : 'num'),
      ],
      'No route splits its traffic.',
    );
    fillTable(
      'mirrors',
      s.mirrors ?? [],
      (m) => [
        cell(m.route),
        cell(m.upstream),
        cell(fmt(m.sentPerS), 'num'),
        cell(int(m.inFlight), 'num'),
        cell(fmt(m.droppedPerS), m.droppedPerS > 0 ? 'num state-pending' : 'num'),
        cell(fmt(m.failuresPerS), m.failuresPerS > 0 ? 'num state-down' : 'num'),
        cell(m.agree === null ? '–' : int(m.agree), 'num'),
        cell(m.differ === null ? '–' : int(m.differ), m.differ > 0 ? 'num state-down' : 'num'),
      ],
      'No route mirrors.',
    );
    fillTable(
      'workers',
      s.workers,
      (w) => [
        cell(String(w.id)),
        cell(w.pid === null ? '–' : String(w.pid)),
        cell(w.state, w.state === 'ready' ? 'state-ok' : w.state === 'unresponsive' ? 'state-down' : 'state-pending'),
        cell(duration(w.uptimeS), 'num'),
        cell(String(w.restarts), 'num'),
        cell(String(w.watchdogKills ?? 0), w.watchdogKills > 0 ? 'num state-down' : 'num'),
        cell(w.rssBytes === null ? '–' : fmt(w.rssBytes / 1048576), 'num'),
        cell(fmt(w.cpuPercent), 'num'),
      ],
      'No workers.',
    );
    fillTable(
      'hooks',
      s.hooks,
      (h) => [cell(h.plugin), cell(h.hook), cell(fmt(h.callsPerS), 'num'), cell(fmt(h.meanMs, 3), 'num'), cell(fmt(h.msPerS, 2), 'num')],
      'No plugins.',
    );
    renderAlerts(s.alerts);
  }

  const status = byId('connection');
  const badge = (text, className) => {
    status.textContent = text;
    status.className = `badge ${className}`;
  };
  let streaming = false;

  function drawState(state) {
    clearCharts();
    addPoints(state.history, true);
    render(state.sample);
    badge(typeof EventSource === 'function' ? 'connecting…' : 'polling', 'pending');
  }

  // The first state came with the page itself (drawn now, before the load event: a screenshot taken at load
  // shows numbers); later ones, without EventSource, from dashboard/state.
  try {
    const initial = JSON.parse(byId('initial-state').textContent);
    if (initial !== null) drawState(initial);
  } catch {
    // no state in the page (an older gateway): the stream fills it in
  }

  // The state from one request, drawn before the stream speaks (it may never: a browser without
  // EventSource, a proxy that buffers event streams, a headless screenshot taken at load).
  function loadState() {
    return fetch('dashboard/state', { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((state) => {
        if (!streaming) drawState(state); // else the stream got there first: it carries the same and more
      })
      .catch(() => undefined);
  }

  if (typeof EventSource !== 'function') {
    setInterval(loadState, 2000);
    return;
  }
  const events = new EventSource('dashboard/events');
  events.addEventListener('open', () => badge('live', 'live'));
  // EventSource retries by itself (the server asks for 2 s); say so instead of freezing silently.
  events.addEventListener('error', () => badge('reconnecting…', 'down'));
  events.addEventListener('history', (e) => {
    streaming = true;
    clearCharts();
    addPoints(JSON.parse(e.data), true);
  });
  events.addEventListener('sample', (e) => {
    streaming = true;
    const s = JSON.parse(e.data);
    addPoints([s], true);
    render(s);
  });
})();
