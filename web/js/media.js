// WebRTC through the studio's signaling: one connection publishing our camera and mic with
// three simulcast layers, and one receiving connection per other participant.

const SIMULCAST = [
  {rid: 'h', maxBitrate: 1_500_000},
  {rid: 'm', maxBitrate: 500_000, scaleResolutionDownBy: 2},
  {rid: 'l', maxBitrate: 150_000, scaleResolutionDownBy: 4},
];

// TURN servers from GET /api/ice-servers, for guests whose network lets no UDP out.
let configuration = {};

export function useIceServers(servers) {
  configuration = {iceServers: servers.map(({urls, username, credential}) => ({urls, username, credential}))};
}

export function peerConnection() {
  return new RTCPeerConnection(configuration);
}

async function negotiate(pc, signaling, fields = {}) {
  await pc.setLocalDescription(await pc.createOffer());
  const reply = await signaling.request('webrtc-offer', {sdp: pc.localDescription.sdp, ...fields});
  await pc.setRemoteDescription({type: 'answer', sdp: reply.data.sdp});
}

export async function openDevices({audioDeviceId, videoDeviceId} = {}) {
  return navigator.mediaDevices.getUserMedia({
    audio: audioDeviceId ? {deviceId: {exact: audioDeviceId}} : true,
    video: {width: 1280, height: 720, ...(videoDeviceId ? {deviceId: {exact: videoDeviceId}} : {})},
  });
}

export class Publisher {
  // `screen`: a screen share, published as its own source in one layer.
  constructor(signaling, stream, {screen = false} = {}) {
    this.signaling = signaling;
    this.stream = stream;
    this.screen = screen;
  }

  async start() {
    this.pc?.close();
    const pc = peerConnection();
    this.pc = pc;
    const [audio] = this.stream.getAudioTracks();
    const [video] = this.stream.getVideoTracks();
    if (audio) pc.addTransceiver(audio, {direction: 'sendonly'});
    if (video) this.video = pc.addTransceiver(video, {direction: 'sendonly', ...(this.screen ? {} : {sendEncodings: SIMULCAST})});
    await negotiate(pc, this.signaling, this.screen ? {source: 'screen'} : {});
  }

  // The SFU's simulcast-layers event: encodings nobody watches are switched off.
  async applyLayers(layers) {
    const sender = this.video?.sender;
    if (!sender) return;
    const parameters = sender.getParameters();
    let changed = false;
    for (const encoding of parameters.encodings ?? []) {
      const active = layers[encoding.rid];
      if (active !== undefined && encoding.active !== active) { encoding.active = active; changed = true; }
    }
    if (changed) await sender.setParameters(parameters);
  }

  setEnabled(kind, enabled) {
    for (const track of kind === 'audio' ? this.stream.getAudioTracks() : this.stream.getVideoTracks()) track.enabled = enabled;
  }

  close() {
    this.pc?.close();
    for (const track of this.stream.getTracks()) track.stop();
  }
}

export class Subscription {
  constructor(signaling, participantID) {
    this.signaling = signaling;
    this.participantID = participantID;
    this.stream = new MediaStream();
  }

  async start() {
    this.pc?.close();
    const pc = peerConnection();
    this.pc = pc;
    this.stream = new MediaStream();
    pc.addTransceiver('audio', {direction: 'recvonly'});
    pc.addTransceiver('video', {direction: 'recvonly'});
    pc.ontrack = event => this.stream.addTrack(event.track);
    await negotiate(pc, this.signaling, {target: this.participantID});
  }

  close() {
    this.pc?.close();
  }
}

// A level from 0 to 1 for a mic meter, read on each animation frame.
export function levelMeter(stream, onLevel) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let running = true;
  const tick = () => {
    if (!running) return;
    analyser.getFloatTimeDomainData(samples);
    const rms = Math.sqrt(samples.reduce((sum, value) => sum + value * value, 0) / samples.length);
    onLevel(Math.min(1, rms * 4));
    requestAnimationFrame(tick);
  };
  tick();
  return () => { running = false; context.close(); };
}
