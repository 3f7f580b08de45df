import { html, render, useState, useEffect } from '../shared/html.js';
import { createContext } from '../vendor/preact.mjs';
import { useContext } from '../vendor/preact-hooks.mjs';
import { createApi, decodePart, enc, hashParts } from '../shared/api.js';
import { Notice, Time, useLoad } from '../shared/components.js';
import { EndpointDetail, EndpointList } from '../shared/endpoints.js';
import { PortalEndpointForm } from './endpoint-form.js';

/**
 * The endpoint portal: a platform's customer manages its own webhook endpoints here, often inside the
 * platform's page (an iframe). The session token arrives in the URL fragment (`#token=…`, never sent to
 * a server or in a Referer); it is moved to this tab's sessionStorage and taken out of the address bar
 * at once, so it is not left in history, bookmarks or a screenshot. Every call sends it as a bearer
 * token, and the server confines it to the tenant: this page shows what the API lets it see.
 */
const TOKEN_SLOT = 'herald.portal.token';
let memoryToken = '';

/** sessionStorage, or memory where it is blocked (some browsers deny storage to third-party frames). */
const slot = {
  get() {
    try {
      return sessionStorage.getItem(TOKEN_SLOT) ?? memoryToken;
    } catch {
      return memoryToken;
    }
  },
  set(value) {
    memoryToken = value;
    try {
      sessionStorage.setItem(TOKEN_SLOT, value);
    } catch {
      // Memory only: a reload then needs the link again.
    }
  },
};

function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return;
  slot.set(decodePart(match[1]));
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
}
takeTokenFromFragment();

/** Set by the page: a 401 to the session's token (expired, or its key revoked) ends the page, not just one request. */
let sessionRefused = () => {};
const api = createApi(() => slot.get(), '', (error, token) => sessionRefused(error, token));
const links = { list: '#/', detail: (id) => `#/endpoints/${enc(id)}` };

/** `#/`, `#/new`, `#/endpoints/{id}`. */
function parseRoute() {
  const [page, id] = hashParts();
  if (page === 'new') return { page: 'new' };
  if (page === 'endpoints' && id) return { page: 'endpoint', id };
  return { page: 'list' };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute);
  useEffect(() => {
    const onChange = () => {
      // A new link opened in the same tab (a fresh session) replaces the stored token.
      if (location.hash.startsWith('#token=')) {
        takeTokenFromFragment();
        location.reload();
        return;
      }
      setRoute(parseRoute());
    };
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

/** `portal.branding.name` when the platform set none: what the page is, not whose. */
const GENERIC_NAME = 'Webhooks';
/** The platform's name, when it set one: where the user should go back to. */
const platformName = (branding) => (branding?.name && branding.name !== GENERIC_NAME ? branding.name : undefined);

/** The platform's name, logo and accent colour (validated by the server: a colour is `#rgb`/`#rrggbb`). */
function useBranding(branding) {
  useEffect(() => {
    if (!branding) return;
    const name = platformName(branding);
    document.title = name ? `${name} · ${GENERIC_NAME}` : GENERIC_NAME;
    document.documentElement.style.setProperty('--accent', branding.accentColor);
  }, [branding]);
}

function Header({ branding, tenant }) {
  return html`<header class="portal-top">
    ${branding?.logoUrl && html`<img class="portal-logo" src=${branding.logoUrl} alt="" />`}
    <div class="portal-title">
      <span class="portal-name">${branding?.name ?? GENERIC_NAME}</span>
      <span class="muted">Webhook endpoints${tenant ? html` · <span class="mono">${tenant}</span>` : ''}</span>
    </div>
  </header>`;
}

function explain(error, branding) {
  if (error.status === 401) {
    const who = platformName(branding) ?? 'the app that gave you this link';
    return { code: error.code, message: `This portal link has expired or is not valid (${error.message}) Open the portal again from ${who}.` };
  }
  return error;
}

/** The session and the offered event types, for the endpoint form wherever it is shown. */
const SessionContext = createContext({ session: undefined, eventTypes: undefined });

/** One component for create and edit, of a stable identity, so a re-render never resets a half-filled form. */
function Form(props) {
  const { session, eventTypes } = useContext(SessionContext);
  return html`<${PortalEndpointForm} ...${props} api=${api} session=${session} eventTypes=${eventTypes} />`;
}

function Portal() {
  const route = useRoute();
  const [refused, setRefused] = useState(undefined);
  sessionRefused = (error, token) => token === slot.get() && setRefused(error);
  const session = useLoad(() => api.get('/v1/portal/session'), []);
  const types = useLoad(() => api.get('/v1/portal/event-types'), []);
  const s = session.data;
  useBranding(s?.branding);

  if (!slot.get()) {
    return html`<${Header} />
      <main class="portal"><${Notice} error=${{ message: 'No portal session: open this page from the link your provider gives you.' }} /></main>`;
  }
  if (refused) {
    return html`<${Header} branding=${s?.branding} tenant=${s?.tenant} />
      <main class="portal"><${Notice} error=${explain(refused, s?.branding)} /></main>`;
  }
  if (!s) {
    return html`<${Header} />
      <main class="portal">${session.error ? html`<${Notice} error=${explain(session.error)} />` : html`<p class="muted">Loading…</p>`}</main>`;
  }
  let page;
  if (route.page === 'new') {
    page = html`<${Form} onSaved=${(e) => (location.hash = links.detail(e.id))} onCancel=${() => (location.hash = links.list)} />`;
  } else if (route.page === 'endpoint') {
    page = html`<${EndpointDetail} api=${api} id=${route.id} links=${links} Form=${Form} onDeleted=${() => (location.hash = links.list)} />`;
  } else {
    page = html`<${EndpointList} api=${api} links=${links} onNew=${() => (location.hash = '#/new')} />`;
  }
  return html`<${SessionContext.Provider} value=${{ session: s, eventTypes: types.data?.eventTypes }}>
    <${Header} branding=${s.branding} tenant=${s.tenant} />
    <main class="portal" id="portal-main">
      ${types.error && html`<${Notice} error=${explain(types.error, s.branding)} />`}
      ${page}
      <p class="muted session-end">Session ends <${Time} iso=${s.expiresAt} />.</p>
    </main>
  <//>`;
}

render(html`<${Portal} />`, document.getElementById('app'));
