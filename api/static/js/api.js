// Talking to jobpulse: GraphQL over HTTP (fetch), and the live event feed over graphql-transport-ws
// with the vendored graphql-ws client. The feed resumes from its last cursor after any disconnect.

export const JOB_FIELDS = `id type status progress progressMessage attempts maxAttempts priority owner version
  error createdAt updatedAt runAt startedAt completedAt`;

const EVENT_CURSOR = `{ eventCursor }`;

const FEED = `subscription Feed($after: String) {
  jobEvents(after: $after) { cursor kind at message level job { ${JOB_FIELDS} } }
}`;

/** A GraphQL or transport error; `code` is the GraphQL extensions.code when there is one. */
export class ApiError extends Error {
  constructor(message, code = null, field = null) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

/** Run one operation over HTTP; return `data` or throw ApiError. */
export async function gql(token, query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("Cannot reach the jobpulse server.", "NETWORK");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${response.status}.`, "HTTP");
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    throw new ApiError(first.message, first.extensions?.code ?? null);
  }
  if (!response.ok) throw new ApiError(`The server answered HTTP ${response.status}.`, "HTTP");
  return body.data;
}

const CLOSE_REASONS = {
  4401: "The server no longer accepts this token.",
  4403: "This token may not use the live feed.",
};

/**
 * The live job event feed: one `jobEvents` subscription that follows the socket.
 *
 * graphql-ws reconnects by itself (non-lazy, unlimited retries); on each new connection this
 * subscribes again with `after: lastCursor`, so the server first replays what happened while the
 * socket was down. Listeners: event(ev), status(state, detail), resync() (when there was no cursor to
 * resume from, so views must re-read), fatal(message).
 */
export class LiveFeed {
  constructor(token) {
    this.token = token;
    this.cursor = null;
    this.state = "connecting";
    this.retries = 0;
    this.generation = 0;
    this.disposeSubscription = null;
    this.client = null;
    this.stopped = false;
    this.listeners = { event: new Set(), status: new Set(), resync: new Set(), fatal: new Set() };
  }

  on(kind, fn) {
    this.listeners[kind].add(fn);
    return () => this.listeners[kind].delete(fn);
  }

  emit(kind, ...args) {
    for (const fn of [...this.listeners[kind]]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`jobpulse: ${kind} listener failed`, err);
      }
    }
  }

  setState(state, detail = "") {
    this.state = state;
    this.emit("status", state, detail);
  }

  /**
   * Connect. The feed first asks for a cursor of the present, so it replays every change after that
   * moment: views that read the store after `start()` resolves miss nothing in between (they keep
   * only newer versions of a job, so the few seconds replayed twice are harmless).
   */
  async start() {
    try {
      this.cursor = (await gql(this.token, EVENT_CURSOR)).eventCursor;
    } catch (err) {
      console.warn("jobpulse: no starting cursor, the feed starts live", err);
    }
    if (this.stopped) return;
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
    let pongTimer = null;
    this.client = window.graphqlWs.createClient({
      url,
      lazy: false,
      keepAlive: 10_000,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: async (retries) => {
        this.retries = retries + 1;
        const ms = Math.min(500 * 2 ** retries, 8_000) * (0.6 + Math.random() * 0.4);
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
      connectionParams: () => ({ authorization: `Bearer ${this.token}` }),
      onNonLazyError: (err) => this.fail(err),
      on: {
        connecting: (isRetry) => this.setState(isRetry ? "reconnecting" : "connecting"),
        connected: (_socket, _payload, wasRetry) => {
          this.retries = 0;
          this.subscribe(wasRetry);
          this.setState("live");
        },
        closed: (event) => {
          clearTimeout(pongTimer);
          this.unsubscribe();
          if (!this.stopped && this.state !== "failed") {
            this.setState("reconnecting", event && event.code ? `closed with code ${event.code}` : "");
          }
        },
        // A ping with no pong within 5 s means a dead connection: drop it and reconnect.
        ping: (received) => {
          if (!received) pongTimer = setTimeout(() => this.client.terminate(), 5_000);
        },
        pong: (received) => {
          if (received) clearTimeout(pongTimer);
        },
      },
    });
  }

  subscribe(wasRetry) {
    this.unsubscribe();
    const generation = ++this.generation;
    const resuming = this.cursor !== null;
    this.disposeSubscription = this.client.subscribe(
      { query: FEED, variables: { after: this.cursor } },
      {
        next: (result) => {
          if (generation !== this.generation) return;
          const event = result.data?.jobEvents;
          if (!event) return;
          this.cursor = event.cursor;
          this.emit("event", event);
        },
        error: (err) => {
          if (generation !== this.generation) return;
          const errors = Array.isArray(err) ? err : [];
          const code = errors[0]?.extensions?.code;
          if (code === "UNAUTHENTICATED" || code === "FORBIDDEN") {
            this.fail({ code: code === "FORBIDDEN" ? 4403 : 4401 });
          } else if (errors.length) {
            // The server refused the cursor (or the feed failed): start afresh and re-read.
            console.warn("jobpulse: live feed error", errors);
            this.cursor = null;
            this.subscribe(false);
            this.emit("resync");
          }
        },
        complete: () => {},
      },
    );
    if (wasRetry && !resuming) this.emit("resync");
  }

  unsubscribe() {
    this.generation++;
    if (this.disposeSubscription) {
      const dispose = this.disposeSubscription;
      this.disposeSubscription = null;
      dispose();
    }
  }

  fail(err) {
    const code = err && typeof err === "object" && "code" in err ? err.code : null;
    const message = CLOSE_REASONS[code] || `The live connection failed${code ? ` (code ${code})` : ""}.`;
    this.setState("failed", message);
    this.emit("fatal", message, code);
  }

  stop() {
    this.stopped = true;
    this.unsubscribe();
    if (this.client) this.client.dispose();
  }
}
