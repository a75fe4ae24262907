// The encoder streams page: create, stop and start, regenerate a key (shown once), copy the
// ingest URLs, follow status and bitrate, and restream to RTMP(S) destinations.
import {call, logout, session} from '/js/api.js';
if (!session()) location.replace('/');
document.querySelector('#who').textContent = session()?.user?.name ?? '';
document.querySelector('#logout').addEventListener('click', async () => { await logout(); location.assign('/'); });

function element(tag, properties = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

const STATUS_LABELS = {starting: 'Waiting for the encoder', running: 'Live', stopped: 'Stopped', error: 'Error'};

function showKey(stream) {
  document.querySelector('#key-panel').hidden = false;
  document.querySelector('#key-stream').textContent = stream.stream_id;
  document.querySelector('#new-key').value = stream.stream_key;
  document.querySelector('#key-panel').scrollIntoView({block: 'nearest'});
}
document.querySelector('#copy-key').addEventListener('click', () => navigator.clipboard?.writeText(document.querySelector('#new-key').value).catch(() => {}));

function copyField(label, value, id) {
  const input = element('input', {id, value, readOnly: true});
  const copy = element('button', {type: 'button', textContent: 'Copy'});
  copy.setAttribute('aria-label', `Copy the ${label}`);
  copy.addEventListener('click', () => navigator.clipboard?.writeText(value).catch(() => {}));
  return element('div', {}, element('label', {htmlFor: id, textContent: label}), element('div', {className: 'row'}, input, copy));
}

function formatBitrate(bps) {
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

function restreams(stream) {
  const path = `/api/streams/${encodeURIComponent(stream.stream_id)}/destinations`;
  const prefix = `restream-${stream.stream_id}`;
  const list = element('ul', {className: 'broadcasts'}, ...stream.destinations.map(destination => {
    const remove = element('button', {type: 'button', textContent: 'Remove'});
    remove.setAttribute('aria-label', `Stop restreaming to ${destination.name}`);
    remove.addEventListener('click', async () => { await call('DELETE', `${path}/${destination.id}`); load(); });
    const status = destination.status || 'idle';
    return element('li', {}, element('span', {textContent: `${destination.name} · key ${destination.stream_key_hint}`}),
                   element('span', {className: `badge destination-${status}`, textContent: status}), remove);
  }));
  const url = element('input', {id: `${prefix}-url`, type: 'url', required: true, placeholder: 'rtmp://server/app'});
  const key = element('input', {id: `${prefix}-key`, type: 'password', required: true, autocomplete: 'off'});
  const error = element('p', {className: 'error', role: 'alert'});
  const form = element('form', {className: 'stack'},
    element('div', {}, element('label', {htmlFor: url.id, textContent: 'Restream to (RTMP URL)'}), url),
    element('div', {}, element('label', {htmlFor: key.id, textContent: 'Its stream key'}), key),
    element('button', {type: 'submit', textContent: 'Add restream'}), error);
  form.addEventListener('submit', async event => {
    event.preventDefault();
    try {
      await call('POST', path, {platform: 'custom', rtmp_url: url.value, stream_key: key.value});
      load();
    } catch (failure) { error.textContent = failure.message; }
  });
  return element('details', {className: 'destinations'}, element('summary', {textContent: `Restreams (${stream.destinations.length})`}), list, form);
}

function streamItem(stream) {
  const id = stream.stream_id;
  const base = `/api/streams/${encodeURIComponent(id)}`;
  const running = stream.status === 'starting' || stream.status === 'running';
  const toggle = element('button', {type: 'button', textContent: running ? 'Stop' : 'Start'});
  toggle.setAttribute('aria-label', `${running ? 'Stop' : 'Start'} ${id}`);
  toggle.addEventListener('click', async () => { await call('POST', '/api/streams', {stream_id: id, action: running ? 'stop' : 'start'}); load(); });
  const regenerate = element('button', {type: 'button', textContent: 'Regenerate key'});
  regenerate.setAttribute('aria-label', `Regenerate the key of ${id}`);
  regenerate.addEventListener('click', async () => {
    if (!confirm(`A new key for ${id}? An encoder using the old one is disconnected.`)) return;
    showKey(await call('POST', `${base}/key`));
    load();
  });
  const remove = element('button', {type: 'button', textContent: 'Delete'});
  remove.setAttribute('aria-label', `Delete ${id}`);
  remove.addEventListener('click', async () => {
    if (!confirm(`Delete the stream ${id}?`)) return;
    await call('DELETE', base);
    load();
  });
  const status = element('span', {className: 'badge' + (stream.is_live ? ' live' : ''), textContent: STATUS_LABELS[stream.status] ?? stream.status});
  const facts = element('div', {className: 'muted'},
    `key ${stream.stream_key_hint}` + (stream.is_live ? ` · ${formatBitrate(stream.bitrate_bps)}` : '') + (stream.last_error ? ` · ${stream.last_error}` : ''));
  const item = element('li', {className: 'stack'},
    element('div', {}, element('strong', {textContent: id}), ' ', status, facts),
    copyField('RTMP server (key separately)', stream.ingest.rtmp, `${id}-rtmp`),
    copyField('SRT', `${stream.ingest.srt}?streamid=#!::r=live/YOUR_KEY,m=publish`, `${id}-srt`),
    copyField('WHIP (key as the bearer token)', stream.ingest.whip, `${id}-whip`),
    element('p', {}, element('a', {href: stream.hls_url, textContent: 'HLS playlist'}), stream.public_hls ? ' (public)' : ' (signed links: GET /api/hls/' + id + ')'),
    element('div', {className: 'row'}, toggle, regenerate, remove),
    restreams(stream));
  Object.assign(item.dataset, {stream: id, status: stream.status, live: String(stream.is_live)});
  return item;
}

let open = new Set();
async function load() {
  open = new Set([...document.querySelectorAll('#streams details[open]')].map(node => node.closest('[data-stream]')?.dataset.stream));
  const {streams} = await call('GET', '/api/streams');
  document.querySelector('#streams').replaceChildren(...streams.map(stream => {
    const item = streamItem(stream);
    if (open.has(stream.stream_id)) item.querySelector('details').open = true;
    return item;
  }));
  document.querySelector('#no-streams').hidden = streams.length > 0;
}

document.querySelector('#create').addEventListener('submit', async event => {
  event.preventDefault();
  const error = document.querySelector('#create-error');
  error.textContent = '';
  try {
    const created = await call('POST', '/api/streams', {stream_id: document.querySelector('#stream-id').value, action: 'start',
                                                        public_hls: document.querySelector('#public-hls').checked});
    document.querySelector('#stream-id').value = '';
    if (created.stream_key) showKey(created);
    await load();
  } catch (failure) { error.textContent = failure.message; }
});

load();
// Status and bitrate follow the encoder while the page is in view.
// Not while the host is typing into it, which a redraw would undo.
setInterval(() => {
  if (document.visibilityState === 'visible' && !document.activeElement?.closest('#streams')) load().catch(() => {});
}, 3000);
