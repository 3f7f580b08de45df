/** An error Herald answered (`{error: {code, message}}`), or a request that never reached it (`status` 0). */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * A small client for Herald's HTTP API from a page Herald serves: same origin, the credential as a
 * bearer header (never in a URL), every failure turned into an ApiError with a message to show.
 * `credential` is a function, so a page can sign in and out without rebuilding its components.
 * `onUnauthorized(error, credential)` hears every 401 to a request that carried a credential (revoked,
 * expired), with the credential it carried, so the page can end the session instead of showing stale data.
 */
export function createApi(credential, base = '', onUnauthorized = undefined) {
  async function request(method, path, body) {
    const headers = { accept: 'application/json' };
    const token = credential();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (error) {
      throw new ApiError(0, 'network', `Herald could not be reached (${error.message}). Is the server running?`);
    }
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const error = json && json.error;
      const failure = error && error.message
        ? new ApiError(res.status, error.code, error.message, error.details)
        : new ApiError(res.status, 'http_error', `Herald answered ${res.status} ${res.statusText}.`);
      if (res.status === 401 && token && onUnauthorized) onUnauthorized(failure, token);
      throw failure;
    }
    return json;
  }
  return {
    get: (path) => request('GET', path),
    post: (path, body = {}) => request('POST', path, body),
    patch: (path, body) => request('PATCH', path, body),
    del: (path) => request('DELETE', path),
    credential,
  };
}

/** `a, b c` → `['a', 'b', 'c']`: lists typed into one text field. */
export function splitList(text) {
  return String(text ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export const enc = encodeURIComponent;

/** A part of an address as typed; a broken `%` escape (from any link) stays as it is rather than blank the page. */
export function decodePart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** `#/a/b%20c` → ['a', 'b c']. */
export function hashParts() {
  return location.hash.replace(/^#\/?/, '').split('/').map(decodePart);
}
