// A resilient EventSource wrapper (the same file ships with both services' pages).
//
// * The browser's own reconnect (with the Last-Event-ID header) handles dropped
//   connections; this class only steps in when the browser gives up for good
//   (readyState CLOSED: a 401, a 503 while a server shuts down, ...). It then opens a new
//   EventSource after a backoff and passes the last id as `?last_event_id=`, since a new
//   EventSource cannot send the header.
// * Auth: the HttpOnly cookie the login set rides along on same-origin requests. If the
//   first attempt fails before ever opening, it retries with `?token=` (a page opened
//   after the cookie expired or was blocked).
// * Every `data:` is an envelope {id, epoch, type, payload, timestamp, source};
//   comment lines (heartbeats) never reach script.

export class LiveStream {
  /**
   * @param {string} path  e.g. "/api/sessions/s1/events"
   * @param {{onEvent: (envelope: object) => void,
   *          onState?: (state: "connecting"|"live"|"reconnecting") => void,
   *          onReopen?: (resumed: boolean) => void,
   *          token?: () => (string|null)}} options
   */
  constructor(path, options) {
    this.path = path;
    this.onEvent = options.onEvent;
    this.onState = options.onState || (() => {});
    this.onReopen = options.onReopen || (() => {});
    this.token = options.token || (() => null);
    this.lastId = null;
    this.useToken = false;
    this.source = null;
    this.timer = null;
    this.failures = 0;
    this.openedOnce = false;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }

  url() {
    const params = new URLSearchParams();
    const token = this.useToken ? this.token() : null;
    if (token) params.set("token", token);
    if (this.lastId) params.set("last_event_id", this.lastId);
    const query = params.toString();
    return query ? `${this.path}?${query}` : this.path;
  }

  connect() {
    if (this.stopped) return;
    this.onState(this.openedOnce ? "reconnecting" : "connecting");
    const source = new EventSource(this.url());
    let opened = false;
    this.source = source;
    source.onopen = () => {
      const reopened = this.openedOnce;
      opened = true;
      this.openedOnce = true;
      this.failures = 0;
      this.onState("live");
      // Resumed from a position: the server replays what was missed, or sends `reset`.
      // Without one (no event seen yet), the page has to refetch what it shows.
      if (reopened) this.onReopen(this.lastId !== null);
    };
    source.onmessage = (event) => {
      if (event.lastEventId) this.lastId = event.lastEventId;
      let envelope;
      try {
        envelope = JSON.parse(event.data);
      } catch {
        return; // not ours
      }
      this.onEvent(envelope);
    };
    source.onerror = () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser will not retry: do it ourselves, a little later.
        source.close();
        if (!opened && !this.useToken && this.token()) this.useToken = true;
        this.failures += 1;
        const delay = Math.min(10000, 500 * 2 ** Math.min(this.failures - 1, 5));
        this.onState("reconnecting");
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.connect(), delay * (0.75 + Math.random() / 2));
      } else {
        this.onState("reconnecting"); // CONNECTING: the browser retries by itself
      }
    };
  }
}
