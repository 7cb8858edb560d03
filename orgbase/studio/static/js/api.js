// The studio's only way to the server: the public API with a bearer token kept in memory.
// The refresh token lives in an httpOnly cookie (see orgbase/auth/browser.py); refresh and
// sign-out repeat the CSRF cookie in a header.

export class ApiError extends Error {
  constructor(status, body, requestId) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.code = (body && body.code) || `http_${status}`;
    this.details = body && body.details;
    this.hint = (body && body.hint) || null;
    this.requestId = (body && body.request_id) || requestId || null;
  }
}

function readCookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

export class Api {
  constructor() {
    this.token = null;
    this.session = null;
    this.refreshing = null;
    this.timer = null;
    this.onSignedOut = () => {};
  }

  async signIn(email, password) {
    const body = { email, password };
    this.adopt(await this.call("POST", "/v1/auth/browser/sign-in", { body, auth: false }));
  }

  /** Pick up a session from the refresh cookie (after a reload); false when there is none. */
  async resume() {
    if (!readCookie("orgbase_csrf")) return false;
    try {
      await this.refresh();
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) return false;
      throw error;
    }
  }

  /** A new access token, optionally for another org. Concurrent callers share one call. */
  refresh(orgId) {
    if (!this.refreshing) {
      const body = orgId ? { org_id: orgId } : undefined;
      this.refreshing = this.call("POST", "/v1/auth/browser/refresh", { body, auth: false, csrf: true })
        .then((session) => this.adopt(session))
        .finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  adopt(session) {
    this.token = session.access_token;
    this.session = session;
    clearTimeout(this.timer);
    // Renew a minute before expiry so pages never see an expired token.
    const delay = Math.max(10, session.expires_in - 60) * 1000;
    this.timer = setTimeout(() => this.refresh().catch(() => this.forget()), delay);
  }

  async signOut() {
    try {
      await this.call("POST", "/v1/auth/browser/sign-out", { csrf: true });
    } finally {
      this.forget();
    }
  }

  forget() {
    clearTimeout(this.timer);
    this.token = null;
    this.session = null;
    this.onSignedOut();
  }

  get orgId() { return this.session ? this.session.org_id : null; }

  async call(method, path, options = {}) {
    const { body, headers = {}, auth = true, csrf = false, raw = false, retry = true } = options;
    const sent = { Accept: "application/json", ...headers };
    if (body !== undefined) sent["Content-Type"] = "application/json";
    if (auth && this.token) sent.Authorization = `Bearer ${this.token}`;
    if (csrf) sent["X-CSRF-Token"] = readCookie("orgbase_csrf");
    const response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!response.ok) {
      let payload = {};
      try { payload = await response.json(); } catch { /* not JSON */ }
      const error = new ApiError(response.status, payload, response.headers.get("x-request-id"));
      if (auth && retry && error.code === "token_expired") {
        await this.refresh();
        return this.call(method, path, { ...options, retry: false });
      }
      if (auth && error.status === 401 && ["session_revoked", "invalid_token"].includes(error.code)) {
        this.forget();
      }
      throw error;
    }
    if (raw) return response;
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  get(path, options) { return this.call("GET", path, options); }
  post(path, body, options = {}) { return this.call("POST", path, { ...options, body }); }
  put(path, body, options = {}) { return this.call("PUT", path, { ...options, body }); }
  patch(path, body, options = {}) { return this.call("PATCH", path, { ...options, body }); }
  del(path, options) { return this.call("DELETE", path, options); }
}
