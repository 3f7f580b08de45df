import { html, useState } from '../../shared/html.js';
import { enc } from '../../shared/api.js';
import { EndpointDetail, EndpointForm, EndpointList } from '../../shared/endpoints.js';

const links = { list: '#/endpoints', detail: (id) => `#/endpoints/${enc(id)}` };

export function EndpointsPage({ api, id }) {
  const [creating, setCreating] = useState(false);
  if (id) return html`<${EndpointDetail} api=${api} id=${id} links=${links} onDeleted=${() => (location.hash = links.list)} />`;
  if (creating) {
    return html`<${EndpointForm}
      api=${api}
      onSaved=${(e) => {
        setCreating(false);
        location.hash = links.detail(e.id);
      }}
      onCancel=${() => setCreating(false)}
    />`;
  }
  return html`<${EndpointList} api=${api} links=${links} onNew=${() => setCreating(true)} />`;
}
