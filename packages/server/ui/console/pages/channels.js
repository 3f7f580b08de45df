import { html, useEffect, useRef, useState } from '../../shared/html.js';
import { enc } from '../../shared/api.js';
import { Done, Field, Notice, Table, Time, preview, seconds, useAction, useLoad } from '../../shared/components.js';

const PAGE = 20;

export function ChannelList({ api }) {
  const [prefix, setPrefix] = useState('');
  const [after, setAfter] = useState([]);
  const cursor = after.at(-1);
  const list = useLoad(() => api.get(`/v1/channels?limit=50&prefix=${enc(prefix)}${cursor ? `&after=${enc(cursor)}` : ''}`), [prefix, cursor], 5000);
  return html`<section>
    <h2>Channels</h2>
    <${Field} label="Name starts with">
      <input type="search" value=${prefix} onInput=${(e) => { setPrefix(e.currentTarget.value); setAfter([]); }} />
    <//>
    <${Notice} error=${list.error} />
    ${list.data &&
    html`<${Table} caption="Channels" head=${['Channel', 'Head seq', 'Oldest kept', 'Epoch', 'Retention']} empty=${list.data.channels.length === 0 && 'No channel has had an event yet.'}>
      ${list.data.channels.map(
        (c) => html`<tr key=${c.name}>
          <td><a class="mono" href=${`#/channels/${enc(c.name)}`}>${c.name}</a></td>
          <td>${c.head}</td>
          <td>${c.oldest > c.head ? '—' : c.oldest}</td>
          <td class="mono">${c.epoch}</td>
          <td>${c.retention.maxEvents.toLocaleString()} events or ${seconds(c.retention.maxAge)}</td>
        </tr>`,
      )}
    <//>`}
    <div class="row">
      <button type="button" disabled=${after.length === 0} onClick=${() => setAfter(after.slice(0, -1))}>Previous page</button>
      <button type="button" disabled=${!list.data || !list.data.next} onClick=${() => setAfter([...after, list.data.next])}>Next page</button>
    </div>
  </section>`;
}

function EventTable({ caption, events, empty }) {
  return html`<${Table} caption=${caption} head=${['Seq', 'Type', 'Time', 'Id', 'Data']} empty=${events.length === 0 && empty}>
    ${events.map(
      (e) => html`<tr key=${e.id} class="event">
        <td>${e.seq}</td>
        <td class="mono">${e.type}</td>
        <td><${Time} iso=${e.time} /></td>
        <td class="mono">${e.id}</td>
        <td><pre class="snippet">${preview(e.data)}</pre></td>
      </tr>`,
    )}
  <//>`;
}

/** History a page at a time, newest page first: a page holds the events (end - PAGE, end], pages aligned on the head. */
function History({ api, channel, refreshKey }) {
  const [end, setEnd] = useState(undefined);
  const page = useLoad(async () => {
    let last = end;
    if (last === undefined) last = (await api.get(`/v1/channels/${enc(channel)}/events?limit=1&after=0`)).head;
    const after = Math.max(0, last - PAGE);
    const result = await api.get(`/v1/channels/${enc(channel)}/events?limit=${Math.max(1, last - after)}&after=${after}`);
    // Past trimmed history the log answers from its oldest event on, which may run beyond this page.
    return { ...result, events: result.events.filter((e) => e.seq <= last), after, end: last };
  }, [channel, end, refreshKey]);
  const d = page.data;
  return html`<section aria-labelledby="history">
    <div class="row spread">
      <h3 id="history">History</h3>
      ${d && html`<span class="muted">head ${d.head} · epoch <span class="mono">${d.epoch}</span></span>`}
    </div>
    <${Notice} error=${page.error} />
    ${d && d.truncated && html`<p class="notice">Older events were trimmed by retention.</p>`}
    ${d && html`<${EventTable} caption="History" events=${[...d.events].reverse()} empty="No events in this range." />`}
    <div class="row" role="group" aria-label="History pages">
      <button type="button" disabled=${!d || d.after <= 0 || d.truncated} onClick=${() => setEnd(d.after)}>Older</button>
      <button type="button" disabled=${!d || d.end >= d.head} onClick=${() => setEnd(Math.min(d.head, d.end + PAGE))}>Newer</button>
      <button type="button" disabled=${!d} onClick=${() => { setEnd(undefined); void page.reload(); }}>Latest</button>
    </div>
  </section>`;
}

/**
 * Follows the channel live over Herald's own WebSocket. The admin key goes in the first frame
 * (`{"op":"auth"}`), never in the URL, where logs and history would keep it.
 */
function LiveTail({ api, channel }) {
  const [on, setOn] = useState(false);
  const [state, setState] = useState('stopped');
  const [events, setEvents] = useState([]);
  const [error, setError] = useState(undefined);
  const socket = useRef(null);
  useEffect(() => {
    if (!on) return undefined;
    setError(undefined);
    setState('connecting');
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`);
    socket.current = ws;
    ws.onopen = () => ws.send(JSON.stringify({ op: 'auth', token: api.credential() }));
    ws.onmessage = (m) => {
      const frame = JSON.parse(m.data);
      if (frame.op === 'authenticated') ws.send(JSON.stringify({ op: 'subscribe', channel, ref: 'tail' }));
      else if (frame.op === 'subscribed') setState('live');
      else if (frame.op === 'event') setEvents((list) => [frame, ...list].slice(0, 200));
      else if (frame.op === 'gap') setError({ code: 'gap', message: `Events ${frame.after + 1} to ${frame.oldest - 1} were trimmed before they could be shown.` });
      else if (frame.op === 'error') setError(frame);
    };
    ws.onclose = (e) => {
      setState('stopped');
      if (e.code !== 1000 && e.code !== 1005) setError({ code: `close ${e.code}`, message: e.reason || 'The connection to Herald closed.' });
      setOn(false);
    };
    return () => ws.close(1000);
  }, [on, channel]);
  return html`<section aria-labelledby="tail">
    <div class="row spread">
      <h3 id="tail">Live tail</h3>
      <span class="row">
        <span class="muted" role="status" data-tail-state=${state}>${state === 'live' ? 'Live: new events appear here' : state === 'connecting' ? 'Connecting…' : 'Stopped'}</span>
        <button type="button" onClick=${() => setOn(!on)}>${on ? 'Stop tail' : 'Start tail'}</button>
      </span>
    </div>
    <${Notice} error=${error} />
    ${(on || events.length > 0) && html`<${EventTable} caption="Live events" events=${events} empty="Nothing yet." />`}
  </section>`;
}

function PublishForm({ api, channel, onPublished }) {
  const [type, setType] = useState('test');
  const [data, setData] = useState('{\n  "hello": "world"\n}');
  const [done, setDone] = useState('');
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    setDone('');
    void action.run(async () => {
      let parsed;
      try {
        parsed = JSON.parse(data);
      } catch (err) {
        throw Object.assign(new Error(`The data is not valid JSON: ${err.message}`), { code: 'invalid_json' });
      }
      const event = await api.post(`/v1/channels/${enc(channel)}/events`, { type, data: parsed });
      setDone(`Published seq ${event.seq} (${event.id}).`);
      onPublished();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Publish a test event">
    <h3>Publish a test event</h3>
    <${Notice} error=${action.error} onClose=${action.clear} />
    <${Done}>${done}<//>
    <${Field} label="Type"><input required value=${type} onInput=${(e) => setType(e.currentTarget.value)} /><//>
    <${Field} label="Data (JSON)"><textarea class="mono" rows="5" value=${data} onInput=${(e) => setData(e.currentTarget.value)}></textarea><//>
    <button type="submit" class="primary" disabled=${action.busy}>Publish</button>
  </form>`;
}

export function ChannelPage({ api, channel }) {
  const [published, setPublished] = useState(0);
  return html`<section>
    <p><a href="#/channels">← Channels</a></p>
    <h2 class="mono break">${channel}</h2>
    <${LiveTail} api=${api} channel=${channel} />
    <${PublishForm} api=${api} channel=${channel} onPublished=${() => setPublished(published + 1)} />
    <${History} api=${api} channel=${channel} refreshKey=${published} />
  </section>`;
}
