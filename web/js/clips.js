// The host's clip library in the studio: upload a video in pieces (each names its byte offset,
// so a dropped connection resumes from what the server has), then list, loop and delete clips.
import {call} from '/js/api.js';

// Under the server's 10 MB per-request upload limit.
const PIECE_BYTES = 8 << 20;

// Uploads `file` as a clip; `onProgress(fraction)` as pieces are taken. Resolves to the ready
// clip, or throws with the server's reason (not a playable video, too large, library full).
export async function uploadClip(file, token, onProgress) {
  const name = (file.name.replace(/\.[^.]*$/, '') || 'Clip').slice(0, 120);
  const clip = await call('POST', '/api/clips', {name, size_bytes: file.size});
  let offset = 0;
  while (offset < file.size) {
    const response = await fetch(clip.upload_url, {method: 'PATCH', body: file.slice(offset, offset + PIECE_BYTES),
      headers: {Authorization: `Bearer ${token()}`, 'Upload-Offset': String(offset), 'Content-Type': 'application/octet-stream'}});
    if (response.status === 409 && response.headers.has('Upload-Offset')) {
      offset = Number(response.headers.get('Upload-Offset'));
      continue;
    }
    if (response.status === 503) {
      await new Promise(resolve => setTimeout(resolve, 2000));
      continue;
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error?.message ?? `upload failed (${response.status})`);
    offset = body.received_bytes;
    onProgress(offset / file.size);
  }
  return call('POST', `/api/clips/${clip.id}/complete`);
}

export async function listClips() {
  return (await call('GET', '/api/clips')).clips.filter(clip => clip.status === 'ready');
}

export function setLoop(clip, loop) {
  return call('PATCH', `/api/clips/${clip.id}`, {loop});
}

export function deleteClip(clip) {
  return call('DELETE', `/api/clips/${clip.id}`);
}
