// The watch page: the program of one broadcast for a viewer with a share link. It plays over
// WHEP (sub-second) and falls back to HLS where the browser plays that itself; it follows the
// broadcast from starting to live to ended, with the number watching.

const $ = selector => document.querySelector(selector);
const broadcastID = location.pathname.split('/')[2];
const share = new URLSearchParams(location.search).get('share');
const video = $('#program');
let state = {status: null, playing: null};

async function info() {
  const response = await fetch(`/api/watch/${broadcastID}?share=${encodeURIComponent(share ?? '')}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return body;
}

function show(message) {
  $('#watch-message').textContent = message;
  $('#watch-message').hidden = !message;
}

async function playWHEP(details) {
  const pc = new RTCPeerConnection({iceServers: details.ice_servers});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  pc.addTransceiver('video', {direction: 'recvonly'});
  const stream = new MediaStream();
  pc.ontrack = event => stream.addTrack(event.track);
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(details.whep_url, {method: 'POST', body: pc.localDescription.sdp, headers: {'Content-Type': 'application/sdp'}});
  if (response.status !== 201) { pc.close(); throw new Error(`WHEP answered ${response.status}`); }
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  const location = response.headers.get('Location');
  addEventListener('pagehide', () => { fetch(location, {method: 'DELETE', keepalive: true}); pc.close(); });
  video.srcObject = stream;
  window.watch = {pc, mode: 'whep'};
  return 'whep';
}

function playHLS(details) {
  if (!video.canPlayType('application/vnd.apple.mpegurl')) throw new Error('this browser plays neither WebRTC nor HLS');
  video.src = details.hls_url;
  window.watch = {mode: 'hls'};
  return 'hls';
}

async function startPlaying(details) {
  try {
    return await playWHEP(details);
  } catch (failure) {
    return playHLS(details);
  }
}

function render(details) {
  $('#watch-title').textContent = details.title;
  document.title = `${details.title} — Tally`;
  const labels = {scheduled: 'Starting soon', live: 'Live', ended: 'Ended'};
  $('#watch-state').textContent = labels[details.status] ?? details.status;
  $('#watch-state').classList.toggle('live', details.status === 'live');
  $('#watch-viewers').textContent = details.status === 'live' ? `${details.viewers} watching` : '';
  if (details.status === 'scheduled') show('The broadcast has not started yet. This page starts playing when it does.');
  if (details.status === 'ended') {
    show('This broadcast has ended. Thanks for watching.');
    video.pause();
    video.srcObject = null;
    video.removeAttribute('src');
    window.watch?.pc?.close();
  }
}

async function tick() {
  try {
    const details = await info();
    render(details);
    if (details.status === 'live' && !state.playing) {
      show('');
      state.playing = await startPlaying(details);
    }
    state.status = details.status;
    if (details.status !== 'ended') setTimeout(tick, 3000);
  } catch (failure) {
    $('#watch-state').textContent = 'Unavailable';
    show(failure.message);
    setTimeout(tick, 10000);
  }
}

if (!share) show('Open this page from the link the host shared.');
else tick();
