// Each participant's own recording of the show: the camera and mic as captured, recorded in the
// page (MediaRecorder) and uploaded while the show runs. Every piece goes into IndexedDB before
// it is sent, so memory stays small, and a dropped connection or a reloaded page loses nothing:
// the server says how many bytes it has and the upload goes on from there.

const DATABASE = 'tally-local-recordings';
const PIECE_SECONDS = 2;
const RETRY_MS = 2000;
// Each page load is one recorder; takes left by an earlier load have no recorder any more.
const PAGE = crypto.randomUUID();

function request(operation) {
  return new Promise((resolve, reject) => {
    operation.onsuccess = () => resolve(operation.result);
    operation.onerror = () => reject(operation.error);
  });
}

async function openDatabase() {
  const opening = indexedDB.open(DATABASE, 1);
  opening.onupgradeneeded = () => {
    const db = opening.result;
    db.createObjectStore('takes', {keyPath: 'id'});
    db.createObjectStore('pieces', {keyPath: ['take', 'offset']});
  };
  return request(opening);
}

function mimeType() {
  return ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp9,opus', 'video/webm'].find(type => MediaRecorder.isTypeSupported(type));
}

export class LocalRecorder {
  // `onProgress({recorded, uploaded, recording, done})`: bytes recorded and uploaded over every take.
  constructor({token, broadcastID, onProgress}) {
    this.token = token;
    this.broadcastID = broadcastID;
    this.onProgress = onProgress;
    this.recorder = null;
    this.pumping = new Set();
    this.again = new Set();
    this.db = openDatabase();
  }

  async store(name, mode = 'readonly') {
    return (await this.db).transaction(name, mode).objectStore(name);
  }

  async takes() {
    return (await request((await this.store('takes')).getAll())).filter(take => take.broadcastID === this.broadcastID);
  }

  async pieces(takeID) {
    const range = IDBKeyRange.bound([takeID, 0], [takeID, Number.MAX_SAFE_INTEGER]);
    return request((await this.store('pieces')).getAll(range));
  }

  // Uploads what an earlier load of this page left, finishing takes whose recorder is gone.
  async resume() {
    for (const take of await this.takes()) {
      if (take.page !== PAGE && !take.stopped) {
        take.stopped = true;
        await request((await this.store('takes', 'readwrite')).put(take));
      }
      this.pump(take.id);
    }
    this.report();
  }

  get isRecording() { return this.recorder?.state === 'recording'; }

  // Starts a take of `stream` for the participant; false when the show is not recorded.
  async start(stream, participantID) {
    if (this.isRecording || !window.MediaRecorder) return false;
    const response = await fetch(`/api/broadcasts/${this.broadcastID}/participant-recordings`, {
      method: 'POST', headers: {'Content-Type': 'application/json', Authorization: `Bearer ${this.token}`},
      body: JSON.stringify({participant_id: participantID})});
    if (!response.ok) return false;
    const created = await response.json();
    const take = {id: created.id, broadcastID: this.broadcastID, uploadURL: created.upload_url, recorded: 0, stopped: false, page: PAGE};
    await request((await this.store('takes', 'readwrite')).put(take));
    const recorder = new MediaRecorder(stream, {mimeType: mimeType(), videoBitsPerSecond: 8_000_000, audioBitsPerSecond: 192_000});
    // Pieces are written in order: each waits for the one before it.
    let written = Promise.resolve();
    recorder.addEventListener('dataavailable', event => {
      if (!event.data.size) return;
      written = written.then(async () => {
        const piece = {take: take.id, offset: take.recorded, blob: event.data};
        take.recorded += event.data.size;
        const db = await this.db;
        const transaction = db.transaction(['pieces', 'takes'], 'readwrite');
        transaction.objectStore('pieces').put(piece);
        transaction.objectStore('takes').put(take);
        await new Promise((resolve, reject) => { transaction.oncomplete = resolve; transaction.onerror = () => reject(transaction.error); });
        this.pump(take.id);
      });
    });
    recorder.addEventListener('stop', () => {
      written = written.then(async () => {
        take.stopped = true;
        await request((await this.store('takes', 'readwrite')).put(take));
        this.pump(take.id);
      });
    });
    recorder.start(PIECE_SECONDS * 1000);
    this.recorder = recorder;
    this.report();
    return true;
  }

  stop() {
    if (this.isRecording) this.recorder.stop();
    this.recorder = null;
  }

  // Sends a take's pieces in order, one at a time; completes the take once its recorder has
  // stopped and every piece is sent.
  async pump(takeID) {
    if (this.pumping.has(takeID)) { this.again.add(takeID); return; }
    this.pumping.add(takeID);
    try {
      for (;;) {
        this.again.delete(takeID);
        const take = await request((await this.store('takes')).get(takeID));
        if (!take) return;
        const [piece] = await this.pieces(takeID);
        if (!piece) {
          if (!take.stopped) { if (this.again.has(takeID)) continue; return; }
          if (await this.send(take, `${take.uploadURL}/complete`, {method: 'POST'})) await this.forget(take);
          return;
        }
        // Null: the server's state was read again; the loop goes on from it.
        const response = await this.send(take, take.uploadURL, {method: 'PATCH', body: piece.blob, headers: {'Upload-Offset': String(piece.offset)}});
        if (response) await this.dropUploaded(take, (await response.json()).received_bytes);
        this.report();
      }
    } finally {
      this.pumping.delete(takeID);
    }
  }

  // A request for a take, retried while the network or the server is away. Null when the
  // server will never take it (the take is gone): what it holds is then dropped.
  async send(take, url, init) {
    for (;;) {
      try {
        const response = await fetch(url, {...init, headers: {...init.headers, Authorization: `Bearer ${this.token}`}});
        if (response.ok) return response;
        if (response.status === 409) {
          // The server has other bytes than we thought: go on from what it has.
          const state = await fetch(take.uploadURL, {headers: {Authorization: `Bearer ${this.token}`}});
          if (state.ok) {
            const {received_bytes: received, status} = await state.json();
            if (status !== 'uploading') { await this.forget(take); return null; }
            await this.dropUploaded(take, received);
            return null;
          }
        }
        if ([400, 401, 403, 404, 413].includes(response.status)) { await this.forget(take); return null; }
      } catch {
        // Offline for now: try again below.
      }
      await new Promise(resolve => setTimeout(resolve, RETRY_MS));
    }
  }

  // Drops the pieces the server has; a piece it has part of is cut to the part it lacks. When
  // bytes between what it has and the next piece are gone, the take ends with what it has.
  async dropUploaded(take, received) {
    const pieces = await this.pieces(take.id);
    if (pieces.length && pieces[0].offset > received) {
      for (const piece of pieces) await request((await this.store('pieces', 'readwrite')).delete([piece.take, piece.offset]));
      take.stopped = true;
      await request((await this.store('takes', 'readwrite')).put(take));
      return;
    }
    for (const piece of pieces) {
      const end = piece.offset + piece.blob.size;
      const pieces = await this.store('pieces', 'readwrite');
      if (end <= received) {
        await request(pieces.delete([piece.take, piece.offset]));
      } else if (piece.offset < received) {
        await request(pieces.delete([piece.take, piece.offset]));
        await request((await this.store('pieces', 'readwrite')).put({take: piece.take, offset: received, blob: piece.blob.slice(received - piece.offset)}));
      }
    }
  }

  async forget(take) {
    for (const piece of await this.pieces(take.id)) await request((await this.store('pieces', 'readwrite')).delete([piece.take, piece.offset]));
    await request((await this.store('takes', 'readwrite')).delete(take.id));
    this.report();
  }

  async report() {
    let recorded = 0;
    let pending = 0;
    const takes = await this.takes();
    for (const take of takes) {
      recorded += take.recorded;
      for (const piece of await this.pieces(take.id)) pending += piece.blob.size;
    }
    // Done only once the server has completed every take (each is forgotten then), not
    // when the last piece is sent: the page must stay open until the take is whole.
    this.onProgress?.({recorded, uploaded: recorded - pending, recording: this.isRecording, done: takes.length === 0 && !this.isRecording});
  }
}
