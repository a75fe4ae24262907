// The dashboard's script, a file of its own so that the page's Content-Security-Policy
// can allow only this server's scripts.
import {call, logout, session} from '/js/api.js';
if (!session()) location.replace('/');
document.querySelector('#who').textContent = session()?.user?.name ?? '';
document.querySelector('#logout').addEventListener('click', async () => { await logout(); location.assign('/'); });

// The form is wired before anything is awaited: a submit that comes before the layouts
// arrive waits for them instead of falling through to the browser's default submission.
const select = document.querySelector('#layout');
const layoutsLoaded = call('GET', '/api/layouts').then(({layouts}) => {
  for (const layout of layouts) select.add(new Option(layout.title, layout.name));
});
document.querySelector('#create').addEventListener('submit', async event => {
  event.preventDefault();
  const error = document.querySelector('#create-error');
  error.textContent = '';
  const scheduled = document.querySelector('#scheduled').value;
  try {
    await layoutsLoaded;
    await call('POST', '/api/broadcasts', {title: document.querySelector('#title').value,
      scheduled_at: scheduled ? new Date(scheduled).toISOString() : undefined, settings: {layout: select.value}});
    document.querySelector('#title').value = '';
    await load();
  } catch (failure) { error.textContent = failure.message; }
});

function element(tag, properties = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

async function inviteLink(id, button) {
  const invite = await call('POST', `/api/broadcasts/${id}/invites`, {});
  const link = new URL(invite.url, location.origin).href;
  await navigator.clipboard?.writeText(link).catch(() => {});
  button.textContent = 'Invite link copied';
  button.dataset.link = link;
}

const STATUS_LABELS = {
  idle: 'Ready', connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', failed: 'Failed', stopped: 'Stopped',
};

// Where a broadcast goes live: YouTube, Twitch, Facebook or any RTMP(S) server. Stream
// keys are shown back only as their last characters.
function destinations(broadcast) {
  const details = element('details', {className: 'destinations'}, element('summary', {textContent: 'Destinations'}));
  const list = element('ul', {className: 'broadcasts'});
  const form = element('form', {className: 'stack'});
  const prefix = `dest-${broadcast.id}`;
  const platform = element('select', {id: `${prefix}-platform`},
    ...['youtube', 'twitch', 'facebook', 'custom'].map(name => new Option(name === 'custom' ? 'Custom RTMP' : name[0].toUpperCase() + name.slice(1), name)));
  const url = element('input', {id: `${prefix}-url`, placeholder: 'rtmp://server/app', type: 'url'});
  const urlField = element('div', {hidden: true}, element('label', {htmlFor: url.id, textContent: 'RTMP URL'}), url);
  const key = element('input', {id: `${prefix}-key`, type: 'password', required: true, autocomplete: 'off'});
  const error = element('p', {className: 'error', role: 'alert'});
  platform.addEventListener('change', () => { urlField.hidden = platform.value !== 'custom'; url.required = platform.value === 'custom'; });
  form.append(element('div', {}, element('label', {htmlFor: platform.id, textContent: 'Platform'}), platform), urlField,
              element('div', {}, element('label', {htmlFor: key.id, textContent: 'Stream key'}), key),
              element('button', {type: 'submit', textContent: 'Add destination'}), error);
  const results = new Map();
  async function refresh() {
    const {destinations} = await call('GET', `/api/broadcasts/${broadcast.id}/destinations`);
    list.replaceChildren(...destinations.map(destination => {
      const path = `/api/broadcasts/${broadcast.id}/destinations/${destination.id}`;
      const remove = element('button', {type: 'button', textContent: 'Remove'});
      remove.setAttribute('aria-label', `Remove ${destination.name}`);
      remove.addEventListener('click', async () => { await call('DELETE', path); refresh(); });
      // Switched off for this show, the key kept for the next.
      const enabled = element('input', {type: 'checkbox', id: `${prefix}-${destination.id}-enabled`, className: 'checkbox', checked: destination.enabled});
      enabled.addEventListener('change', async () => {
        try { await call('PATCH', path, {enabled: enabled.checked}); } catch (failure) { enabled.checked = !enabled.checked; results.set(destination.id, failure.message); }
        refresh();
      });
      // A real publish with the stored key, so a wrong key shows before the show, not during it.
      const test = element('button', {type: 'button', textContent: 'Test'});
      test.setAttribute('aria-label', `Test ${destination.name}`);
      const result = element('span', {className: 'muted test-result', role: 'status', textContent: results.get(destination.id) ?? ''});
      test.addEventListener('click', async () => {
        test.disabled = true;
        result.textContent = 'Testing…';
        try {
          const outcome = await call('POST', `${path}/test`);
          result.textContent = outcome.result === 'ok' ? `Works (${outcome.elapsed_ms} ms)` : `${outcome.result}: ${outcome.message}`;
        } catch (failure) { result.textContent = failure.message; }
        results.set(destination.id, result.textContent);
        test.disabled = false;
      });
      const status = destination.status || 'idle';
      const item = element('li', {},
        element('span', {textContent: `${destination.name} · key ${destination.stream_key_hint}`}),
        element('span', {className: `badge destination-${status}`, textContent: STATUS_LABELS[status] || status}),
        element('label', {className: 'inline-label', htmlFor: enabled.id}, enabled, ' Enabled'),
        test, remove, result);
      Object.assign(item.dataset, {destination: destination.id, status});
      return item;
    }));
  }
  // While open, the list follows each destination's status as the show goes.
  setInterval(() => { if (details.isConnected && details.open && document.visibilityState === 'visible') refresh().catch(() => {}); }, 5000);
  form.addEventListener('submit', async event => {
    event.preventDefault();
    error.textContent = '';
    try {
      await call('POST', `/api/broadcasts/${broadcast.id}/destinations`,
                 {platform: platform.value, stream_key: key.value, rtmp_url: platform.value === 'custom' ? url.value : undefined});
      key.value = '';
      refresh();
    } catch (failure) { error.textContent = failure.message; }
  });
  details.addEventListener('toggle', () => { if (details.open) refresh(); }, {once: true});
  details.append(list, form);
  return details;
}

function formatDuration(seconds) {
  const total = Math.round(seconds);
  const parts = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  return (parts[0] ? `${parts[0]}:` : '') + `${String(parts[1]).padStart(parts[0] ? 2 : 1, '0')}:${String(parts[2]).padStart(2, '0')}`;
}

const TRACK_STATUS = {uploading: 'uploading', recording: 'recording', ready: 'ready', failed: 'failed'};

// Each participant's own recording of the show, uploaded from their device, listed when the
// host opens it.
function participantTracks(recording) {
  const list = element('ul', {className: 'participant-tracks'});
  const details = element('details', {}, element('summary', {textContent: "Each participant's recording"}), list);
  details.addEventListener('toggle', async () => {
    if (!details.open) return;
    const {participants} = await call('GET', `/api/recordings/${recording.id}`);
    list.replaceChildren(...(participants.length ? participants.map(track => {
      const size = track.status === 'uploading' ? `${Math.round(track.size_bytes / 1_048_576)} MB so far`
        : `${track.width}×${track.height} · ${formatDuration(track.duration_seconds)}`;
      const label = `${track.name} · ${track.source === 'local' ? 'their device' : 'server copy'} · take ${track.take}`;
      const item = element('li', {className: 'participant-track'}, element('span', {textContent: label}),
                           element('span', {className: 'muted', textContent: `${size} · ${TRACK_STATUS[track.status] ?? track.status}`}));
      item.dataset.source = track.source;
      item.dataset.status = track.status;
      if (track.status === 'ready' || track.status === 'failed') {
        const link = element('a', {className: 'button', textContent: 'Download',
                                   href: `${track.download_url}?token=${encodeURIComponent(session()?.access_token ?? '')}`});
        link.setAttribute('download', `${recording.title} - ${track.name} - ${track.source} ${track.take}.${track.source === 'server' ? 'mkv' : 'webm'}`);
        link.setAttribute('aria-label', `Download ${label}`);
        item.append(link);
      }
      return item;
    }) : [element('li', {className: 'muted', textContent: 'No participant recorded on their own device.'})]));
  });
  return details;
}

async function load() {
  const {broadcasts} = await call('GET', '/api/broadcasts');
  const list = document.querySelector('#broadcasts');
  list.replaceChildren(...broadcasts.map(broadcast => {
    const invite = element('button', {type: 'button', className: 'invite', textContent: 'Copy invite link'});
    invite.addEventListener('click', () => inviteLink(broadcast.id, invite));
    const when = broadcast.scheduled_at ? new Date(broadcast.scheduled_at).toLocaleString() : 'not scheduled';
    return element('li', {},
      element('div', {}, element('strong', {textContent: broadcast.title}), ' ',
              element('span', {className: 'badge' + (broadcast.status === 'live' ? ' live' : ''), textContent: broadcast.status}),
              element('div', {className: 'muted', textContent: when})),
      element('div', {className: 'row'}, invite,
              element('a', {className: 'button primary', href: `/studio.html?broadcast=${broadcast.id}`, textContent: 'Open studio'})),
      destinations(broadcast));
  }));
  document.querySelector('#no-broadcasts').hidden = broadcasts.length > 0;
  const {recordings} = await call('GET', '/api/recordings');
  document.querySelector('#recordings').replaceChildren(...recordings.map(recording => {
    const remove = element('button', {type: 'button', textContent: 'Delete'});
    remove.setAttribute('aria-label', `Delete recording ${recording.title}`);
    remove.addEventListener('click', async () => {
      if (!confirm(`Delete the recording "${recording.title}"?`)) return;
      await call('DELETE', `/api/recordings/${recording.id}`);
      load();
    });
    const item = element('li', {className: 'recording'}, element('span', {textContent: recording.title}),
                         element('span', {className: 'muted', textContent: `${formatDuration(recording.duration_seconds)} · ${recording.status}`}));
    if (recording.status !== 'recording') {
      // A <video> cannot send headers, so the file URL carries the access token.
      const file = `/api/recordings/${recording.id}/download?token=${encodeURIComponent(session()?.access_token ?? '')}`;
      const play = element('button', {type: 'button', textContent: 'Play'});
      play.setAttribute('aria-label', `Play recording ${recording.title}`);
      play.setAttribute('aria-expanded', 'false');
      play.addEventListener('click', () => {
        const open = item.querySelector('video');
        if (open) { open.remove(); play.textContent = 'Play'; play.setAttribute('aria-expanded', 'false'); return; }
        const video = element('video', {controls: true, src: file, className: 'recording-player'});
        video.setAttribute('aria-label', `Recording ${recording.title}`);
        item.append(video);
        play.textContent = 'Close player';
        play.setAttribute('aria-expanded', 'true');
        video.play().catch(() => {});
      });
      const download = element('a', {className: 'button', href: file, textContent: 'Download'});
      download.setAttribute('download', `${recording.title}.mp4`);
      download.setAttribute('aria-label', `Download recording ${recording.title}`);
      item.append(element('div', {className: 'row'}, play, download, remove));
    } else {
      item.append(remove);
    }
    item.append(participantTracks(recording));
    return item;
  }));
  document.querySelector('#no-recordings').hidden = recordings.length > 0;
}

await load();
