// The JSON API client both pages use: Bearer token, one error type, FastAPI's error shapes.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

export function detailOf(body) {
  if (!body || body.detail === undefined) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg || String(d)).join("; ");
  return JSON.stringify(body.detail);
}

// getToken() -> the current token or null; onUnauthorized() runs on a 401 while signed in.
export function makeApi({ getToken, unreachable, onUnauthorized = null }) {
  return async function api(path, { method = "GET", body } = {}) {
    const token = getToken();
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, unreachable);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      if (response.status === 401 && token && onUnauthorized) onUnauthorized();
      throw new ApiError(response.status, detailOf(data));
    }
    return data;
  };
}
