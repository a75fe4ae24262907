// The studio: green room first, then the stage preview, backstage, chat and (for the host)
// the show's controls. Everything the server decides arrives as signaling events.
import {call, session} from '/js/api.js';
import {placeParticipants} from '/js/layout.js';
import {deleteClip, listClips, setLoop, uploadClip} from '/js/clips.js';
import {LocalRecorder} from '/js/localrecording.js';
import {levelMeter, openDevices, peerConnection, Publisher, Subscription, useIceServers} from '/js/media.js';
import {Signaling} from '/js/signaling.js';

const $ = selector => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const joinPath = location.pathname.match(/^\/join\/([0-9a-fA-F-]{36})/);
const broadcastID = joinPath ? joinPath[1] : params.get('broadcast');
const inviteToken = params.get('invite');
const isGuest = Boolean(inviteToken);
const token = inviteToken ?? session()?.access_token;

const state = {
  me: null,
  isHost: false,
  stage: {layout: 'grid', participants: [], streams: [], clips: [], clip_fullscreen: false, banner: null, comment: null, theme: null, countdown: null},
  // The host's ingest streams (GET /api/streams), which can stand on stage like people.
  streams: [],
  // The host's ready clips (GET /api/clips), which play on stage after people and streams.
  clips: [],
  // The broadcast's saved stage arrangements (GET /api/broadcasts/{id}/scenes).
  scenes: [],
  layouts: [],
  participants: new Map(),
  destinations: new Map(),
  startedAt: null,
};
let signaling;
let publisher;
let screenShare = null;
let localStream;
let stopMeter;
let prepared;
let localRecording;

function toast(text) {
  const box = $('#toast');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

function element(tag, properties = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

// One video element per participant and place (stage or backstage), kept across redraws so
// a layout change moves pictures instead of restarting them.
const videos = new Map();

function video(id, place) {
  const key = `${place}:${id}`;
  let node = videos.get(key);
  if (!node) {
    node = element('video', {autoplay: true, playsInline: true, muted: true});
    videos.set(key, node);
  }
  const stream = streamOf(id) ?? null;
  if (node.srcObject !== stream) node.srcObject = stream;
  return node;
}

// MARK: Green room

async function startPreview(devices = {}) {
  localStream?.getTracks().forEach(track => track.stop());
  stopMeter?.();
  localStream = await openDevices(devices);
  $('#preview').srcObject = localStream;
  stopMeter = levelMeter(localStream, level => { $('#mic-level').value = level; });
  const all = await navigator.mediaDevices.enumerateDevices();
  for (const [select, kind, track] of [[$('#camera'), 'videoinput', localStream.getVideoTracks()[0]],
                                       [$('#microphone'), 'audioinput', localStream.getAudioTracks()[0]]]) {
    select.replaceChildren(...all.filter(device => device.kind === kind)
      .map((device, index) => new Option(device.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${index + 1}`, device.deviceId)));
    const current = track?.getSettings().deviceId;
    if (current) select.value = current;
  }
}

// The connection test: our own media through /api/echo, with its round trip and loss.
async function connectionTest() {
  const result = $('#connection-result');
  result.textContent = 'Testing…';
  const pc = peerConnection();
  try {
    for (const track of localStream.getTracks()) pc.addTransceiver(track, {direction: 'sendrecv'});
    await pc.setLocalDescription(await pc.createOffer());
    const response = await fetch('/api/echo', {method: 'POST', body: pc.localDescription.sdp,
      headers: {'Content-Type': 'application/sdp', Authorization: `Bearer ${token}`}});
    if (response.status !== 201) throw new Error(`the server said ${response.status}`);
    await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
    await new Promise(done => setTimeout(done, 3000));
    let rtt = null, lost = 0, received = 0;
    (await pc.getStats()).forEach(report => {
      if (report.type === 'candidate-pair' && report.nominated && report.currentRoundTripTime !== undefined) rtt = report.currentRoundTripTime;
      if (report.type === 'inbound-rtp') { lost += report.packetsLost ?? 0; received += report.packetsReceived ?? 0; }
    });
    const loss = received + lost > 0 ? (100 * lost / (received + lost)).toFixed(1) : '0.0';
    result.textContent = received > 0 ? `Good: round trip ${rtt === null ? '?' : Math.round(rtt * 1000)} ms, ${loss} % loss`
                                      : 'No media came back: check your network';
    const location = response.headers.get('Location');
    if (location) fetch(location, {method: 'DELETE', headers: {Authorization: `Bearer ${token}`}});
  } catch (failure) {
    result.textContent = `Test failed: ${failure.message}`;
  } finally {
    pc.close();
  }
}

// MARK: Studio

function participant(id) {
  return state.participants.get(id);
}

function streamOf(id) {
  if (id === state.me?.id) return localStream;
  if (screenShare && id === screenShare.id) return screenShare.publisher.stream;
  return participant(id)?.subscription?.stream;
}

// Our screen as a source of its own: the host can put it on stage like a person.
async function toggleScreenShare() {
  const button = $('#share-screen');
  if (screenShare) {
    const ending = screenShare;
    screenShare = null;
    ending.publisher.close();
    button.setAttribute('aria-pressed', 'false');
    button.textContent = 'Share screen';
    await signaling.request('screen-share-stop').catch(() => {});
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia({video: true, audio: false});
    const reply = await signaling.request('screen-share-start');
    screenShare = {id: reply.data.participant.id, publisher: new Publisher(signaling, stream, {screen: true})};
    stream.getVideoTracks()[0].addEventListener('ended', () => { if (screenShare) toggleScreenShare(); });
    await screenShare.publisher.start();
    button.setAttribute('aria-pressed', 'true');
    button.textContent = 'Stop sharing';
    renderStage();
  } catch (failure) {
    toast(`Screen share: ${failure.message}`);
  }
}

function personTile(id) {
  const info = id === state.me?.id ? state.me : participant(id)?.info;
  return element('div', {className: 'tile'}, video(id, 'stage'), element('span', {className: 'name', textContent: info?.name ?? ''}));
}

// The studio cannot play an encoder's feed (it reaches the program, not the browsers): its
// tile says which stream stands there and whether it is live.
function streamTile(id) {
  const known = state.streams.find(stream => stream.stream_id === id);
  const status = known ? (known.is_live ? 'live' : 'waiting for the encoder') : 'encoder stream';
  return element('div', {className: 'tile stream-tile'}, element('span', {className: 'stream-status', textContent: status}),
                 element('span', {className: 'name', textContent: id}));
}

function renderStreams() {
  const onStage = state.stage.streams ?? [];
  $('#no-streams').hidden = state.streams.length > 0;
  $('#ingest-streams').replaceChildren(...state.streams.map(stream => {
    const standing = onStage.includes(stream.stream_id);
    const toggle = element('button', {type: 'button', textContent: standing ? 'Remove from stage' : 'Add to stage'});
    toggle.setAttribute('aria-label', `${standing ? 'Remove' : 'Add'} stream ${stream.stream_id} ${standing ? 'from' : 'to'} stage`);
    toggle.addEventListener('click', () => setStage({streams: standing ? onStage.filter(id => id !== stream.stream_id) : [...onStage, stream.stream_id]}));
    const item = element('li', {className: 'stream' + (standing ? ' on-stage' : '')},
                         element('span', {textContent: stream.stream_id}),
                         element('span', {className: 'muted', textContent: stream.is_live ? 'live' : stream.status}), toggle);
    item.dataset.stream = stream.stream_id;
    return item;
  }));
}

// One element per clip, kept across redraws (as participants' are) so a redraw does not
// start the clip again; moving it pauses it, so it is played again once placed.
const clipVideos = new Map();

function clipVideo(clip) {
  let node = clipVideos.get(clip.id);
  if (!node || node.dataset.source !== clip.url) {
    node = element('video', {src: clip.url, muted: true, autoplay: true, playsInline: true});
    node.dataset.source = clip.url;
    clipVideos.set(clip.id, node);
  }
  node.loop = clip.loop;
  node.setAttribute('aria-label', `Clip ${clip.name}`);
  queueMicrotask(() => { if (node.isConnected && !node.ended) node.play().catch(() => {}); });
  return node;
}

// A clip's tile plays the clip, muted (its sound is in the program); guests, who cannot list
// the host's library, see which tile it is.
function clipTile(id) {
  const known = state.clips.find(clip => clip.id === id);
  const tile = element('div', {className: 'tile clip-tile'});
  if (known) {
    tile.append(clipVideo(known));
  } else {
    tile.append(element('span', {className: 'stream-status', textContent: 'video clip'}));
  }
  tile.append(element('span', {className: 'name', textContent: known?.name ?? 'Clip'}));
  return tile;
}

function renderClips() {
  const onStage = state.stage.clips ?? [];
  $('#no-clips').hidden = state.clips.length > 0;
  $('#clips').replaceChildren(...state.clips.map(clip => {
    const standing = onStage.includes(clip.id);
    const filling = standing && state.stage.clip_fullscreen && onStage[0] === clip.id;
    const toggle = element('button', {type: 'button', textContent: standing ? 'Remove from stage' : 'Add to stage'});
    toggle.setAttribute('aria-label', `${standing ? 'Remove' : 'Add'} clip ${clip.name} ${standing ? 'from' : 'to'} stage`);
    toggle.addEventListener('click', () => setStage(standing ? {clips: onStage.filter(id => id !== clip.id)} : {clips: [...onStage, clip.id]}));
    const full = element('button', {type: 'button', textContent: filling ? 'Back to the stage' : 'Full screen'});
    full.setAttribute('aria-pressed', String(filling));
    full.setAttribute('aria-label', `${filling ? 'Stop showing' : 'Show'} clip ${clip.name} full screen`);
    full.addEventListener('click', () => setStage(filling ? {clip_fullscreen: false}
                                                          : {clips: [clip.id, ...onStage.filter(id => id !== clip.id)], clip_fullscreen: true}));
    const loop = element('input', {type: 'checkbox', className: 'checkbox', checked: clip.loop, id: `clip-loop-${clip.id}`});
    loop.addEventListener('change', async () => {
      try { await setLoop(clip, loop.checked); await refreshClips(); } catch (failure) { toast(failure.message); }
    });
    const remove = element('button', {type: 'button', textContent: 'Delete'});
    remove.setAttribute('aria-label', `Delete clip ${clip.name}`);
    remove.addEventListener('click', async () => {
      try { await deleteClip(clip); await refreshClips(); } catch (failure) { toast(failure.message); }
    });
    const item = element('li', {className: 'clip' + (standing ? ' on-stage' : '')},
                         element('img', {src: clip.thumbnail_url, alt: '', className: 'clip-thumbnail'}),
                         element('span', {textContent: `${clip.name} · ${Math.round(clip.duration_seconds)} s`}),
                         element('span', {className: 'row'}, loop, element('label', {htmlFor: loop.id, className: 'inline-label', textContent: 'Loop'})),
                         toggle, full, remove);
    item.dataset.clip = clip.id;
    return item;
  }));
}

function renderScenes() {
  $('#scenes').replaceChildren(...state.scenes.map(scene => {
    const show = element('button', {type: 'button', textContent: 'Show'});
    show.setAttribute('aria-label', `Show scene ${scene.name}`);
    show.addEventListener('click', async () => {
      try { await call('POST', `/api/broadcasts/${broadcastID}/scenes/${scene.id}/show`); } catch (failure) { toast(failure.message); }
    });
    const remove = element('button', {type: 'button', textContent: 'Delete'});
    remove.setAttribute('aria-label', `Delete scene ${scene.name}`);
    remove.addEventListener('click', async () => {
      try { await call('DELETE', `/api/broadcasts/${broadcastID}/scenes/${scene.id}`); await refreshScenes(); } catch (failure) { toast(failure.message); }
    });
    const title = scene.countdown_seconds ? `${scene.name} (countdown ${countdownClock({until: Date.now() + scene.countdown_seconds * 1000})})` : scene.name;
    const item = element('li', {className: 'scene'}, element('span', {textContent: title}), show, remove);
    item.dataset.scene = scene.id;
    return item;
  }));
  $('#transition').value = state.stage.transition ?? 'cut';
}

async function refreshScenes() {
  try {
    ({scenes: state.scenes} = await call('GET', `/api/broadcasts/${broadcastID}/scenes`));
    renderScenes();
  } catch (failure) {
    toast(`Scenes: ${failure.message}`);
  }
}

// The stage as it looks now, drawn into a canvas: what fades out over the new arrangement.
function stageSnapshot() {
  const stage = $('#stage');
  const box = stage.getBoundingClientRect();
  const canvas = element('canvas', {className: 'stage-snapshot', width: Math.round(box.width), height: Math.round(box.height)});
  canvas.setAttribute('aria-hidden', 'true');
  const context = canvas.getContext('2d');
  context.fillStyle = getComputedStyle(stage).backgroundColor;
  context.fillRect(0, 0, canvas.width, canvas.height);
  for (const tile of stage.querySelectorAll('.tile')) {
    const area = tile.getBoundingClientRect();
    const media = tile.querySelector('video');
    context.fillStyle = '#1b1f27';
    context.fillRect(area.left - box.left, area.top - box.top, area.width, area.height);
    if (media?.videoWidth) context.drawImage(media, area.left - box.left, area.top - box.top, area.width, area.height);
  }
  return canvas;
}

// The theme as the compositor draws it: text on the accent turns dark when the accent is
// light (the same threshold as Compositor's Theme.isLight), fonts are the server's own.
const themeFonts = {sans: '"Tally Sans", sans-serif', serif: '"Tally Serif", serif', mono: '"Tally Mono", monospace'};

function applyTheme(given) {
  const theme = {accent: '#2563eb', font: 'sans', nametags: 'shade', banner: 'accent', ...(given ?? {})};
  const stage = $('#stage');
  const [red, green, blue] = [1, 3, 5].map(at => parseInt(theme.accent.slice(at, at + 2), 16));
  stage.style.setProperty('--theme-accent', theme.accent);
  stage.style.setProperty('--theme-on-accent', 299 * red + 587 * green + 114 * blue > 160000 ? '#111827' : 'white');
  stage.style.setProperty('--theme-font', themeFonts[theme.font] ?? themeFonts.sans);
  stage.dataset.nametags = theme.nametags;
  stage.dataset.banner = theme.banner;
  $('#theme-accent').value = theme.accent;
  $('#theme-font').value = theme.font;
  $('#theme-nametags').value = theme.nametags;
  $('#theme-banner').value = theme.banner;
}

// Whole seconds left, rounded up, as M:SS: what the compositor draws.
function countdownClock(countdown) {
  const seconds = Math.max(0, Math.ceil((countdown.until - Date.now()) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

setInterval(() => {
  const clock = $('#stage .countdown strong');
  if (clock && state.stage.countdown) clock.textContent = countdownClock(state.stage.countdown);
}, 250);

function arrangement(stage) {
  return JSON.stringify([stage.layout, stage.participants, stage.streams ?? [], stage.clips ?? [], stage.clip_fullscreen ?? false]);
}

// A new stage from the server: with the cross-fade chosen and a new arrangement, the old
// picture fades out over the new one in half a second, as on the program.
function applyStage(stage) {
  const fading = stage.transition === 'fade' && arrangement(stage) !== arrangement(state.stage) && !$('#studio').hidden;
  const snapshot = fading ? stageSnapshot() : null;
  state.stage = stage;
  renderStage();
  if (state.me?.role === 'host') renderScenes();
  if (!snapshot) return;
  $('#stage').querySelectorAll('.stage-snapshot').forEach(node => node.remove());
  $('#stage').append(snapshot);
  snapshot.getBoundingClientRect();
  snapshot.classList.add('fading');
  setTimeout(() => snapshot.remove(), 600);
}

async function refreshClips() {
  try {
    state.clips = await listClips();
    renderStage();
  } catch (failure) {
    toast(`Clips: ${failure.message}`);
  }
}

async function refreshStreams() {
  try {
    ({streams: state.streams} = await call('GET', '/api/streams'));
    renderStage();
  } catch (failure) {
    toast(`Encoder streams: ${failure.message}`);
  }
}

function renderStage() {
  const stage = $('#stage');
  // People first, then encoder streams, then clips, as the compositor places them; a clip
  // on full screen alone in the solo layout.
  const clips = (state.stage.clips ?? []).map(id => ({clip: id}));
  const fullscreen = state.stage.clip_fullscreen && clips.length > 0;
  const onStage = fullscreen ? clips.slice(0, 1)
    : [...state.stage.participants.filter(id => id === state.me?.id || state.participants.has(id)).map(id => ({participant: id})),
       ...(state.stage.streams ?? []).map(id => ({stream: id})), ...clips];
  const spec = state.layouts.find(layout => layout.name === (fullscreen ? 'solo' : state.stage.layout)) ?? state.layouts[0];
  stage.dataset.layout = spec?.name ?? '';
  stage.querySelectorAll('.tile, .banner, .comment, .countdown').forEach(node => node.remove());
  applyTheme(state.stage.theme);
  $('#stage-empty').hidden = onStage.length > 0;
  if (spec) {
    const width = stage.clientWidth, height = stage.clientHeight;
    // The layout places labels; each tile's label is its place on the stage.
    for (const placement of placeParticipants(spec, onStage.map((_, index) => String(index)), width, height)) {
      const source = onStage[Number(placement.participant)];
      const tile = source.stream !== undefined ? streamTile(source.stream) : source.clip !== undefined ? clipTile(source.clip) : personTile(source.participant);
      if (source.stream !== undefined) tile.dataset.stream = source.stream;
      else if (source.clip !== undefined) tile.dataset.clip = source.clip;
      else tile.dataset.participant = source.participant;
      Object.assign(tile.style, {left: `${placement.x}px`, top: `${placement.y}px`, width: `${placement.width}px`,
                                 height: `${placement.height}px`, zIndex: String(placement.z + 1)});
      stage.append(tile);
    }
  }
  // A clip taken off stage starts from its beginning when it comes back, as in the program.
  for (const id of clipVideos.keys()) if (!onStage.some(source => source.clip === id)) clipVideos.delete(id);
  if (state.stage.banner) stage.append(element('div', {className: 'banner', textContent: state.stage.banner.text}));
  if (state.stage.comment) {
    stage.append(element('div', {className: 'comment' + (state.stage.banner ? ' above-banner' : '')},
                         element('b', {textContent: state.stage.comment.name}), element('span', {textContent: state.stage.comment.text})));
  }
  $('#comment-clear').hidden = !state.stage.comment;
  if (state.stage.countdown) {
    const countdown = element('div', {className: 'countdown'},
                              element('span', {textContent: state.stage.countdown.label}), element('strong', {textContent: countdownClock(state.stage.countdown)}));
    countdown.setAttribute('role', 'timer');
    stage.append(countdown);
  }
  $('#countdown-clear').hidden = !state.stage.countdown;
  stage.style.backgroundImage = state.stage.background ? `url("${state.stage.background}")` : '';
  stage.querySelector('.logo')?.remove();
  if (state.stage.logo) stage.append(element('img', {className: 'logo', src: state.stage.logo, alt: 'Logo'}));
  for (const button of $('#layouts').querySelectorAll('button')) {
    button.setAttribute('aria-pressed', String(button.dataset.layout === state.stage.layout));
  }
  renderBackstage();
  if (state.me?.role === 'host') {
    renderStreams();
    renderClips();
  }
}

function renderBackstage() {
  const cards = [state.me, ...[...state.participants.values()].map(entry => entry.info)].filter(Boolean);
  $('#backstage').replaceChildren(...cards.map(info => {
    const onStage = state.stage.participants.includes(info.id);
    const card = element('div', {className: 'card' + (onStage ? ' on-stage' : ''), role: 'listitem'},
                         video(info.id, 'backstage'),
                         element('span', {className: 'name', textContent: `${info.name}${info.id === state.me.id ? ' (you)' : ''}${info.audio_enabled === false ? ' · muted' : ''}`}));
    card.dataset.participant = info.id;
    if (state.me.role === 'host') {
      const actions = element('div', {className: 'actions'});
      const toggle = element('button', {type: 'button', textContent: onStage ? 'Remove from stage' : 'Add to stage'});
      toggle.setAttribute('aria-label', `${onStage ? 'Remove' : 'Add'} ${info.name} ${onStage ? 'from' : 'to'} stage`);
      toggle.addEventListener('click', () => setStage({participants: onStage ? state.stage.participants.filter(id => id !== info.id)
                                                                           : [...state.stage.participants, info.id]}));
      actions.append(toggle);
      if (info.id !== state.me.id) {
        const mute = element('button', {type: 'button', textContent: 'Ask to mute'});
        mute.setAttribute('aria-label', `Ask ${info.name} to mute`);
        mute.addEventListener('click', () => signaling.request('mute-request', {participant_id: info.id, kind: 'audio'}).catch(failure => toast(failure.message)));
        actions.append(mute);
      }
      card.append(actions);
    }
    return card;
  }));
}

async function setStage(change) {
  try {
    await signaling.request('stage-set', change);
  } catch (failure) {
    toast(failure.message);
  }
}

async function subscribe(id) {
  const entry = participant(id);
  // Our own screen is shown from the capture, not played back through the server.
  if (!entry || id === state.me.id || id === screenShare?.id) return;
  entry.subscription?.close();
  entry.subscription = new Subscription(signaling, id);
  try {
    await entry.subscription.start();
    // Videos stay muted wherever they are drawn; each participant is heard once, from here.
    entry.audio ??= element('audio', {autoplay: true});
    entry.audio.srcObject = entry.subscription.stream;
  } catch (failure) {
    entry.subscription = null;
    if (failure.code !== 'not_publishing') toast(`Cannot play ${entry.info.name}: ${failure.message}`);
  }
  renderStage();
}

function addParticipant(info) {
  if (info.id === state.me.id) return;
  const entry = participant(info.id);
  if (entry) entry.info = info;
  else state.participants.set(info.id, {info, subscription: null});
}

function appendChat(message) {
  const line = element('li', {}, element('b', {textContent: message.name}), message.text);
  // The host puts a message on the program as a lower third with who wrote it.
  if (state.isHost) {
    const show = element('button', {type: 'button', className: 'show-comment', textContent: 'Show',
                                     ariaLabel: `Show ${message.name}'s message on stream`});
    show.addEventListener('click', () => setStage({comment: {name: message.name, text: message.text.slice(0, 300)}}));
    line.append(show);
  }
  $('#chat-messages').append(line);
  line.scrollIntoView({block: 'end'});
}

// The participant's own recording: started when the show goes live (the server refuses it
// when the show is not recorded), stopped when it ends, uploaded all along.
async function startLocalRecording() {
  if (!localRecording || localRecording.isRecording || !localStream || state.me?.role === 'viewer') return;
  // The recording's row is written as the show starts; give it a moment when it is not there yet.
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await localRecording.start(localStream, state.me.id)) return;
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
}

function showUploadProgress({recorded, uploaded, recording, done}) {
  const box = $('#local-recording');
  // Completed takes are forgotten, so nothing is left recorded once all are uploaded: the
  // box stays up to say so.
  box.hidden = recorded === 0 && !(done && box.dataset.state);
  const percent = recorded ? Math.floor(uploaded * 100 / recorded) : 100;
  $('#local-recording-progress').value = percent;
  $('#local-recording-text').textContent = recording ? `Recording here · ${percent} % uploaded`
    : done ? 'Your recording is uploaded.' : `Keep this tab open: ${percent} % uploaded`;
  box.dataset.state = recording ? 'recording' : done ? 'done' : 'uploading';
}

function showStatus(status, startedAt) {
  $('#status').textContent = status;
  $('#status').className = 'badge' + (status === 'live' ? ' live' : '');
  state.startedAt = status === 'live' && startedAt ? new Date(startedAt) : null;
  const button = $('#go-live');
  button.textContent = status === 'live' ? 'End broadcast' : 'Go live';
  button.disabled = status === 'ended';
  if (status === 'live') startLocalRecording();
  else localRecording?.stop();
}

setInterval(() => {
  if (!state.startedAt) { $('#timer').textContent = ''; return; }
  const seconds = Math.max(0, Math.floor((Date.now() - state.startedAt) / 1000));
  $('#timer').textContent = `${String(Math.floor(seconds / 3600)).padStart(2, '0')}:${String(Math.floor(seconds / 60) % 60).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
}, 1000);

const DESTINATION_LABELS = {
  idle: 'Ready', connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', failed: 'Failed', stopped: 'Stopped',
};

function renderDestinations() {
  const list = $('#destinations');
  $('#destinations-empty').hidden = state.destinations.size > 0;
  list.replaceChildren(...[...state.destinations.values()].map(destination => {
    const status = destination.status || 'idle';
    const badge = element('span', {className: `badge destination-${status}`, textContent: DESTINATION_LABELS[status] || status});
    const item = element('li', {className: 'destination'});
    item.dataset.destination = destination.id;
    item.dataset.status = status;
    const name = element('span', {textContent: `${destination.name} (${destination.platform})`});
    item.append(name, badge);
    if (destination.reason && (status === 'failed' || status === 'reconnecting')) {
      item.append(element('span', {className: 'muted destination-reason', textContent: destination.reason}));
    }
    return item;
  }));
}

function listen() {
  const on = (event, handler) => signaling.addEventListener(event, message => handler(message.detail));
  on('participant-joined', data => { addParticipant(data.participant); renderStage(); });
  on('participant-left', data => {
    const entry = participant(data.participant_id);
    entry?.subscription?.close();
    if (entry?.audio) entry.audio.srcObject = null;
    state.participants.delete(data.participant_id);
    videos.delete(`stage:${data.participant_id}`);
    videos.delete(`backstage:${data.participant_id}`);
    renderStage();
  });
  on('participant-status-updated', data => { addParticipant(data.participant); renderBackstage(); });
  on('media-published', data => subscribe(data.participant_id));
  on('stage-updated', applyStage);
  on('chat-message', appendChat);
  on('mute-request', data => {
    setMuted(data.kind, true);
    toast(`${data.from} asked you to mute your ${data.kind === 'video' ? 'camera' : 'mic'}.`);
  });
  on('simulcast-layers', data => { if (data.participant_id === state.me.id) publisher?.applyLayers(data.layers); });
  on('broadcast-started', data => showStatus('live', data.at));
  on('destination-status', data => {
    const destination = state.destinations.get(data.destination_id);
    if (!destination) return;
    destination.status = data.status;
    destination.reason = data.reason;
    renderDestinations();
    if (data.status === 'failed') toast(`${destination.name}: ${data.reason || 'the server refused the stream'}`);
  });
  on('broadcast-ended', () => showStatus('ended'));
  on('connection', ({state: connection, joined}) => {
    if (connection === 'reconnecting') toast('Connection lost; reconnecting…');
    if (connection === 'resumed') { toast('Reconnected.'); if (joined) applyJoined(joined, false); }
    if (connection === 'lost') toast('Disconnected from the studio. Reload to join again.');
  });
}

function applyJoined(joined, fresh) {
  state.me = joined.participant;
  state.stage = joined.stage;
  for (const info of joined.participants) addParticipant(info);
  if (fresh) for (const info of joined.participants) if (info.publishing) subscribe(info.id);
  renderStage();
}

function setMuted(kind, muted) {
  publisher?.setEnabled(kind, !muted);
  const button = kind === 'audio' ? $('#toggle-mic') : $('#toggle-camera');
  button.setAttribute('aria-pressed', String(muted));
  button.textContent = kind === 'audio' ? (muted ? 'Unmute mic' : 'Mute mic') : (muted ? 'Start camera' : 'Stop camera');
  signaling?.send('participant-status', kind === 'audio' ? {audio_enabled: !muted} : {video_enabled: !muted});
}

async function enter(event) {
  event.preventDefault();
  $('#enter-studio').disabled = true;
  try {
    await prepared;
    $('#enter-error').textContent = '';
    signaling = new Signaling(token);
    await signaling.connect();
    listen();
    const joined = await signaling.join(broadcastID, isGuest ? $('#guest-name').value.trim() || undefined : undefined);
    applyJoined(joined, true);
    localRecording = new LocalRecorder({token, broadcastID, onProgress: showUploadProgress});
    localRecording.resume();
    const details = await call('GET', `/api/broadcasts/${broadcastID}`, undefined, {token});
    showStatus(details.status, details.started_at);
    $('#record').checked = details.settings.record;
    $('#broadcast-title').textContent = joined.broadcast.title;
    document.title = `${joined.broadcast.title} — Tally studio`;
    const isHost = joined.participant.role === 'host';
    state.isHost = isHost;
    $('#host-actions').hidden = !isHost;
    $('#stage-controls').hidden = !isHost;
    $('#destinations-panel').hidden = !isHost;
    state.destinations = new Map((details.destinations || []).map(destination => [destination.id, destination]));
    renderDestinations();
    if (isHost) {
      await refreshStreams();
      setInterval(refreshStreams, 10_000);
      await refreshClips();
      await refreshScenes();
    }
    // Shown once everything above is in place.
    stopMeter?.();
    $('#greenroom').hidden = true;
    $('#studio').hidden = false;
    renderStage();
    publisher = new Publisher(signaling, localStream);
    await publisher.start();
    $('#chat-text').focus();
  } catch (failure) {
    $('#enter-error').textContent = failure.message;
    $('#enter-studio').disabled = false;
  }
}

// The layouts and the camera preview load after every control is wired, so a keyboard user who
// submits a form early is never met by the browser's default submission.
async function prepare() {
  ({layouts: state.layouts} = await call('GET', '/api/layouts'));
  useIceServers((await call('GET', '/api/ice-servers', undefined, {token})).ice_servers);
  $('#layouts').replaceChildren(...state.layouts.map(layout => {
    const button = element('button', {type: 'button', textContent: layout.title, title: layout.description});
    button.dataset.layout = layout.name;
    button.addEventListener('click', () => setStage({layout: layout.name}));
    return button;
  }));
  try {
    await startPreview();
  } catch (failure) {
    $('#enter-error').textContent = `Camera or mic unavailable: ${failure.message}`;
  }
}

function main() {
  if (!broadcastID || !token) { location.replace('/'); return; }
  $('#name-field').hidden = !isGuest;
  prepared = prepare();
  prepared.catch(failure => { $('#enter-error').textContent = failure.message; });
  $('#camera').addEventListener('change', () => startPreview({videoDeviceId: $('#camera').value, audioDeviceId: $('#microphone').value}));
  $('#microphone').addEventListener('change', () => startPreview({videoDeviceId: $('#camera').value, audioDeviceId: $('#microphone').value}));
  $('#connection-test').addEventListener('click', connectionTest);
  $('#enter').addEventListener('submit', enter);
  $('#chat-form').addEventListener('submit', event => {
    event.preventDefault();
    const text = $('#chat-text').value.trim();
    if (!text) return;
    signaling.request('chat-message', {text}).catch(failure => toast(failure.message));
    $('#chat-text').value = '';
  });
  $('#banner-form').addEventListener('submit', event => {
    event.preventDefault();
    const text = $('#banner-text').value.trim();
    setStage({banner: text ? {text} : null});
  });
  for (const field of ['logo', 'background']) {
    $(`#${field}-file`).addEventListener('change', async () => {
      const file = $(`#${field}-file`).files[0];
      if (!file) return;
      try {
        const response = await fetch(`/api/upload?name=${encodeURIComponent(file.name)}`, {method: 'POST', body: file,
          headers: {'Content-Type': file.type, Authorization: `Bearer ${token}`}});
        const body = await response.json();
        if (!response.ok) throw new Error(body.error?.message ?? `upload failed (${response.status})`);
        await setStage({[field]: body.url});
      } catch (failure) {
        toast(failure.message);
      }
    });
    $(`#${field}-clear`).addEventListener('click', () => { $(`#${field}-file`).value = ''; setStage({[field]: null}); });
  }
  $('#scene-form').addEventListener('submit', async event => {
    event.preventDefault();
    const name = $('#scene-name').value.trim();
    if (!name) return;
    try {
      const countdown = Number($('#scene-countdown').value) || 0;
      await call('POST', `/api/broadcasts/${broadcastID}/scenes`, {name, ...(countdown > 0 ? {countdown_seconds: countdown} : {})});
      $('#scene-name').value = '';
      $('#scene-countdown').value = '0';
      await refreshScenes();
    } catch (failure) {
      toast(failure.message);
    }
  });
  $('#transition').addEventListener('change', () => setStage({transition: $('#transition').value}));
  $('#countdown-clear').addEventListener('click', () => setStage({countdown: null}));
  for (const field of ['accent', 'font', 'nametags', 'banner']) {
    $(`#theme-${field}`).addEventListener('change', () => setStage({theme: {[field]: $(`#theme-${field}`).value}}));
  }
  $('#clip-file').addEventListener('change', async () => {
    const file = $('#clip-file').files[0];
    if (!file) return;
    const progress = $('#clip-progress');
    progress.hidden = false;
    progress.value = 0;
    try {
      const clip = await uploadClip(file, () => session()?.access_token ?? token, fraction => { progress.value = fraction; });
      toast(`${clip.name} is in your clips.`);
      await refreshClips();
    } catch (failure) {
      toast(failure.message);
    } finally {
      progress.hidden = true;
      $('#clip-file').value = '';
    }
  });
  $('#record').addEventListener('change', async () => {
    try {
      await call('PATCH', `/api/broadcasts/${broadcastID}`, {settings: {record: $('#record').checked}});
      toast($('#record').checked ? 'This broadcast will be recorded.' : 'Recording is off.');
    } catch (failure) {
      $('#record').checked = !$('#record').checked;
      toast(failure.message);
    }
  });
  $('#banner-clear').addEventListener('click', () => { $('#banner-text').value = ''; setStage({banner: null}); });
  $('#comment-clear').addEventListener('click', () => setStage({comment: null}));
  $('#toggle-mic').addEventListener('click', () => setMuted('audio', $('#toggle-mic').getAttribute('aria-pressed') !== 'true'));
  $('#toggle-camera').addEventListener('click', () => setMuted('video', $('#toggle-camera').getAttribute('aria-pressed') !== 'true'));
  $('#share-screen').addEventListener('click', toggleScreenShare);
  $('#leave').addEventListener('click', async () => {
    await signaling.request('leave-broadcast').catch(() => {});
    signaling.close();
    publisher?.close();
    location.assign(isGuest ? '/' : '/dashboard.html');
  });
  $('#go-live').addEventListener('click', async () => {
    const live = $('#status').textContent === 'live';
    if (!confirm(live ? 'End the broadcast for everyone?' : 'Go live now?')) return;
    try { await signaling.request(live ? 'end-broadcast' : 'go-live'); } catch (failure) { toast(failure.message); }
  });
  $('#copy-invite').addEventListener('click', async () => {
    const invite = await call('POST', `/api/broadcasts/${broadcastID}/invites`, {});
    const link = new URL(invite.url, location.origin).href;
    await navigator.clipboard?.writeText(link).catch(() => {});
    $('#copy-invite').dataset.link = link;
    toast('Invite link copied.');
  });
  // Viewers need no account: the watch link plays the program and nothing else.
  $('#copy-watch').addEventListener('click', async () => {
    const share = await call('POST', `/api/broadcasts/${broadcastID}/shares`, {});
    await navigator.clipboard?.writeText(share.url).catch(() => {});
    $('#copy-watch').dataset.link = share.url;
    toast('Watch link copied.');
  });
  addEventListener('resize', renderStage);
}

// For the console and for browser tests: the live signaling connection and studio state.
window.studio = {get signaling() { return signaling; }, state};

main();
