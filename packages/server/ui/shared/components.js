import { html, useState, useEffect, useRef, useCallback, cloneElement, toChildArray } from './html.js';

/** An API error (or any error) as a message a person can act on; never a blank page. */
export function Notice({ error, onClose }) {
  if (!error) return null;
  const code = error.code && error.code !== 'http_error' ? html`<code>${error.code}</code> ` : null;
  return html`<div class="notice notice-error" role="alert">
    <p>${code}${error.message || String(error)}</p>
    ${onClose && html`<button type="button" class="link" onClick=${onClose}>Dismiss</button>`}
  </div>`;
}

/** A short confirmation that something worked (announced to screen readers, not an alert). */
export function Done({ children }) {
  if (!children) return null;
  return html`<p class="notice notice-ok" role="status">${children}</p>`;
}

/**
 * Loads with `load()` now, again whenever `deps` change, and every `everyMs` while the tab is visible
 * (0: once). Keeps the last good data while a refresh fails, with the error beside it.
 */
export function useLoad(load, deps = [], everyMs = 0) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true });
  const latest = useRef(load);
  latest.current = load;
  const generation = useRef(0);
  /** The last read was a 404: what is gone stays gone, so the timer stops reading it (a reload still tries). */
  const gone = useRef(false);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const data = await latest.current();
      if (mine !== generation.current) return;
      gone.current = false;
      setState({ data, error: undefined, loading: false });
    } catch (error) {
      if (mine !== generation.current) return;
      // Herald's own 404 (a proxy's answers `http_error`, and may pass).
      gone.current = error?.code === 'not_found';
      setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, []);
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    gone.current = false;
    void reload();
    if (!everyMs) return undefined;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible' && !gone.current) void reload();
    }, everyMs);
    return () => clearInterval(timer);
    // `deps` are the caller's: a change (another id, another filter) loads afresh.
  }, deps);
  return { ...state, reload };
}

/** Runs an action (a button's click, a form's submit) with a busy flag and its error kept for a Notice. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(undefined);
  const run = useCallback(async (action) => {
    setBusy(true);
    setError(undefined);
    try {
      return await action();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(undefined) };
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on another host than localhost is not a secure context: fall back to a selection.
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

export function CopyButton({ text, label = 'Copy' }) {
  const [copied, setCopied] = useState(false);
  const [failed, setFailed] = useState(false);
  const copy = async () => {
    try {
      await copyText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } catch {
      setFailed(true);
    }
  };
  return html`<button type="button" onClick=${copy}>${copied ? 'Copied' : failed ? 'Copy failed: select and copy' : label}</button>`;
}

/** A secret shown once (a new key, an endpoint's secret, a token): read-only field, copy button, and a warning. */
export function SecretOnce({ label, value, note, onDone }) {
  const input = useRef(null);
  useEffect(() => input.current && input.current.focus(), []);
  return html`<section class="secret" aria-label=${label}>
    <h3>${label}</h3>
    <p class="warning">Shown once: copy it now, it will not be shown again.</p>
    <div class="row">
      <input ref=${input} class="mono grow" readonly value=${value} aria-label=${label} onFocus=${(e) => e.currentTarget.select()} />
      <${CopyButton} text=${value} />
    </div>
    ${note && html`<p class="muted">${note}</p>`}
    ${onDone && html`<button type="button" onClick=${onDone}>I have copied it</button>`}
  </section>`;
}

let fieldCount = 0;

/**
 * A labelled form field: the label wraps the control, so clicking it focuses the control and the label
 * is its accessible name; the hint stays outside the label and describes the control (aria-describedby).
 */
export function Field({ label, hint, children }) {
  const [hintId] = useState(() => `hint-${++fieldCount}`);
  const controls = hint ? toChildArray(children).map((c, i) => (i === 0 && typeof c === 'object' ? cloneElement(c, { 'aria-describedby': hintId }) : c)) : children;
  return html`<div class="field">
    <label><span class="label">${label}</span>${controls}</label>
    ${hint && html`<span class="hint" id=${hintId}>${hint}</span>`}
  </div>`;
}

/** A time as the viewer's local date and time, with the ISO value for precision. */
export function Time({ iso }) {
  if (!iso) return html`<span class="muted">—</span>`;
  const date = new Date(iso);
  return html`<time datetime=${iso} title=${iso}>${date.toLocaleString()}</time>`;
}

export function Badge({ kind = 'neutral', children }) {
  return html`<span class=${`badge badge-${kind}`}>${children}</span>`;
}

const STATUS_KIND = { succeeded: 'ok', failed: 'bad', pending: 'warn', enabled: 'ok', disabled: 'bad', accepted: 'ok', duplicate: 'neutral', refused: 'bad' };
export function StatusBadge({ status }) {
  return html`<${Badge} kind=${STATUS_KIND[status] ?? 'neutral'}>${status}<//>`;
}

/** A table that scrolls sideways on its own in a narrow window, instead of widening the page. */
export function Table({ caption, head, children, empty }) {
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption}>
    <table>
      <caption class="sr-only">${caption}</caption>
      <thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
      <tbody>${children}</tbody>
    </table>
    ${empty && html`<p class="muted empty">${empty}</p>`}
  </div>`;
}

/** A destructive action in two steps, without a browser dialog: the first click asks, the second does. */
export function ConfirmButton({ label, confirmLabel, onConfirm, disabled }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return html`<button type="button" class="danger" disabled=${disabled} onClick=${() => setAsking(true)}>${label}</button>`;
  return html`<span class="confirm" role="group" aria-label=${confirmLabel}>
    <button type="button" class="danger" onClick=${() => { setAsking(false); onConfirm(); }}>${confirmLabel}</button>
    <button type="button" onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

export function percent(rate) {
  return rate === null || rate === undefined || Number.isNaN(rate) ? '—' : `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)}%`;
}

export function seconds(s) {
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

/** JSON for a <pre>, cut at `max` characters so one huge event cannot flood the page. */
export function preview(value, max = 600) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  if (text === undefined) return '';
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}
