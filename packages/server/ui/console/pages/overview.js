import { html, useEffect, useRef, useState } from '../../shared/html.js';
import { Notice, percent } from '../../shared/components.js';
import uPlot from '../../vendor/uplot.mjs';

const POLL_MS = 2000;
/** Five minutes of samples. */
const KEEP = 150;

function lastMinute(_plot, min, max) {
  const end = max ?? Date.now() / 1000;
  return [Math.min(min ?? end, end - 60), end];
}

/** Counts and rates start at 0, and an empty chart still has a y axis. */
function fromZero(_plot, _min, max) {
  return [0, max > 0 ? max * 1.1 : 1];
}

/** Until two readings exist there is nothing to draw; an empty last minute keeps the time axis meaningful. */
function drawable(data) {
  if (data[0].length >= 2) return data;
  const now = Date.now() / 1000;
  return [[now - 60, now], ...data.slice(1).map(() => [null, null])];
}

/** A small live time-series chart (uPlot), as wide as its box. */
function Chart({ title, series, data, yLabel, range }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const el = box.current;
    const width = () => Math.max(200, el.clientWidth);
    plot.current = new uPlot(
      {
        title,
        width: width(),
        height: 170,
        // At least the last minute: with fewer than two samples uPlot would otherwise pick a span of years.
        scales: { x: { time: true, range: lastMinute }, y: { range: range ?? fromZero } },
        axes: [{}, { label: yLabel, size: 50 }],
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false, points: { show: false } }))],
        legend: { live: false },
      },
      drawable(data),
      el,
    );
    const resize = new ResizeObserver(() => plot.current.setSize({ width: width(), height: 170 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current.destroy();
    };
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData(drawable(data));
  }, [data]);
  return html`<figure class="chart" aria-label=${title}><div ref=${box}></div></figure>`;
}

/** Per second between two readings of a counter. */
function rate(now, before, pick) {
  const dt = (Date.parse(now.time) - Date.parse(before.time)) / 1000;
  return dt > 0 ? Math.max(0, pick(now) - pick(before)) / dt : 0;
}

const outgoing = (s) => s.realtime.delivered + s.webhooks.succeeded;

/** Figures and chart series from the readings of /v1/stats: rates come from the difference of two readings. */
function derive(samples) {
  const xs = [], inRate = [], outRate = [], ws = [], sse = [], poll = [], pending = [], failed = [], success = [];
  for (let i = 1; i < samples.length; i++) {
    const [before, now] = [samples[i - 1], samples[i]];
    xs.push(Date.parse(now.time) / 1000);
    inRate.push(rate(now, before, (s) => s.events.appended));
    outRate.push(rate(now, before, outgoing));
    ws.push(now.connections.ws);
    sse.push(now.connections.sse);
    poll.push(now.connections.long_poll);
    pending.push(now.deliveries.pending);
    failed.push(now.deliveries.failed);
    const attempts = now.webhooks.attempts - before.webhooks.attempts;
    // No attempt in the interval: a gap in the line, not a fall to 0%.
    success.push(attempts > 0 ? (100 * (now.webhooks.succeeded - before.webhooks.succeeded)) / attempts : null);
  }
  return { xs, inRate, outRate, ws, sse, poll, pending, failed, success };
}

function Tile({ label, value, stat, hint }) {
  return html`<div class="tile"><dt>${label}</dt><dd data-stat=${stat}>${value}</dd>${hint && html`<dd class="muted">${hint}</dd>`}</div>`;
}

/** Kept while the tab lives, so the charts still show the last minutes after a visit to another page. */
let kept = [];

export function Overview({ api }) {
  const [samples, setSamples] = useState(kept);
  const [error, setError] = useState(undefined);
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      try {
        const stats = await api.get('/v1/stats');
        if (stopped) return;
        setError(undefined);
        kept = [...kept.slice(-KEEP), stats];
        setSamples(kept);
      } catch (e) {
        if (!stopped) setError(e);
      }
      if (!stopped) timer = setTimeout(tick, POLL_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  const last = samples.at(-1);
  const d = derive(samples);
  const fmt = (n) => (n === undefined ? '—' : n.toLocaleString());
  const perSecond = (list) => (list.length ? list.at(-1).toFixed(1) : '—');
  return html`<section>
    <h2>Overview</h2>
    <${Notice} error=${error} />
    ${!last && !error && html`<p class="muted">Loading…</p>`}
    ${last &&
    html`<dl class="tiles">
      <${Tile} label="Events appended" stat="events-appended" value=${fmt(last.events.appended)} hint="since this node started" />
      <${Tile} label="Events/s in" stat="events-in" value=${perSecond(d.inRate)} />
      <${Tile} label="Events/s out" stat="events-out" value=${perSecond(d.outRate)} hint="to subscribers and endpoints" />
      <${Tile} label="Connections" stat="connections" value=${`${last.connections.ws} WS · ${last.connections.sse} SSE · ${last.connections.long_poll} poll`} />
      <${Tile} label="Delivery success" stat="delivery-success" value=${percent(last.webhooks.attempts ? last.webhooks.succeeded / last.webhooks.attempts : null)} hint=${`${fmt(last.webhooks.attempts)} attempts`} />
      <${Tile} label="Pending deliveries" stat="deliveries-pending" value=${fmt(last.deliveries.pending)} />
      <${Tile} label="Failed deliveries" stat="deliveries-failed" value=${fmt(last.deliveries.failed)} hint="dead letters" />
      <${Tile} label="Endpoints" stat="endpoints" value=${`${last.endpoints.total} (${last.endpoints.disabled} disabled)`} />
    </dl>`}
    <div class="charts">
      <${Chart} title="Events per second" yLabel="events/s" data=${[d.xs, d.inRate, d.outRate]} series=${[{ label: 'in', color: '#2563eb' }, { label: 'out', color: '#16a34a' }]} />
      <${Chart} title="Open connections" yLabel="connections" data=${[d.xs, d.ws, d.sse, d.poll]} series=${[{ label: 'WebSocket', color: '#7c3aed' }, { label: 'SSE', color: '#0891b2' }, { label: 'long poll', color: '#ca8a04' }]} />
      <${Chart} title="Delivery success" yLabel="%" range=${[0, 100]} data=${[d.xs, d.success]} series=${[{ label: 'success %', color: '#16a34a' }]} />
      <${Chart} title="Deliveries waiting" yLabel="deliveries" data=${[d.xs, d.pending, d.failed]} series=${[{ label: 'pending', color: '#ca8a04' }, { label: 'failed', color: '#dc2626' }]} />
    </div>
  </section>`;
}
