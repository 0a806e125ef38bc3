// The JS objects a Python Worker is handed, as workerd names them, around the real Miniflare bindings.
//
// The vendored `workers` SDK decides how to wrap a binding by its constructor's name (D1Database,
// WorkerQueue, ...). Miniflare hands Node proxies whose constructor has no such name, so each binding is
// put behind a class of the runtime's name that forwards every call to the Miniflare proxy unchanged.
// The event objects (ExecutionContext, ScheduledController, the queue batch) are built here from what the
// glue Worker in Miniflare reports, and record what the Python code does with them.

/**
 * CPU this process spends while a binding call or fetch() awaits its answer (Miniflare's proxy JS, Node's
 * fetch), in ms: the union of those spans, so calls in flight together (or nested) count once. With one
 * invocation running, it is what workerd would do in its own code rather than the Worker's.
 */
export const outsideCpu = { ms: 0 };
let pendingOutside = 0;
let outsideSince = null;

export function metered(call) {
  if (pendingOutside++ === 0) outsideSince = process.cpuUsage();
  const settle = () => {
    if (--pendingOutside === 0) {
      const used = process.cpuUsage(outsideSince);
      outsideCpu.ms += (used.user + used.system) / 1000;
    }
  };
  let answer;
  try {
    answer = call();
  } catch (error) {
    settle();
    throw error;
  }
  return Promise.resolve(answer).finally(settle);
}

/** env.DB: forwards to Miniflare's D1 binding; statements are wrapped so batch() can unwrap them. */
export class D1Database {
  #inner;
  constructor(inner) {
    this.#inner = inner;
  }
  prepare(sql) {
    return new D1PreparedStatement(this.#inner.prepare(sql));
  }
  batch(statements) {
    return metered(() => this.#inner.batch(Array.from(statements, (s) => s.inner)));
  }
  exec(sql) {
    return metered(() => this.#inner.exec(sql));
  }
}

export class D1PreparedStatement {
  constructor(inner) {
    this.inner = inner;
  }
  bind(...values) {
    return new D1PreparedStatement(this.inner.bind(...values));
  }
  first(column) {
    return metered(() => (column === undefined ? this.inner.first() : this.inner.first(column)));
  }
  all() {
    return metered(() => this.inner.all());
  }
  run() {
    return metered(() => this.inner.run());
  }
  raw(options) {
    return metered(() => this.inner.raw(options));
  }
}

/** env.AUTH_FAILURES: forwards to Miniflare's Rate Limiting binding ([[ratelimits]]). */
export class Ratelimit {
  #inner;
  constructor(inner) {
    this.#inner = inner;
  }
  limit(options) {
    return metered(() => this.#inner.limit(options));
  }
}

/** env.JOBS: forwards to Miniflare's queue producer binding; `sent` sees each message on its way. */
export class WorkerQueue {
  #inner;
  #sent;
  constructor(inner, sent = () => {}) {
    this.#inner = inner;
    this.#sent = sent;
  }
  send(body, options) {
    this.#sent([{ body, delaySeconds: options?.delaySeconds }]);
    return metered(() => this.#inner.send(body, options));
  }
  sendBatch(messages, options) {
    const list = Array.from(messages);
    this.#sent(list.map((m) => ({ body: m.body, delaySeconds: m.delaySeconds ?? options?.delaySeconds })));
    return metered(() => this.#inner.sendBatch(list, options));
  }
}

/** The ctx of one invocation: waitUntil() promises are awaited before the invocation counts as done. */
export class ExecutionContext {
  #pending = [];
  get [Symbol.toStringTag]() {
    return "ExecutionContext";
  }
  waitUntil(promise) {
    this.#pending.push(Promise.resolve(promise));
  }
  passThroughOnException() {}
  async settled() {
    while (this.#pending.length) await Promise.allSettled(this.#pending.splice(0));
  }
}

export class ScheduledController {
  constructor(scheduledTime, cron) {
    this.scheduledTime = scheduledTime;
    this.cron = cron;
  }
  noRetry() {}
}

/** One delivered message; the first ack()/retry() wins, as in workerd. */
export class QueueMessage {
  constructor({ id, timestamp, body, attempts }, batch) {
    this.id = id;
    this.timestamp = new Date(timestamp);
    this.body = body;
    this.attempts = attempts;
    this.outcome = null;
    this.batch = batch;
  }
  ack() {
    this.outcome ??= { action: "ack" };
  }
  retry(options) {
    // Passed on as given: the glue Worker calls the real message's retry(), which validates it.
    const delaySeconds = options?.delaySeconds;
    this.outcome ??= delaySeconds === undefined ? { action: "retry" } : { action: "retry", delaySeconds };
  }
}

export class MessageBatch {
  constructor(queue, messages) {
    this.queue = queue;
    this.messages = messages.map((m) => new QueueMessage(m, this));
    this.outcome = null;
  }
  ackAll() {
    this.outcome ??= { action: "ack" };
  }
  retryAll(options) {
    this.outcome ??= { action: "retry", ...(options?.delaySeconds === undefined ? {} : options) };
  }
  /** Each message's outcome: its own call, else the batch's, else an implicit ack (the handler returned). */
  outcomes() {
    return this.messages.map((m) => ({ id: m.id, ...(m.outcome ?? this.outcome ?? { action: "ack" }) }));
  }
}
