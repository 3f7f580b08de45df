import { html, render, useState, useEffect, useRef } from '../shared/html.js';
import { createApi, hashParts } from '../shared/api.js';
import { Notice } from '../shared/components.js';
import { Overview } from './pages/overview.js';
import { ChannelList, ChannelPage } from './pages/channels.js';
import { EndpointsPage } from './pages/endpoints.js';
import { SourceList, SourcePage } from './pages/sources.js';
import { KeysPage } from './pages/keys.js';
import { NodesPage } from './pages/nodes.js';

/** The admin key lives in this tab's sessionStorage only: never in a URL, a cookie or localStorage. */
const KEY_SLOT = 'herald.console.adminKey';
const readKey = () => sessionStorage.getItem(KEY_SLOT) ?? '';
/** Set by the console while signed in: a 401 to the key in use (revoked, or the admin key changed) signs the tab out. */
let keyRefused = () => {};
const api = createApi(readKey, '', (error, key) => keyRefused(error, key));

const PAGES = [
  ['overview', 'Overview'],
  ['channels', 'Channels'],
  ['endpoints', 'Endpoints'],
  ['sources', 'Sources'],
  ['keys', 'Keys and tokens'],
  ['nodes', 'Nodes'],
];

/** `#/endpoints/ep_1` → ['endpoints', 'ep_1']. */
function parseHash() {
  const parts = hashParts();
  return parts[0] ? parts : ['overview'];
}

function useRoute() {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const onChange = () => setRoute(parseHash());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function SignIn({ onSignedIn, refused }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(refused && { code: refused.code, message: `Herald no longer accepts the key this tab signed in with (${refused.message}) Sign in again.` });
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    // Checked against an admin-only route before it is kept, so a wrong key is told at once.
    const trial = createApi(() => key.trim());
    try {
      await trial.get('/v1/stats');
      sessionStorage.setItem(KEY_SLOT, key.trim());
      onSignedIn();
    } catch (err) {
      if (err.status === 401) setError({ code: err.code, message: `Herald refused this key: it is not the admin key. (${err.message})` });
      else if (err.status === 403) setError({ code: err.code, message: `This key is valid but is not an admin key: the console needs the admin key or an API key with the admin scope. (${err.message})` });
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>Herald console</h1>
    <form class="card" onSubmit=${submit} aria-label="Sign in">
      <p>Sign in with the admin key (printed at Herald's first start, or <code>HERALD_ADMIN_KEY</code>). It is kept in this tab only.</p>
      <${Notice} error=${error} />
      <label class="field"><span class="label">Admin key</span>
        <input type="password" autocomplete="current-password" required value=${key} onInput=${(e) => setKey(e.currentTarget.value)} />
      </label>
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
    </form>
  </main>`;
}

function Page({ route }) {
  const [page, id] = route;
  switch (page) {
    case 'overview':
      return html`<${Overview} api=${api} />`;
    case 'channels':
      return id ? html`<${ChannelPage} api=${api} channel=${id} key=${id} />` : html`<${ChannelList} api=${api} />`;
    case 'endpoints':
      return html`<${EndpointsPage} api=${api} id=${id} />`;
    case 'sources':
      return id ? html`<${SourcePage} api=${api} name=${id} key=${id} />` : html`<${SourceList} api=${api} />`;
    case 'keys':
      return html`<${KeysPage} api=${api} />`;
    case 'nodes':
      return html`<${NodesPage} api=${api} />`;
    default:
      return html`<${Notice} error=${{ message: `No page ${page}.` }} />`;
  }
}

/** Pages are routed by the fragment, so the skip link moves focus itself: following `#main` would open a page "main". */
function skipToContent(e) {
  e.preventDefault();
  document.getElementById('main')?.focus();
}

function Console() {
  const [signedIn, setSignedIn] = useState(() => readKey() !== '');
  const [refused, setRefused] = useState(undefined);
  const route = useRoute();
  keyRefused = (error, key) => {
    // A late answer to a key signed out of already must not sign the next one out.
    if (key !== readKey()) return;
    sessionStorage.removeItem(KEY_SLOT);
    setRefused(error);
    setSignedIn(false);
  };
  const first = useRef(true);
  useEffect(() => {
    const label = PAGES.find(([p]) => p === route[0])?.[1] ?? 'Herald';
    document.title = `${label} · Herald console`;
    // After a move to another page, keyboard and screen-reader users start at its content, not at the link.
    if (!first.current) document.getElementById('main')?.focus({ preventScroll: true });
    first.current = false;
  }, [route.join('/')]);
  if (!signedIn) return html`<${SignIn} refused=${refused} onSignedIn=${() => { setRefused(undefined); setSignedIn(true); }} />`;
  const signOut = () => {
    sessionStorage.removeItem(KEY_SLOT);
    setSignedIn(false);
  };
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${skipToContent}>Skip to content</a>
    <header class="top">
      <span class="brand">Herald</span>
      <nav aria-label="Console">
        <ul>
          ${PAGES.map(([p, label]) => html`<li><a href=${`#/${p}`} aria-current=${route[0] === p ? 'page' : undefined}>${label}</a></li>`)}
        </ul>
      </nav>
      <button type="button" class="link" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main" tabindex="-1"><${Page} route=${route} /></main>
  </div>`;
}

render(html`<${Console} />`, document.getElementById('app'));
