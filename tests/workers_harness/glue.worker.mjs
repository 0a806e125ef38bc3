// Runs inside Miniflare (workerd) as both Workers' script: each event the runtime delivers is handed to
// the Python Worker running in Pyodide in Node, through a service binding into Node.
//
// The queue handler applies the Python consumer's per-message ack()/retry() to the real messages; when the
// Python side reports the invocation failed, it throws, as a crashed Python Worker would, and the queue
// retries the whole batch.

async function toPython(env, event, payload) {
  const answer = await env.PYTHON_EVENT.fetch(`http://python/${event}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
  if (!answer.ok) throw new Error(`the Python Worker's ${event} handler failed: ${await answer.text()}`);
  return answer.json();
}

export default {
  async fetch(request, env) {
    return env.PYTHON_FETCH.fetch(request);
  },

  async scheduled(controller, env) {
    await toPython(env, "scheduled", { scheduledTime: controller.scheduledTime, cron: controller.cron });
  },

  async queue(batch, env) {
    const messages = batch.messages.map((m) => ({
      id: m.id,
      timestamp: m.timestamp.getTime(),
      body: m.body,
      attempts: m.attempts,
    }));
    const { outcomes } = await toPython(env, "queue", { queue: batch.queue, messages });
    const byId = new Map(outcomes.map((o) => [o.id, o]));
    for (const message of batch.messages) {
      const outcome = byId.get(message.id);
      if (outcome?.action === "retry") {
        message.retry(outcome.delaySeconds === undefined ? undefined : { delaySeconds: outcome.delaySeconds });
      } else {
        message.ack();
      }
    }
  },
};
