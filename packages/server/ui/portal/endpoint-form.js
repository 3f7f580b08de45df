import { html, useState, useMemo } from '../shared/html.js';
import { splitList } from '../shared/api.js';
import { Field } from '../shared/components.js';
import { EndpointForm } from '../shared/endpoints.js';

/**
 * The event types an endpoint takes, picked from what the platform offers (its catalogue, or the types
 * seen on the tenant's channels), plus any other type patterns typed in (`order.*`). Nothing picked:
 * every type. `value` is the comma-separated list the endpoint form keeps; checkboxes and the text
 * field each edit their part of it. Plain checkboxes, so it works by keyboard and with a screen reader.
 */
export function EventTypePicker({ offered, value, onChange }) {
  const [filter, setFilter] = useState('');
  const types = splitList(value);
  const picked = types.filter((t) => offered.includes(t));
  const other = types.filter((t) => !offered.includes(t));
  // The text as typed (a trailing comma, a half-written pattern), not re-derived from `value` on each key.
  const [otherText, setOtherText] = useState(other.join(', '));
  const shown = useMemo(() => offered.filter((t) => t.toLowerCase().includes(filter.trim().toLowerCase())), [offered, filter]);
  const update = (nextPicked, nextOther) => onChange([...nextPicked, ...nextOther].join(', '));
  const toggle = (type, on) => update(on ? [...picked, type] : picked.filter((t) => t !== type), other);
  return html`<fieldset class="type-picker">
    <legend>Event types</legend>
    <p class="hint" aria-live="polite">${types.length === 0 ? 'None picked: this endpoint receives every event type.' : `${types.length} picked.`}</p>
    ${offered.length > 10 &&
    html`<${Field} label="Filter types"><input type="search" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} /><//>`}
    ${offered.length === 0
      ? html`<p class="muted">No event types to pick from yet: type patterns below, or leave it empty for every type.</p>`
      : html`<ul class="type-list">
          ${shown.map(
            (type) => html`<li key=${type}>
              <label class="check mono"
                ><input type="checkbox" name="type" value=${type} checked=${picked.includes(type)} onChange=${(e) => toggle(type, e.currentTarget.checked)} />
                ${type}</label
              >
            </li>`,
          )}
        </ul>`}
    <${Field} label="Other type patterns" hint="Optional, comma-separated; * matches any run of characters (invoice.*).">
      <input
        value=${otherText}
        onInput=${(e) => {
          setOtherText(e.currentTarget.value);
          update(picked, splitList(e.currentTarget.value));
        }}
      />
    <//>
  </fieldset>`;
}

/**
 * The endpoint form of the console (shared/endpoints.js), for one tenant: channels start as the session's
 * allowed ones (the server refuses anything outside them) and event types come from a picker. The tenant
 * is not a field: the server puts the session's in.
 */
export function PortalEndpointForm({ session, eventTypes, ...props }) {
  const offered = eventTypes ?? [];
  const Picker = useMemo(() => (picker) => html`<${EventTypePicker} offered=${offered} ...${picker} />`, [offered.join('\n')]);
  return html`<${EndpointForm}
    ...${props}
    defaultChannels=${session.allowedChannels}
    channelsHint=${`Comma-separated, within ${session.allowedChannels.join(', ') || 'nothing: ask your provider'}.`}
    TypesField=${Picker}
  />`;
}
