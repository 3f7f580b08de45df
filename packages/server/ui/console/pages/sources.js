import { html, useState } from '../../shared/html.js';
import { enc } from '../../shared/api.js';
import { ConfirmButton, CopyButton, Done, Field, Notice, StatusBadge, Table, Time, useAction, useLoad } from '../../shared/components.js';

const PROVIDERS = ['stripe', 'github', 'shopify', 'slack', 'standard'];
const SECRET_HINTS = {
  stripe: 'The endpoint secret Stripe shows (whsec_…).',
  github: 'The secret you type into the GitHub webhook form (16 characters or more).',
  shopify: "Your app's client secret (32 characters or more).",
  slack: "Your app's signing secret.",
  standard: 'The sender\'s whsec_… key (Standard Webhooks, Svix).',
};

const ingestUrl = (name) => `${location.origin}/v1/ingest/${enc(name)}`;

function SourceForm({ api, onCreated, onCancel }) {
  const [name, setName] = useState('');
  const [provider, setProvider] = useState('stripe');
  const [channel, setChannel] = useState('');
  const [secret, setSecret] = useState('');
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    void action.run(async () => {
      const body = { name: name.trim(), provider, secrets: [secret.trim()], ...(channel.trim() ? { channel: channel.trim() } : {}) };
      onCreated(await api.post('/v1/sources', body));
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="New source">
    <h2>New source</h2>
    <${Notice} error=${action.error} onClose=${action.clear} />
    <${Field} label="Name" hint="Letters, digits, _ . - (up to 64). Part of the ingest URL.">
      <input required pattern="[A-Za-z0-9_.\\-]{1,64}" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
    <//>
    <${Field} label="Provider">
      <select value=${provider} onChange=${(e) => setProvider(e.currentTarget.value)}>${PROVIDERS.map((p) => html`<option value=${p}>${p}</option>`)}</select>
    <//>
    <${Field} label="Channel" hint="Where its events are appended; the source's name when empty.">
      <input value=${channel} onInput=${(e) => setChannel(e.currentTarget.value)} />
    <//>
    <${Field} label="Signing secret" hint=${SECRET_HINTS[provider]}>
      <input type="password" autocomplete="off" required value=${secret} onInput=${(e) => setSecret(e.currentTarget.value)} />
    <//>
    <div class="row">
      <button type="submit" class="primary" disabled=${action.busy}>Create source</button>
      <button type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

export function SourceList({ api }) {
  const [creating, setCreating] = useState(false);
  const list = useLoad(() => api.get('/v1/sources'), [], 5000);
  if (creating) return html`<${SourceForm} api=${api} onCreated=${(s) => (location.hash = `#/sources/${enc(s.name)}`)} onCancel=${() => setCreating(false)} />`;
  return html`<section>
    <div class="row spread"><h2>Sources</h2><button type="button" class="primary" onClick=${() => setCreating(true)}>New source</button></div>
    <p class="muted">Inbound webhooks: each source verifies one provider's signatures and appends to its channel.</p>
    <${Notice} error=${list.error} />
    ${list.data &&
    html`<${Table} caption="Sources" head=${['Source', 'Provider', 'Channel', 'Accepted', 'Duplicates', 'Refused', 'Ingest URL']} empty=${list.data.sources.length === 0 && 'No sources yet.'}>
      ${list.data.sources.map(
        (s) => html`<tr key=${s.name}>
          <td><a href=${`#/sources/${enc(s.name)}`}>${s.name}</a></td>
          <td>${s.provider}</td>
          <td class="mono">${s.channel}</td>
          <td>${s.stats.accepted}</td>
          <td>${s.stats.duplicates}</td>
          <td>${s.stats.refused}</td>
          <td class="mono">${ingestUrl(s.name)}</td>
        </tr>`,
      )}
    <//>`}
  </section>`;
}

function RotateForm({ api, name, onRotated }) {
  const [secret, setSecret] = useState('');
  const [done, setDone] = useState('');
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    void action.run(async () => {
      await api.post(`/v1/sources/${enc(name)}/rotate`, { secret: secret.trim() });
      setSecret('');
      setDone('New secret in force; the previous one keeps verifying for a day.');
      onRotated();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Rotate the signing secret">
    <h3>Rotate the signing secret</h3>
    <${Notice} error=${action.error} onClose=${action.clear} />
    <${Done}>${done}<//>
    <${Field} label="New signing secret"><input type="password" autocomplete="off" required value=${secret} onInput=${(e) => setSecret(e.currentTarget.value)} /><//>
    <button type="submit" disabled=${action.busy}>Rotate</button>
  </form>`;
}

export function SourcePage({ api, name }) {
  const source = useLoad(() => api.get(`/v1/sources/${enc(name)}`), [name], 5000);
  const ingests = useLoad(() => api.get(`/v1/sources/${enc(name)}/ingests`), [name], 2000);
  const action = useAction();
  const s = source.data;
  const remove = () => action.run(async () => {
    await api.del(`/v1/sources/${enc(name)}`);
    location.hash = '#/sources';
  });
  return html`<section>
    <p><a href="#/sources">← Sources</a></p>
    <h2>${name}</h2>
    <${Notice} error=${source.error || action.error} />
    ${s &&
    html`<dl class="facts">
      <dt>Ingest URL</dt>
      <dd><span class="row"><input class="mono grow" readonly value=${ingestUrl(name)} aria-label="Ingest URL" /><${CopyButton} text=${ingestUrl(name)} /></span>
        <span class="muted">Paste it into ${s.provider}'s webhook settings.</span></dd>
      <dt>Provider</dt><dd>${s.provider}</dd>
      <dt>Channel</dt><dd><a class="mono" href=${`#/channels/${enc(s.channel)}`}>${s.channel}</a></dd>
      <dt>Secrets</dt><dd>${s.secrets.map((x) => html`<div class="mono">${x.fingerprint}${x.expiresAt && html` <span class="muted">until <${Time} iso=${x.expiresAt} /></span>`}</div>`)}</dd>
      <dt>Counts</dt><dd>${s.stats.accepted} accepted · ${s.stats.duplicates} duplicates · ${s.stats.refused} refused (since start)</dd>
      <dt>Created</dt><dd><${Time} iso=${s.createdAt} /></dd>
    </dl>`}
    <section aria-labelledby="ingests">
      <h3 id="ingests">Recent requests</h3>
      <${Notice} error=${ingests.error} />
      ${ingests.data &&
      html`<${Table} caption="Recent requests" head=${['Time', 'Outcome', 'Status', 'Reason', 'Event', 'Bytes']} empty=${ingests.data.ingests.length === 0 && 'No request since Herald started.'}>
        ${ingests.data.ingests.map(
          (r) => html`<tr class="ingest">
            <td><${Time} iso=${r.at} /></td>
            <td><${StatusBadge} status=${r.outcome} /></td>
            <td>${r.status}</td>
            <td>${r.reason && html`<code>${r.reason}</code>`} ${r.message ?? ''}</td>
            <td class="mono">${r.event ? `#${r.event.seq} ${r.event.id}` : ''}</td>
            <td>${r.bytes}</td>
          </tr>`,
        )}
      <//>`}
    </section>
    ${s && html`<${RotateForm} api=${api} name=${name} onRotated=${source.reload} />`}
    <${ConfirmButton} label="Delete source" confirmLabel="Delete this source" onConfirm=${remove} />
  </section>`;
}
