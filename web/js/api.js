// The REST API with the signed-in session kept in localStorage: the user and the short-lived
// access token only. The refresh token lives in the HttpOnly cookie the server sets, out of
// reach of any script.

const SESSION_KEY = 'tally.session';

export function session() {
  try { return JSON.parse(localStorage.getItem(SESSION_KEY)); } catch { return null; }
}

export function saveSession(value) {
  if (value) {
    const {refresh_token: _, ...kept} = value;
    localStorage.setItem(SESSION_KEY, JSON.stringify(kept));
  } else {
    localStorage.removeItem(SESSION_KEY);
  }
}

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Calls the API with the session's access token (or `token`), refreshing it once when it
// has expired; failures throw APIError with the server's code and message.
export async function call(method, path, body, {token, retry = true} = {}) {
  const headers = {};
  const bearer = token ?? session()?.access_token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  if (response.status === 401 && retry && !token && session()) {
    if (await refresh()) return call(method, path, body, {retry: false});
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new APIError(response.status, data?.error?.code ?? 'http_error', data?.error?.message ?? `HTTP ${response.status}`);
  }
  return data;
}

async function refresh() {
  const response = await fetch('/api/auth/refresh', {method: 'POST', credentials: 'same-origin'});
  if (!response.ok) { saveSession(null); return false; }
  saveSession(await response.json());
  return true;
}

export async function register(name, email, password) {
  saveSession(await call('POST', '/api/auth/register', {name, email, password}));
}

export async function login(email, password) {
  saveSession(await call('POST', '/api/auth/login', {email, password}));
}

export async function logout() {
  try { await call('POST', '/api/auth/logout'); } finally { saveSession(null); }
}
