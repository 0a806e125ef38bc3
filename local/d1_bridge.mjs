// Miniflare's D1 (workerd's own SQLite, metered as D1 meters it), driven over stdin and stdout, for
// local/d1_meter.py and tests/test_wrangler.py. One JSON request per line:
// {"id", "op": "batch" (default) | "all" | "first" | "run", "statements": [{"sql", "params"}]};
// one JSON answer per line: {"id", "result"} or {"id", "error"}, after a first line {"ready": true}.
// Usage: node local/d1_bridge.mjs [PERSIST_DIR DATABASE_ID]: an in-memory database (the caller applies
// schema.sql), or the one `wrangler d1 migrations apply --local --persist-to` wrote (PERSIST_DIR is its v3/d1).
import { createInterface } from "node:readline";
import { Miniflare } from "miniflare";

const [persist, databaseId] = process.argv.slice(2);
const mf = new Miniflare({
  modules: true,
  script: "export default {}",
  d1Databases: { DB: databaseId ?? "clipcrawler-metered" },
  ...(persist ? { d1Persist: persist } : {}),
});
const db = await mf.getD1Database("DB");
const prepare = ({ sql, params }) => db.prepare(sql).bind(...params);
const ops = {
  all: ([statement]) => prepare(statement).all(),
  first: ([statement]) => prepare(statement).first(),
  run: ([statement]) => prepare(statement).run(),
  batch: (statements) => db.batch(statements.map(prepare)),
};
const answer = (reply) => process.stdout.write(JSON.stringify(reply) + "\n");

answer({ ready: true });
// Requests are not awaited in turn: the round trip to workerd dominates, and D1 itself runs one batch at
// a time, each atomically, as it does for concurrent Worker invocations.
const pending = new Set();
for await (const line of createInterface({ input: process.stdin })) {
  const { id, op = "batch", statements } = JSON.parse(line);
  const done = Promise.resolve()
    .then(() => ops[op](statements))
    .then((result) => answer({ id, result: result ?? null }))
    .catch((error) => answer({ id, error: String(error?.message ?? error) }))
    .finally(() => pending.delete(done));
  pending.add(done);
}
await Promise.all(pending);
await mf.dispose();
