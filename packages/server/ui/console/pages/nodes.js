import { html } from '../../shared/html.js';
import { Notice, Table, Time, useLoad } from '../../shared/components.js';

export function NodesPage({ api }) {
  const nodes = useLoad(() => api.get('/v1/nodes'), [], 5000);
  const d = nodes.data;
  return html`<section>
    <h2>Nodes</h2>
    <p class="muted">Every live node of the cluster (one on SQLite), with its heartbeat and open connections.</p>
    <${Notice} error=${nodes.error} />
    ${d &&
    html`<${Table} caption="Nodes" head=${['Node', 'Version', 'Started', 'Last heartbeat', 'WebSocket', 'SSE', 'Long poll']} empty=${d.nodes.length === 0 && 'No live node reported yet.'}>
      ${d.nodes.map(
        (n) => html`<tr key=${n.id}>
          <td class="mono">${n.id}${n.id === d.self && html` <span class="muted">(this node)</span>`}</td>
          <td>${n.version}</td>
          <td><${Time} iso=${n.startedAt} /></td>
          <td><${Time} iso=${n.lastHeartbeat} /></td>
          <td>${n.connections.ws ?? 0}</td>
          <td>${n.connections.sse ?? 0}</td>
          <td>${n.connections.long_poll ?? 0}</td>
        </tr>`,
      )}
    <//>`}
  </section>`;
}
