import { html, useState, Fragment } from './html.js';
import { enc, splitList } from './api.js';
import { ConfirmButton, Done, Field, Notice, SecretOnce, StatusBadge, Table, Time, percent, preview, useAction, useLoad } from './components.js';

/**
 * Outbound endpoints: list, form, detail with the delivery log. Every component takes `api` (see api.js)
 * and `links` ({list, detail(id)}: hrefs), so the console (admin key) and the portal (a tenant's token)
 * show the same screens against the same routes; the server decides what each credential may see.
 */

export const SCHEMES = ['standard', 'stripe', 'github'];

/** Endpoints shown (and whose stats are read) at a time: a thousand endpoints must not mean a thousand requests a refresh. */
export const ENDPOINTS_PAGE = 50;

export function EndpointList({ api, links, onNew }) {
  const [page, setPage] = useState(0);
  const list = useLoad(async () => {
    const { endpoints } = await api.get('/v1/endpoints');
    // Oldest first, so a page holds the same endpoints from one refresh to the next.
    endpoints.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const shown = endpoints.slice(page * ENDPOINTS_PAGE, (page + 1) * ENDPOINTS_PAGE);
    // Each shown endpoint's recent success rate; one failing lookup leaves its cell empty, not the page.
    const stats = await Promise.all(shown.map((e) => api.get(`/v1/endpoints/${enc(e.id)}/stats`).catch(() => undefined)));
    return { total: endpoints.length, rows: shown.map((e, i) => ({ ...e, stats: stats[i] })) };
  }, [page], 5000);
  const d = list.data;
  const first = page * ENDPOINTS_PAGE;
  return html`<section>
    <div class="row spread"><h2>Endpoints</h2>${onNew && html`<button type="button" class="primary" onClick=${onNew}>New endpoint</button>`}</div>
    <${Notice} error=${list.error} />
    ${d &&
    html`<${Table} caption="Endpoints" head=${['URL', 'Channels', 'Status', 'Recent success', 'Failed', 'Retrying']} empty=${d.rows.length === 0 && (d.total === 0 ? 'No endpoints yet.' : 'No endpoints on this page.')}>
      ${d.rows.map(
        (e) => html`<tr key=${e.id}>
          <td><a href=${links.detail(e.id)} class="mono">${e.url}</a>${e.description && html`<div class="muted">${e.description}</div>`}</td>
          <td class="mono">${e.channels.join(', ')}${e.types.length > 0 && html`<div class="muted">types: ${e.types.join(', ')}</div>`}</td>
          <td><${StatusBadge} status=${e.enabled ? 'enabled' : 'disabled'} />${!e.enabled && e.disabledReason && html`<div class="muted">${e.disabledReason}</div>`}</td>
          <td>${e.stats ? percent(e.stats.successRate) : '—'}</td>
          <td>${e.stats ? e.stats.failed : '—'}</td>
          <td>${e.stats ? e.stats.retrying : '—'}</td>
        </tr>`,
      )}
    <//>`}
    ${d &&
    d.total > ENDPOINTS_PAGE &&
    html`<div class="row wrap" role="group" aria-label="Endpoint pages">
      <button type="button" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous page</button>
      <button type="button" disabled=${first + ENDPOINTS_PAGE >= d.total} onClick=${() => setPage(page + 1)}>Next page</button>
      <span class="muted" role="status">${d.rows.length ? `${first + 1}–${first + d.rows.length}` : 'none'} of ${d.total}</span>
    </div>`}
  </section>`;
}

/** The event-type field: type patterns as text. `value`/`onChange` hold the comma-separated list. */
function TypesInput({ value, onChange }) {
  return html`<${Field} label="Event types" hint="Optional type patterns (order.*); empty: every type.">
    <input value=${value} onInput=${(e) => onChange(e.currentTarget.value)} />
  <//>`;
}

/**
 * Create (no `endpoint`) or edit. On create the new secret is shown once before `onSaved`. The portal passes
 * its allowed channels as `defaultChannels` and an event-type picker as `TypesField` (same `value`/`onChange`).
 */
export function EndpointForm({
  api,
  endpoint,
  onSaved,
  onCancel,
  channelsLabel = 'Channels',
  channelsHint = 'Channel names or patterns, comma-separated (orders, user:*).',
  defaultChannels = [],
  TypesField = TypesInput,
}) {
  const [url, setUrl] = useState(endpoint ? endpoint.url : '');
  const [channels, setChannels] = useState((endpoint ? endpoint.channels : defaultChannels).join(', '));
  const [types, setTypes] = useState(endpoint ? endpoint.types.join(', ') : '');
  const [scheme, setScheme] = useState(endpoint ? endpoint.scheme : 'standard');
  const [description, setDescription] = useState(endpoint ? endpoint.description ?? '' : '');
  const [created, setCreated] = useState(undefined);
  const action = useAction();

  const submit = (e) => {
    e.preventDefault();
    void action.run(async () => {
      const body = { url: url.trim(), channels: splitList(channels), types: splitList(types), scheme, description };
      if (endpoint) {
        onSaved(await api.patch(`/v1/endpoints/${enc(endpoint.id)}`, body));
      } else {
        setCreated(await api.post('/v1/endpoints', body));
      }
    });
  };

  if (created) {
    return html`<section>
      <h2>Endpoint created</h2>
      <p class="mono">${created.url}</p>
      <${SecretOnce} label="Signing secret" value=${created.secret} note="Your receiver verifies each request's signature with it." onDone=${() => onSaved(created)} />
    </section>`;
  }
  return html`<form class="card" onSubmit=${submit} aria-label=${endpoint ? 'Edit endpoint' : 'New endpoint'}>
    <h2>${endpoint ? 'Edit endpoint' : 'New endpoint'}</h2>
    <${Notice} error=${action.error} onClose=${action.clear} />
    <${Field} label="URL" hint="Where Herald POSTs each event.">
      <input type="url" required value=${url} onInput=${(e) => setUrl(e.currentTarget.value)} placeholder="https://example.com/webhooks" />
    <//>
    <${Field} label=${channelsLabel} hint=${channelsHint}>
      <input required value=${channels} onInput=${(e) => setChannels(e.currentTarget.value)} />
    <//>
    <${TypesField} value=${types} onChange=${setTypes} />
    <${Field} label="Signature scheme">
      <select value=${scheme} onChange=${(e) => setScheme(e.currentTarget.value)}>
        ${SCHEMES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    <//>
    <${Field} label="Description">
      <input value=${description} onInput=${(e) => setDescription(e.currentTarget.value)} />
    <//>
    <div class="row">
      <button type="submit" class="primary" disabled=${action.busy}>${endpoint ? 'Save' : 'Create endpoint'}</button>
      ${onCancel && html`<button type="button" onClick=${onCancel}>Cancel</button>`}
    </div>
  </form>`;
}

/** `version` changes whenever the delivery does (status, attempt count): the list is read again then. */
export function AttemptList({ api, deliveryId, version }) {
  const attempts = useLoad(() => api.get(`/v1/deliveries/${enc(deliveryId)}/attempts`), [deliveryId, version]);
  return html`<div class="attempts">
    <${Notice} error=${attempts.error} />
    ${attempts.data &&
    html`<${Table} caption=${`Attempts of ${deliveryId}`} head=${['Time', 'Status', 'Duration', 'Error', 'Response']} empty=${attempts.data.attempts.length === 0 && 'Not attempted yet.'}>
      ${attempts.data.attempts.map(
        (a) => html`<tr class="attempt">
          <td><${Time} iso=${a.at} /></td>
          <td class="attempt-status">${a.statusCode ?? '—'}</td>
          <td>${a.durationMs} ms</td>
          <td class="attempt-error">${a.error ?? ''}</td>
          <td><pre class="snippet">${preview(a.responseBody ?? '', 500)}</pre></td>
        </tr>`,
      )}
    <//>`}
  </div>`;
}

function DeliveryRow({ api, delivery: d, onChanged }) {
  const [open, setOpen] = useState(false);
  const action = useAction();
  const panel = `attempts-${d.id}`;
  const retry = () => action.run(async () => {
    await api.post(`/v1/deliveries/${enc(d.id)}/retry`);
    setOpen(true);
    onChanged();
  });
  return html`<${Fragment}>
    <tr class="delivery" data-delivery=${d.id} data-status=${d.status}>
      <td><${Time} iso=${d.createdAt} /></td>
      <td><${StatusBadge} status=${d.status} /></td>
      <td class="mono">${d.eventId}<div class="muted">${d.channel} #${d.seq}</div></td>
      <td>${d.attempts}</td>
      <td>${d.lastStatusCode ?? ''}${d.lastError && html`<div class="muted">${d.lastError}</div>`}</td>
      <td class="actions">
        <button type="button" aria-expanded=${open} aria-controls=${panel} onClick=${() => setOpen(!open)}>${open ? 'Hide attempts' : 'Attempts'}</button>
        ${d.status === 'failed' && html`<button type="button" onClick=${retry} disabled=${action.busy}>Retry</button>`}
        <${Notice} error=${action.error} />
      </td>
    </tr>
    ${open && html`<tr id=${panel}><td colspan="6"><${AttemptList} api=${api} deliveryId=${d.id} version=${`${d.status}:${d.attempts}`} /></td></tr>`}
  <//>`;
}

export function DeliveryLog({ api, endpointId }) {
  const [status, setStatus] = useState('');
  const log = useLoad(() => api.get(`/v1/endpoints/${enc(endpointId)}/deliveries?limit=50${status ? `&status=${status}` : ''}`), [endpointId, status], 2000);
  return html`<section aria-labelledby="delivery-log">
    <div class="row spread">
      <h3 id="delivery-log">Delivery log</h3>
      <${Field} label="Status">
        <select value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
          <option value="">all</option><option value="pending">pending</option><option value="succeeded">succeeded</option><option value="failed">failed</option>
        </select>
      <//>
    </div>
    <${Notice} error=${log.error} />
    ${log.data &&
    html`<${Table} caption="Deliveries" head=${['Created', 'Status', 'Event', 'Attempts', 'Last answer', '']} empty=${log.data.deliveries.length === 0 && 'No deliveries yet.'}>
      ${log.data.deliveries.map((d) => html`<${DeliveryRow} key=${d.id} api=${api} delivery=${d} onChanged=${log.reload} />`)}
    <//>`}
  </section>`;
}

function RecoverForm({ api, endpointId }) {
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [done, setDone] = useState('');
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    void action.run(async () => {
      const body = { since: new Date(since).toISOString(), ...(until ? { until: new Date(until).toISOString() } : {}) };
      const { recovered } = await api.post(`/v1/endpoints/${enc(endpointId)}/recover`, body);
      setDone(`Queued ${recovered} failed ${recovered === 1 ? 'delivery' : 'deliveries'} again.`);
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Recover failed deliveries">
    <h3>Recover failed deliveries</h3>
    <p class="muted">Sends again every failed delivery created in the window (your local time).</p>
    <${Notice} error=${action.error} onClose=${action.clear} />
    <${Done}>${done}<//>
    <div class="row wrap">
      <${Field} label="Since"><input type="datetime-local" step="1" required value=${since} onInput=${(e) => setSince(e.currentTarget.value)} /><//>
      <${Field} label="Until (optional)"><input type="datetime-local" step="1" value=${until} onInput=${(e) => setUntil(e.currentTarget.value)} /><//>
    </div>
    <button type="submit" disabled=${action.busy}>Recover</button>
  </form>`;
}

/** `Form`: the edit form (the portal passes its own, with an event-type picker). */
export function EndpointDetail({ api, id, links, onDeleted, Form = EndpointForm }) {
  const endpoint = useLoad(() => api.get(`/v1/endpoints/${enc(id)}`), [id], 5000);
  const stats = useLoad(() => api.get(`/v1/endpoints/${enc(id)}/stats`), [id], 2000);
  const [editing, setEditing] = useState(false);
  const [secret, setSecret] = useState(undefined);
  const [done, setDone] = useState('');
  const action = useAction();
  const e = endpoint.data;

  const act = (fn) => action.run(async () => {
    setDone('');
    await fn();
    await endpoint.reload();
  });
  const toggle = () => act(async () => {
    await api.patch(`/v1/endpoints/${enc(id)}`, { enabled: !e.enabled });
    setDone(e.enabled ? 'Endpoint disabled.' : 'Endpoint enabled.');
  });
  const rotate = () => act(async () => setSecret(await api.post(`/v1/endpoints/${enc(id)}/rotate-secret`, {})));
  const test = () => act(async () => {
    const delivery = await api.post(`/v1/endpoints/${enc(id)}/test`, {});
    setDone(`Test event sent: delivery ${delivery.id}.`);
  });
  const remove = () => action.run(async () => {
    await api.del(`/v1/endpoints/${enc(id)}`);
    onDeleted();
  });

  // Gone since it was shown (deleted in another tab, say): one notice, not one more from each part that reads it again.
  if (!e || endpoint.error?.status === 404) return html`<section><p><a href=${links.list}>← Endpoints</a></p><${Notice} error=${endpoint.error} />${endpoint.loading && html`<p class="muted">Loading…</p>`}</section>`;
  if (editing) return html`<${Form} api=${api} endpoint=${e} onSaved=${() => { setEditing(false); void endpoint.reload(); }} onCancel=${() => setEditing(false)} />`;
  return html`<section>
    <p><a href=${links.list}>← Endpoints</a></p>
    <h2 class="mono break">${e.url}</h2>
    <${Notice} error=${endpoint.error} />
    <dl class="facts">
      <dt>Status</dt><dd><${StatusBadge} status=${e.enabled ? 'enabled' : 'disabled'} /> ${!e.enabled && e.disabledReason}</dd>
      <dt>Recent success</dt><dd>${!stats.data ? '—' : stats.data.window === 0 ? 'No deliveries yet.' : `${percent(stats.data.successRate)} of the last ${stats.data.window} (${stats.data.failed} failed, ${stats.data.retrying} retrying, ${stats.data.pending} waiting)`}</dd>
      <dt>Channels</dt><dd class="mono">${e.channels.join(', ')}</dd>
      <dt>Event types</dt><dd class="mono">${e.types.length ? e.types.join(', ') : 'all'}</dd>
      <dt>Scheme</dt><dd>${e.scheme}</dd>
      ${e.description && html`<dt>Description</dt><dd>${e.description}</dd>`}
      <dt>Id</dt><dd class="mono">${e.id}</dd>
      <dt>Created</dt><dd><${Time} iso=${e.createdAt} /></dd>
    </dl>
    <div class="row wrap" role="group" aria-label="Endpoint actions">
      <button type="button" onClick=${() => setEditing(true)}>Edit</button>
      <button type="button" onClick=${toggle} disabled=${action.busy}>${e.enabled ? 'Disable' : 'Enable'}</button>
      <button type="button" onClick=${test} disabled=${action.busy || !e.enabled}>Send test event</button>
      <button type="button" onClick=${rotate} disabled=${action.busy}>Rotate secret</button>
      <${ConfirmButton} label="Delete" confirmLabel="Delete endpoint and its deliveries" onConfirm=${remove} disabled=${action.busy} />
    </div>
    <${Notice} error=${action.error} onClose=${action.clear} />
    <${Done}>${done}<//>
    ${secret &&
    html`<${SecretOnce}
      label="New signing secret"
      value=${secret.secret}
      note=${secret.previousSecretsExpireAt ? `Requests are signed with the old secret too until ${new Date(secret.previousSecretsExpireAt).toLocaleString()}.` : undefined}
      onDone=${() => setSecret(undefined)}
    />`}
    <${DeliveryLog} api=${api} endpointId=${id} />
    <${RecoverForm} api=${api} endpointId=${id} />
  </section>`;
}
