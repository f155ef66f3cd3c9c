// Real releases' bpm.yml files (../shared/bpm-corpus/rendered, read at run
// time, never copied here): each validates, and each process starts and stops
// in a throwaway root laid out as the corpus's README says: executables
// replaced by a stand-in that sleeps, pre_start hooks that succeed,
// mount_only volumes made, and host paths (hooks, unrestricted volumes)
// moved from /var/vcap to the root.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { isMap, isSeq, parseDocument } from "yaml";
import { capabilityNumber } from "../../src/config/capabilities.ts";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../../src/runtime/cgroups.ts";
import { BPM, skipUnlessRoot } from "./harness.ts";

/** The corpus beside the clone (CI), or where this machine keeps it. */
const CORPUS = [resolve(import.meta.dirname, "../../../shared/bpm-corpus/rendered"), "/work/shared/bpm-corpus/rendered"].find(existsSync);
const skip = skipUnlessRoot || (CORPUS ? false : "no ../shared/bpm-corpus/rendered beside the repository: the real releases' configs are not here");
/** Commands in flight at once: the machine has 2 cores, shared. */
const CONCURRENCY = 4;
const INTERNAL = "/var/vcap";

interface CorpusFile {
  /** RELEASE/JOB/vN.yml */
  name: string;
  job: string;
  text: string;
  processes: { name: string; executable: string; hook?: string; mountOnly: string[] }[];
}

function readCorpus(dir: string): CorpusFile[] {
  const files: CorpusFile[] = [];
  for (const release of readdirSync(dir).sort()) {
    for (const job of readdirSync(join(dir, release)).sort()) {
      for (const variant of readdirSync(join(dir, release, job)).filter((f) => f.endsWith(".yml")).sort()) {
        const text = readFileSync(join(dir, release, job, variant), "utf8");
        const data = (parseDocument(text, { version: "1.1" }).toJS() ?? { processes: [] }) as { processes: Record<string, any>[] };
        files.push({
          name: `${release}/${job}/${variant}`, job, text,
          processes: data.processes.map((p) => ({
            name: String(p.name), executable: String(p.executable), hook: p.hooks?.pre_start ?? undefined,
            // What another job makes on a VM: mount_only volumes, and the host paths of unrestricted ones.
            mountOnly: [...(p.additional_volumes ?? []).filter((v: any) => v.mount_only), ...(p.unsafe?.unrestricted_volumes ?? [])]
              .filter((v: any) => !/[*?[]/.test(v.path)).map((v: any) => String(v.path)),
          })),
        });
      }
    }
  }
  return files;
}

/** A host path of the corpus (hooks, unrestricted volumes) moved into root. */
const moved = (root: string, p: string) => (p === INTERNAL || p.startsWith(INTERNAL + "/") ? root + p.slice(INTERNAL.length) : p);

/** The hard NOFILE limit bpm is given here: without CAP_SYS_RESOURCE no job gets more. */
const NOFILE_HARD = Number(/^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))![1]);

/** The capabilities this host can grant (its bounding set lacks SYS_RESOURCE here). */
const BOUNDING = BigInt("0x" + /^CapBnd:\s+([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]);
const hostHas = (cap: string) => {
  const n = capabilityNumber(cap);
  return n !== undefined && ((BOUNDING >> BigInt(n)) & 1n) === 1n;
};

/** The file as the root needs it: hooks and unrestricted volumes, which are
 * host paths, moved into it; open_files and capabilities at most what this
 * host can grant. */
function adjusted(root: string, text: string): string {
  const doc = parseDocument(text, { version: "1.1" });
  const processes = doc.get("processes");
  if (!isSeq(processes)) return text;
  processes.items.forEach((_, i) => {
    const hook = doc.getIn(["processes", i, "hooks", "pre_start"]);
    if (typeof hook === "string") doc.setIn(["processes", i, "hooks", "pre_start"], moved(root, hook));
    const openFiles = doc.getIn(["processes", i, "limits", "open_files"]);
    if (typeof openFiles === "number" && openFiles > NOFILE_HARD) doc.setIn(["processes", i, "limits", "open_files"], NOFILE_HARD);
    const caps = doc.getIn(["processes", i, "capabilities"]);
    if (isSeq(caps)) doc.setIn(["processes", i, "capabilities"], caps.items.map((c) => String((c as { value: unknown }).value)).filter(hostHas));
    const volumes = doc.getIn(["processes", i, "unsafe", "unrestricted_volumes"]);
    if (isSeq(volumes)) {
      volumes.items.forEach((v, j) => {
        if (isMap(v)) doc.setIn(["processes", i, "unsafe", "unrestricted_volumes", j, "path"], moved(root, String(v.get("path"))));
      });
    }
  });
  return doc.toString();
}

function writeExecutable(path: string, body: string) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, body);
  chmodSync(path, 0o755);
}

/** Runs fns with at most n at once. */
async function pool<T>(n: number, fns: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(fns.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < fns.length) {
      const i = next++;
      results[i] = await fns[i]!();
    }
  }));
  return results;
}

describe("the real releases' configs", { skip }, () => {
  it("validate, then start and stop every process in a throwaway root", async (t) => {
    const started = Date.now();
    const files = readCorpus(CORPUS!);
    assert.ok(files.length >= 100, `${files.length} files in ${CORPUS}`);
    // Roots of their own for files of one job name (variants, or two releases' nats).
    const roots: { path: string; files: CorpusFile[] }[] = [];
    const base = `/srv/bpm-corpus-${process.pid}-${randomBytes(3).toString("hex")}`;
    for (const f of files) {
      let root = roots.find((r) => !r.files.some((g) => g.job === f.job));
      if (!root) roots.push((root = { path: `${base}/r${roots.length}`, files: [] }));
      root.files.push(f);
    }
    const tried: { root: string; job: string; proc: string }[] = [];
    t.after(async () => {
      await pool(CONCURRENCY, tried.map((p) => () => bpm(p.root, "stop", p.job, "-p", p.proc)));
      for (const r of roots) for (const dir of cgroupDirs(jobCgroup(cgroupFsRoot(), r.path, "any"))) spawnSync("rmdir", [dirname(dir)]);
      // A shared volume (nfsv3driver's) stays a mount point on the host, as on a VM.
      const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "");
      for (const m of mounts.filter((m) => m.startsWith(base + "/")).sort().reverse()) spawnSync("umount", ["-l", m]);
      rmSync(base, { recursive: true, force: true });
    });

    // Every file validates as today: a few rendered variants are invalid (the
    // original refuses them too); start must then refuse them with the same words.
    for (const r of roots) {
      for (const f of r.files) {
        mkdirSync(join(r.path, "jobs", f.job, "config"), { recursive: true });
        writeFileSync(join(r.path, "jobs", f.job, "config", "bpm.yml"), f.text);
      }
    }
    const validated = await pool(CONCURRENCY, roots.map((r) => () => bpm(r.path, "validate")));
    const problems = new Map<CorpusFile, string>();
    roots.forEach((r, i) => {
      const out = validated[i]!;
      for (const f of r.files) {
        const file = `${r.path}/jobs/${f.job}/config/bpm.yml`;
        const lines = out.stdout.split("\n");
        if (lines.includes(`ok: ${file}`) || lines.includes(`ok: ${file} (no processes: the file is empty)`)) continue;
        const said = lines.filter((l) => l.startsWith(`${file}:`));
        assert.ok(said.length > 0, `${f.name}: validate said nothing of it:\n${out.stdout}${out.stderr}`);
        problems.set(f, said.join("; "));
      }
      assert.equal(out.status, r.files.some((f) => problems.has(f)) ? 1 : 0, out.stderr);
    });
    // A file that rendered to nothing is a job without processes, as the original read it.
    for (const f of files.filter((f) => parseDocument(f.text).contents === null)) {
      assert.ok(!problems.has(f), `${f.name} is empty and valid: ${problems.get(f)}`);
    }

    const all = roots.flatMap((r) => r.files.flatMap((f) => f.processes.map((p) => ({ r, f, p }))));
    const refused = all.filter((e) => problems.has(e.f));
    for (const { r, f, p } of refused) {
      const res = await bpm(r.path, "start", f.job, "-p", p.name);
      assert.equal(res.status, 1, `${f.name} is invalid yet started`);
      assert.equal(res.stderr, `Error: failed to parse job configuration: ${problems.get(f)}\n`);
    }
    // Laid out as a deployed VM has it, then every process started.
    for (const r of roots) {
      for (const dir of ["store", "data/packages"]) mkdirSync(join(r.path, dir), { recursive: true });
      for (const f of r.files.filter((f) => !problems.has(f))) {
        writeFileSync(join(r.path, "jobs", f.job, "config", "bpm.yml"), adjusted(r.path, f.text));
        for (const p of f.processes) {
          writeExecutable(moved(r.path, p.executable), "#!/bin/sh\nexec sleep 1000\n");
          if (p.hook) writeExecutable(moved(r.path, p.hook), "#!/bin/sh\nexit 0\n");
          // Another job makes these on a VM; host paths outside /var/vcap (/dev/fuse) are the host's.
          for (const v of p.mountOnly) if (v.startsWith(INTERNAL + "/")) mkdirSync(moved(r.path, v), { recursive: true });
        }
      }
    }
    const each = all.filter((e) => !problems.has(e.f));
    tried.push(...each.map(({ r, f, p }) => ({ root: r.path, job: f.job, proc: p.name })));
    const starts = await pool(CONCURRENCY, each.map(({ r, f, p }) => () => bpm(r.path, "start", f.job, "-p", p.name)));
    const failed = each.map((e, i) => ({ ...e, res: starts[i]! })).filter((e) => e.res.status !== 0);
    assert.deepEqual(failed.map((e) => `${e.f.name} ${e.p.name}: ${e.res.stderr.trim()}`), [], "every process starts");
    for (const r of roots) {
      const list = await bpm(r.path, "list");
      assert.equal(list.stderr, [...problems].filter(([f]) => r.files.includes(f)).map(([f, why]) => `invalid config for ${f.job}: ${why}\n`).join(""), r.path);
      const running = list.stdout.split("\n").filter((l) => / running$/.test(l)).length;
      assert.equal(running, r.files.reduce((n, f) => n + (problems.has(f) ? 0 : f.processes.length), 0), list.stdout);
    }
    const stops = await pool(CONCURRENCY, each.map(({ r, f, p }) => () => bpm(r.path, "stop", f.job, "-p", p.name)));
    tried.splice(0, tried.length, ...tried.filter((_, i) => stops[i]!.status !== 0));
    assert.deepEqual(stops.map((s, i) => (s.status === 0 ? "" : `${each[i]!.f.name}: ${s.stderr}`)).filter(Boolean), []);
    for (const r of roots) assert.doesNotMatch((await bpm(r.path, "list")).stdout, / running$/m);
    process.stderr.write(`# corpus: ${files.length} files (${problems.size} invalid, as for the original), ${each.length} processes in ${roots.length} roots: validated, started and stopped in ${Date.now() - started} ms\n`);
  });
});

function bpm(root: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const c = spawn(BPM, args, { env: { ...process.env, BPM_BOSH_ROOT: root }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d) => (stdout += d));
    c.stderr.on("data", (d) => (stderr += d));
    c.on("close", (status) => res({ status, stdout, stderr }));
  });
}
