// One Python Worker in Pyodide (the npm package: CPython compiled to WebAssembly, as in workerd), loaded
// offline: the interpreter and its standard library come from node_modules/pyodide, the Worker's
// dependencies from the wheels scripts/fetch-wheels downloaded, its code from the staged upload.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { loadPyodide } from "pyodide";

const SESSION = "/session/metadata"; // where workerd puts a Worker's modules
const HERE = new URL(".", import.meta.url).pathname;

// The compatibility flags the SDK reads, with the date each becomes the default for Python Workers
// (cloudflare/workerd src/workerd/io/compatibility-date.capnp).
const COMPAT_FLAG_DATES = {
  python_request_headers_preserve_commas: "2026-02-17",
  python_workflows_implicit_dependencies: "2026-02-25",
};

/** The `_pyodide_entrypoint_helper` module workerd registers for the SDK, for one Worker. */
function entrypointHelper(pending) {
  const retained = (value) => {
    // A Python awaitable handed to JS is borrowed for the call only: keep a copy until it settles.
    const owned = typeof value?.copy === "function" ? value.copy() : value;
    return (async () => {
      try {
        await owned;
      } finally {
        owned?.destroy?.();
      }
    })();
  };
  return {
    cloudflareWorkersModule: {
      env: undefined, // the SDK's module-level `workers.env`; these Workers read self.env instead
      waitUntil(value) {
        pending.push(retained(value));
      },
    },
    cloudflareSocketsModule: {},
    patchWaitUntil(ctx) {
      if (Object.prototype.toString.call(ctx) !== "[object ExecutionContext]" || ctx.pythonPatched) return;
      const original = ctx.waitUntil.bind(ctx);
      ctx.waitUntil = (value) => original(retained(value));
      ctx.pythonPatched = true;
    },
    doAnImport(name) {
      throw new Error(`the harness cannot import the JavaScript module ${name}`);
    },
    patch_env_helper() {
      throw new Error("the harness does not implement workers.patch_env");
    },
  };
}

function* pythonFiles(dir, root = dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* pythonFiles(path, root);
    else if (entry.endsWith(".py")) yield relative(root, path);
  }
}

export class PythonWorker {
  #py;
  #runtime;
  #dispatch;
  #entrypoint;
  #pending = [];

  /**
   * name: the Worker's name; staged: its build/<name>/ folder (packages, entry.py excluded); main: the
   * entry module's source file, uploaded as top-level entry.py; wheels: folder of .whl files.
   */
  static async start({ name, staged, main, wheels, compatibilityDate, log }) {
    const worker = new PythonWorker();
    const py = await loadPyodide({
      env: { HOME: "/session" },
      stdout: (line) => log(`${name} | ${line}`),
      stderr: (line) => log(`${name} ! ${line}`),
    });
    worker.#py = py;
    // Everything comes from disk; a package Pyodide would fetch from its CDN is a failure, not a download.
    py.loadPackage = async (names) => {
      throw new Error(`the harness loads no Pyodide packages (asked for ${names})`);
    };
    const site = py.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
    for (const wheel of readdirSync(wheels).filter((f) => f.endsWith(".whl")).sort()) {
      py.unpackArchive(new Uint8Array(readFileSync(join(wheels, wheel))), "wheel", { extractDir: site });
    }
    const flags = Object.fromEntries(
      Object.entries(COMPAT_FLAG_DATES).map(([flag, date]) => [flag, compatibilityDate >= date]),
    );
    py.registerJsModule("_cloudflare_compat_flags", flags);
    py.registerJsModule("_pyodide_entrypoint_helper", entrypointHelper(worker.#pending));

    py.FS.mkdirTree(SESSION);
    for (const file of pythonFiles(staged)) {
      const target = `${SESSION}/${file}`;
      py.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
      py.FS.writeFile(target, readFileSync(join(staged, file)));
    }
    py.FS.writeFile(`${SESSION}/entry.py`, readFileSync(main));
    py.FS.writeFile(`${SESSION}/_harness_runtime.py`, readFileSync(join(HERE, "runtime.py")));
    py.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(SESSION)})`);

    const runtime = py.pyimport("_harness_runtime");
    runtime.apply_sdk_package_patches();
    worker.#runtime = runtime;
    worker.#dispatch = runtime.dispatch;
    worker.#entrypoint = py.pyimport("entry").Default;
    return worker;
  }

  /** Move this interpreter's wall clock (time.time(), so the Worker's SystemClock) by `seconds`. */
  shiftWallClock(seconds) {
    this.#runtime.shift_wall_clock(seconds);
  }

  /** This interpreter and the SDK, as the Worker sees them with `env` (see runtime.py's describe). */
  describe(env) {
    return JSON.parse(this.#runtime.describe(env));
  }

  /** Run a snippet of Python in this Worker's interpreter (the harness reads tables this way). */
  async runPython(code, globals = {}) {
    // JS values go in as they are (JsProxy), as the runtime hands them to a Worker.
    const namespace = this.#py.globals.get("dict")();
    for (const [name, value] of Object.entries(globals)) namespace.set(name, value);
    try {
      return await this.#py.runPythonAsync(code, { globals: namespace });
    } finally {
      namespace.destroy();
    }
  }

  /** One invocation of a handler of the Worker's Default entrypoint; waitUntil() work is awaited too. */
  async invoke(handler, ctx, env, ...args) {
    try {
      const relaxed = handler === "fetch";
      const result = await this.#dispatch(this.#entrypoint, ctx, env, handler, relaxed, ...args);
      return result?.js_object ?? result;
    } finally {
      await ctx.settled();
      while (this.#pending.length) await Promise.allSettled(this.#pending.splice(0));
    }
  }
}
