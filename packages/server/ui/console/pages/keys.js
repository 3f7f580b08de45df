import { html, useState } from '../../shared/html.js';
import { enc, splitList } from '../../shared/api.js';
import { ConfirmButton, Field, Notice, SecretOnce, Table, Time, useAction, useLoad } from '../../shared/components.js';

const SCOPES = ['publish', 'subscribe', 'admin'];

function KeyForm({ api, onCreated }) {
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState(['subscribe']);
  const [channels, setChannels] = useState('');
  const [created, setCreated] = useState(undefined);
  const action = useAction();
  const toggle = (scope) => setScopes(scopes.includes(scope) ? scopes.filter((s) => s !== scope) : [...scopes, scope]);
  const submit = (e) => {
    e.preventDefault();
    void action.run(async () => {
      setCreated(await api.post('/v1/keys', { name: name.trim(), scopes, channels: splitList(channels) }));
      setName('');
      setChannels('');
      onCreated();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="New API key">
    <h3>New API key</h3>
    <${Notice} error=${action.error} onClose=${action.clear} />
    ${created && html`<${SecretOnce} label=${`API key ${created.name}`} value=${created.key} onDone=${() => setCreated(undefined)} />`}
    <${Field} label="Name"><input required value=${name} onInput=${(e) => setName(e.currentTarget.value)} /><//>
    <fieldset>
      <legend>Scopes</legend>
      ${SCOPES.map((s) => html`<label class="check"><input type="checkbox" checked=${scopes.includes(s)} onChange=${() => toggle(s)} /> ${s}</label>`)}
    </fieldset>
    <${Field} label="Channels" hint="Names or patterns, comma-separated (orders, user:*)."><input required value=${channels} onInput=${(e) => setChannels(e.currentTarget.value)} /><//>
    <button type="submit" class="primary" disabled=${action.busy || scopes.length === 0}>Create key</button>
  </form>`;
}

function TokenForm({ api }) {
  const [sub, setSub] = useState('');
  const [channels, setChannels] = useState('');
  const [publish, setPublish] = useState('');
  const [ttl, setTtl] = useState('3600');
  const [minted, setMinted] = useState(undefined);
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    void action.run(async () => {
      const publishList = splitList(publish);
      setMinted(await api.post('/v1/tokens', { sub: sub.trim(), channels: splitList(channels), ...(publishList.length ? { publish: publishList } : {}), ttl: Number(ttl) }));
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Mint a subscriber token">
    <h3>Mint a subscriber token</h3>
    <p class="muted">A JWT for one browser or device: it reads (and optionally publishes to) the channels you name, until it expires.</p>
    <${Notice} error=${action.error} onClose=${action.clear} />
    ${minted && html`<${SecretOnce} label="Subscriber token" value=${minted.token} note=${`Expires ${new Date(minted.expiresAt).toLocaleString()}.`} onDone=${() => setMinted(undefined)} />`}
    <${Field} label="Subject (sub)" hint="Who the token is for, e.g. a user id."><input required value=${sub} onInput=${(e) => setSub(e.currentTarget.value)} /><//>
    <${Field} label="Channels to read"><input required value=${channels} onInput=${(e) => setChannels(e.currentTarget.value)} /><//>
    <${Field} label="Channels to publish to (optional)"><input value=${publish} onInput=${(e) => setPublish(e.currentTarget.value)} /><//>
    <${Field} label="Lifetime (seconds)"><input type="number" min="1" max="2592000" required value=${ttl} onInput=${(e) => setTtl(e.currentTarget.value)} /><//>
    <button type="submit" class="primary" disabled=${action.busy}>Mint token</button>
  </form>`;
}

export function KeysPage({ api }) {
  const keys = useLoad(() => api.get('/v1/keys'), [], 10000);
  const action = useAction();
  const revoke = (id) => action.run(async () => {
    await api.del(`/v1/keys/${enc(id)}`);
    await keys.reload();
  });
  return html`<section>
    <h2>Keys and tokens</h2>
    <${Notice} error=${keys.error || action.error} />
    ${keys.data &&
    html`<${Table} caption="API keys" head=${['Name', 'Prefix', 'Scopes', 'Channels', 'Created', '']} empty=${keys.data.keys.length === 0 && 'No API keys yet.'}>
      ${keys.data.keys.map(
        (k) => html`<tr key=${k.id} class=${k.revokedAt ? 'revoked' : ''}>
          <td>${k.name}<div class="muted mono">${k.id}</div></td>
          <td class="mono">${k.prefix}…</td>
          <td>${k.scopes.join(', ')}</td>
          <td class="mono">${k.channels.join(', ')}</td>
          <td><${Time} iso=${k.createdAt} /></td>
          <td>${k.revokedAt ? html`revoked <${Time} iso=${k.revokedAt} />` : html`<${ConfirmButton} label="Revoke" confirmLabel=${`Revoke ${k.name}`} onConfirm=${() => revoke(k.id)} />`}</td>
        </tr>`,
      )}
    <//>`}
    <div class="columns">
      <${KeyForm} api=${api} onCreated=${keys.reload} />
      <${TokenForm} api=${api} />
    </div>
  </section>`;
}
