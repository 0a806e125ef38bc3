// Stages one Worker's upload: build/<worker>/ holds its own package and shared/, as *.py files only.
// <worker>/entry.py stays out: wrangler uploads `main` itself, as the top-level module entry.py.
//
// Why a staged copy: for a Python Worker, wrangler uploads every *.py under the module root (`base_dir`,
// else the folder of `main`) and refuses PythonModule `rules`, so the module root must hold exactly what
// the Worker runs. The repo root would also ship local/, tests/ and node_modules/. Wrangler runs this
// through `[build] command` before every deploy, dry run and dev session.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const WORKERS = ["producer", "consumer"];
const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function copyPython(from, to, skip = new Set()) {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (entry.name !== "__pycache__") copyPython(join(from, entry.name), join(to, entry.name));
    } else if (entry.isFile() && entry.name.endsWith(".py") && !skip.has(entry.name)) {
      copyFileSync(join(from, entry.name), join(to, entry.name));
    }
  }
}

const worker = process.argv[2];
if (!WORKERS.includes(worker)) {
  console.error(`stage-worker: expected one of ${WORKERS.join(", ")}, got ${JSON.stringify(worker)}`);
  process.exit(2);
}
const out = join(root, "build", worker);
rmSync(out, { recursive: true, force: true });
copyPython(join(root, worker), join(out, worker), new Set(["entry.py"]));
copyPython(join(root, "shared"), join(out, "shared"));
console.log(`staged ${worker}/ and shared/ in build/${worker}/`);
