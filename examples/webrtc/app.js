// The WebRTC signalling example: presence to find the other browser, direct messages (`send`) for the offer,
// the answer and ICE candidates, then an RTCDataChannel between the two browsers. See README.md.
/* global window, document, location, URLSearchParams, RTCPeerConnection */
import { Herald } from '/examples/sdk/client/index.js';

const params = new URLSearchParams(location.search);
const room = /^[A-Za-z0-9_-]{1,64}$/.test(params.get('room') ?? '') ? params.get('room') : 'lobby';
const name = (params.get('name') ?? '').slice(0, 40) || `guest-${Math.random().toString(36).slice(2, 6)}`;

/** What the page is doing, on `window.rtc` for the browser test and for a look from the devtools console. */
const state = { room, name, status: 'connecting', open: false, received: [], send: undefined, pc: undefined };
window.rtc = state;

const $ = (id) => document.getElementById(id);
const log = (text) => $('log').append(Object.assign(document.createElement('li'), { textContent: text }));
const setStatus = (status) => {
  state.status = status;
  $('status').textContent = status;
};
$('room').textContent = room;

// 1. A demo token for this room (examples mode only): read and publish on examples:webrtc:<room>, for an hour.
const minted = await fetch('/examples/webrtc/token', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ room }),
});
if (!minted.ok) {
  setStatus(`no demo token (HTTP ${minted.status}): is examples.enabled on?`);
  throw new Error('no demo token');
}
const { token, channel } = await minted.json();

// 2. Join the room's presence set over a WebSocket (presence and direct messages need one).
const herald = new Herald({ url: location.origin, token, transports: ['websocket'] });
herald.on('state', (s) => s !== 'connected' && setStatus(s));
const presence = herald.presence(channel, { info: { name } });

/** One peer: this example pairs two browsers. */
let pc;
let peer;
let candidates = [];

const renderPeers = () => {
  const others = presence.members.filter((m) => m.client !== presence.client);
  $('peers').textContent = others.length ? others.map((m) => m.info?.name ?? m.sub).join(', ') : 'nobody yet';
};

presence.on('members', (members) => {
  $('me').textContent = `${name} (${presence.client})`;
  if (!pc) setStatus('waiting for a peer');
  renderPeers();
  members.forEach(consider);
});
presence.on('join', (member) => {
  renderPeers();
  consider(member);
});
presence.on('leave', (member) => {
  renderPeers();
  if (member.client === peer) hangUp('your peer left');
});
presence.on('error', (error) => setStatus(`presence refused: ${error.code}`));

// Signals are handled one at a time, in order: an ICE candidate must not overtake the offer it belongs to.
let inbox = Promise.resolve();
presence.on('message', ({ from, data }) => {
  inbox = inbox.then(() => onSignal(from.client, data)).catch((error) => log(`signalling failed: ${error.message}`));
});

/** Both browsers see each other; the one with the smaller client id calls, so exactly one makes the offer. */
function consider(member) {
  if (member.client === presence.client || pc) return;
  peer = member.client;
  createPeer();
  if (presence.client < member.client) void call();
}

function createPeer() {
  // No STUN or TURN server: host candidates only, so both browsers must reach each other directly.
  pc = new RTCPeerConnection({ iceServers: [] });
  state.pc = pc;
  setStatus('connecting to your peer');
  pc.onicecandidate = ({ candidate }) => candidate && signal({ kind: 'ice', candidate: candidate.toJSON() });
  pc.ondatachannel = ({ channel: dc }) => wire(dc);
  pc.onconnectionstatechange = () => log(`peer connection: ${pc?.connectionState}`);
}

async function call() {
  wire(pc.createDataChannel('chat'));
  await pc.setLocalDescription(await pc.createOffer());
  signal({ kind: 'offer', description: pc.localDescription.toJSON() });
}

async function onSignal(from, data) {
  // An offer can arrive before the join that announces its sender: take the sender as the peer.
  if (!pc) {
    peer = from;
    createPeer();
  }
  if (from !== peer) return;
  if (data.kind === 'offer') {
    await pc.setRemoteDescription(data.description);
    await flushCandidates();
    await pc.setLocalDescription(await pc.createAnswer());
    signal({ kind: 'answer', description: pc.localDescription.toJSON() });
  } else if (data.kind === 'answer') {
    await pc.setRemoteDescription(data.description);
    await flushCandidates();
  } else if (data.kind === 'ice') {
    if (pc.remoteDescription) await pc.addIceCandidate(data.candidate);
    else candidates.push(data.candidate);
  }
}

async function flushCandidates() {
  for (const candidate of candidates) await pc.addIceCandidate(candidate);
  candidates = [];
}

function signal(data) {
  herald.send(channel, peer, data).catch((error) => log(`send failed: ${error.code ?? error.message}`));
}

function wire(dc) {
  dc.onopen = () => {
    state.open = true;
    setStatus('connected peer to peer');
    $('text').disabled = false;
    $('send').disabled = false;
  };
  dc.onmessage = ({ data }) => {
    state.received.push(data);
    log(`peer: ${data}`);
  };
  dc.onclose = () => hangUp('the data channel closed');
  state.send = (text) => {
    dc.send(text);
    log(`you: ${text}`);
  };
}

function hangUp(why) {
  pc?.close();
  pc = undefined;
  peer = undefined;
  candidates = [];
  state.open = false;
  state.pc = undefined;
  $('text').disabled = true;
  $('send').disabled = true;
  setStatus(`${why}: waiting for a peer`);
}

$('chat').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('text').value.trim();
  if (text && state.open) state.send(text);
  $('text').value = '';
});
