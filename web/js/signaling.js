// The studio's signaling socket (docs/signaling.md): requests with ids and their replies,
// room events to listeners, and a reconnect that takes back our place within the grace period.

export class Signaling extends EventTarget {
  constructor(token) {
    super();
    this.token = token;
    this.nextID = 1;
    this.pending = new Map();
    this.joined = null;
    this.closedByUs = false;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(this.token)}`);
      this.socket = socket;
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error('cannot reach the studio server'));
      socket.onmessage = message => this.receive(JSON.parse(message.data));
      socket.onclose = () => this.closed();
    });
  }

  receive(message) {
    const waiting = message.id !== undefined && this.pending.get(String(message.id));
    if (waiting) {
      this.pending.delete(String(message.id));
      if (message.event === 'error') waiting.reject(Object.assign(new Error(message.data.message), {code: message.data.code}));
      else waiting.resolve(message);
      return;
    }
    this.dispatchEvent(new CustomEvent(message.event, {detail: message.data}));
  }

  // Sends `event` and resolves with the reply (rejects with its error).
  request(event, data = {}) {
    const id = String(this.nextID++);
    return new Promise((resolve, reject) => {
      this.pending.set(id, {resolve, reject});
      this.socket.send(JSON.stringify({event, data, id}));
    });
  }

  send(event, data = {}) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({event, data}));
  }

  async join(broadcastID, name) {
    const reply = await this.request('join-broadcast', {broadcast_id: broadcastID, name});
    this.joined = {broadcastID, participantID: reply.data.participant.id, token: reply.data.resume_token};
    return reply.data;
  }

  // A dropped socket comes back and resumes our place; the studio is told either way.
  async closed() {
    for (const {reject} of this.pending.values()) reject(new Error('connection lost'));
    this.pending.clear();
    if (this.closedByUs || !this.joined) return;
    this.dispatchEvent(new CustomEvent('connection', {detail: {state: 'reconnecting'}}));
    for (let attempt = 0; attempt < 20 && !this.closedByUs; attempt++) {
      await new Promise(done => setTimeout(done, Math.min(500 * (attempt + 1), 3000)));
      try {
        await this.connect();
        const {broadcastID, participantID, token} = this.joined;
        const reply = await this.request('join-broadcast', {broadcast_id: broadcastID, resume: {participant_id: participantID, token}});
        this.joined.token = reply.data.resume_token;
        this.dispatchEvent(new CustomEvent('connection', {detail: {state: 'resumed', joined: reply.data}}));
        return;
      } catch {
        // Try again until the grace period is surely over.
      }
    }
    this.dispatchEvent(new CustomEvent('connection', {detail: {state: 'lost'}}));
  }

  close() {
    this.closedByUs = true;
    this.socket?.close();
  }
}
