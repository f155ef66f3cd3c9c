// npm run bench [-- --json] [-- --rounds N]     (BPM_UNDER_TEST=FILE: measure another build;
//                                               BPM_BASELINE=FILE: also time that build's start, stop and list beside ours, paired)
// The same work through ours (dist/bpm) and through Debian's runc + tini as
// the original bpm drove them, alternating, in one run; medians and ratios
// (ours / theirs: below 1 means ours is better). Needs root and `npm run build`.
// Without runc and tini (apt-get install runc tini) only ours is measured.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../src/runtime/cgroups.ts";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { findTools, Runc } from "./oci.mjs";

const args = process.argv.slice(2);
const asJson = args.includes("--json");
const rounds = Number(args[args.indexOf("--rounds") + 1]) || 7;
// The build under test: dist/bpm, or another given by BPM_UNDER_TEST (an older build, for before/after).
const BPM = process.env.BPM_UNDER_TEST || resolve(import.meta.dirname, "../dist/bpm");
// Another build (an older one) whose start and stop of the same job alternate with ours in each round.
const BASELINE = process.env.BPM_BASELINE || null;
const say = (s) => (asJson ? process.stderr : process.stdout).write(s + "\n");

if (process.getuid() !== 0) throw new Error("the benchmark starts real containers: run it as root");
if (!existsSync(BPM)) throw new Error("no dist/bpm: run `npm run build` first");
const tools = findTools();
if (!tools) say("runc and/or tini not found (apt-get install runc tini): measuring ours only, no comparison.");

const dir = `/var/tmp/bpm-bench-${process.pid}`;
const root = join(dir, "root");
mkdirSync(join(root, "jobs"), { recursive: true });
const env = { ...process.env, BPM_BOSH_ROOT: root };
const id = (flag) => Number(spawnSync("id", [flag, "vcap"], { encoding: "utf8" }).stdout.trim());
const user = { uid: id("-u"), gid: id("-g"), groups: spawnSync("id", ["-G", "vcap"], { encoding: "utf8" }).stdout.trim().split(" ").map(Number) };
const runc = tools && new Runc({ ...tools, dir, root, user });

// The jobs: a marker file in the job's /tmp says "running".
const QUICK = "echo > /tmp/started; exec sleep 100000";
const SLOW = "trap 'sleep 0.2; exit 0' TERM; echo > /tmp/started; while :; do sleep 0.01; done";
function job(name, script) {
  mkdirSync(join(root, "jobs", name, "config"), { recursive: true });
  writeFileSync(join(root, "jobs", name, "config", "bpm.yml"),
    `processes:\n- name: ${name}\n  executable: /bin/sh\n  args: [-c, ${JSON.stringify(script)}]\n  limits: {memory: 1G, processes: 1000}\n`);
  runc?.bundle(`r${name}`, script);
}
const marker = (name) => join(root, "data", name, "tmp", "started");

const bpmOf = (exe) => (...a) => new Promise((res, rej) => {
  const c = spawn(exe, a, { env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  c.stderr.on("data", (d) => (err += d));
  c.on("exit", (code) => (code === 0 ? res() : rej(new Error(`${exe} ${a.join(" ")}: ${err}`))));
});
const bpm = bpmOf(BPM);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(0.5);
  }
}
async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Start: from the command's start until it has returned and the job has run. */
const buildSide = (run) => ({
  start: async (name) => {
    rmSync(marker(name), { force: true });
    return timed(async () => {
      await run("start", name);
      await until(() => existsSync(marker(name)), `${name} started`);
    });
  },
  stop: (name) => timed(() => run("stop", name)),
});
const ours = buildSide(bpm);
const baseline = BASELINE && { ...buildSide(bpmOf(BASELINE)), list: () => timed(() => bpmOf(BASELINE)("list")) };
const theirs = runc && {
  start: async (name) => {
    rmSync(marker(`r${name}`), { force: true });
    return timed(async () => {
      await runc.start(`r${name}`);
      await until(() => existsSync(marker(`r${name}`)), `r${name} started`);
    });
  },
  stop: (name) => timed(() => runc.stop(`r${name}`)),
};

/** Peak RSS (kB) of a command and everything it waited for, via wait4's rusage. */
function peakKb(argv, extraEnv = {}) {
  // The command's stdio is /dev/null: a detached container must not hold our pipe open.
  const py = "import os,resource,sys\npid=os.fork()\nif pid==0:\n    n=os.open('/dev/null',os.O_RDWR)\n    for f in (0,1,2): os.dup2(n,f)\n    os.execvp(sys.argv[1], sys.argv[1:])\nos.waitpid(pid,0)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
  const r = spawnSync("python3", ["-c", py, ...argv], { env: { ...env, ...extraEnv }, encoding: "utf8" });
  return Number(r.stdout.trim());
}
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const children = (pid) => readdirPids().filter((p) => ppidOf(p) === pid);
const readdirPids = () => spawnSync("ls", ["/proc"], { encoding: "utf8" }).stdout.split("\n").filter((p) => /^\d+$/.test(p)).map(Number);
const ppidOf = (pid) => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return -1;
  }
};

/**
 * Drops the executables' pages from the page cache (after writing them back).
 * A file just written (a fresh build, a fresh install) is wholly in the
 * cache as small pages, and the kernel then maps every cached neighbour of a
 * page a process touches: the same program shows ~20 MB more resident and
 * boots a few ms differently than once it has been read back from disk.
 * Both sides are measured from the state a VM is in after a reboot.
 */
function evict(files) {
  const py = "import os,sys\nfor f in sys.argv[1:]:\n    fd=os.open(f,os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)";
  spawnSync("python3", ["-c", py, ...files]);
}

const results = [];
function report(metric, unit, oursXs, theirsXs) {
  const o = median(oursXs);
  const t = theirsXs ? median(theirsXs) : null;
  results.push({ metric, unit, ours: o, theirs: t, ratio: t ? o / t : null, samples: { ours: oursXs, theirs: theirsXs ?? [] } });
}

try {
  evict([BPM, process.execPath, ...(BASELINE ? [BASELINE] : []), ...(tools ? [tools.runc, tools.tini] : [])]);
  job("quick", QUICK);
  job("slow", SLOW);
  // Warm-up: helper extraction, page cache.
  await ours.start("quick"); await ours.stop("quick");
  if (theirs) { await theirs.start("quick"); await theirs.stop("quick"); }

  const m = { start: [[], []], stopQuick: [[], []], stopSlow: [[], []] };
  // Ours beyond Node's boot: each start and quick stop minus a `bpm version` timed just before it.
  const beyond = { start: [], stopQuick: [] };
  for (let i = 0; i < rounds; i++) {
    say(`round ${i + 1}/${rounds}`);
    const sides = theirs ? [ours, theirs] : [ours];
    for (const side of i % 2 ? [...sides].reverse() : sides) {
      const k = side === ours ? 0 : 1;
      const v1 = side === ours ? await timed(() => bpm("version")) : 0;
      m.start[k].push(await side.start("quick"));
      const v2 = side === ours ? await timed(() => bpm("version")) : 0;
      m.stopQuick[k].push(await side.stop("quick"));
      if (side === ours) {
        beyond.start.push(m.start[0].at(-1) - v1);
        beyond.stopQuick.push(m.stopQuick[0].at(-1) - v2);
      }
      await side.start("slow");
      m.stopSlow[k].push(await side.stop("slow"));
    }
  }
  report("start latency (command start → job running)", "ms", m.start[0], theirs && m.start[1]);
  report("  beyond Node's boot (start − bpm version, paired)", "ms", beyond.start, null);
  report("stop latency, job exits at once on TERM", "ms", m.stopQuick[0], theirs && m.stopQuick[1]);
  report("  beyond Node's boot (stop − bpm version, paired)", "ms", beyond.stopQuick, null);
  report("stop latency, job needs 200 ms to shut down", "ms", m.stopSlow[0], theirs && m.stopSlow[1]);

  if (baseline) {
    // The same job config under its own name for each build (each keeps its own parse of it),
    // the two builds alternating within each round; the paired differences say what changed.
    say("this build against the baseline");
    job("bquick", QUICK);
    await baseline.start("bquick"); await baseline.stop("bquick");
    const b = { start: [[], []], stop: [[], []] };
    for (let i = 0; i < rounds; i++) {
      for (const k of i % 2 ? [1, 0] : [0, 1]) {
        const [side, name] = k === 0 ? [ours, "quick"] : [baseline, "bquick"];
        b.start[k].push(await side.start(name));
        b.stop[k].push(await side.stop(name));
      }
    }
    const diff = (xs) => xs[0].map((x, i) => x - xs[1][i]);
    report("start latency, this build", "ms", b.start[0], null);
    report("start latency, baseline build (BPM_BASELINE)", "ms", b.start[1], null);
    report("  start, this build − baseline (paired)", "ms", diff(b.start), null);
    report("stop latency, this build", "ms", b.stop[0], null);
    report("stop latency, baseline build (BPM_BASELINE)", "ms", b.stop[1], null);
    report("  stop, this build − baseline (paired)", "ms", diff(b.stop), null);
    // list over the same two running jobs, one started by each build (ours reads the other's records too).
    await ours.start("quick");
    await baseline.start("bquick");
    b.list = [[], []];
    for (let i = 0; i < rounds; i++) {
      for (const k of i % 2 ? [1, 0] : [0, 1]) b.list[k].push(await (k === 0 ? timed(() => bpm("list")) : baseline.list()));
    }
    await ours.stop("quick");
    await baseline.stop("bquick");
    report("list latency, this build", "ms", b.list[0], null);
    report("list latency, baseline build (BPM_BASELINE)", "ms", b.list[1], null);
    report("  list, this build − baseline (paired)", "ms", diff(b.list), null);
    rmSync(join(root, "jobs", "bquick"), { recursive: true });
  }

  say("memory");
  // Memory: what stays resident per running job beyond the job itself.
  await ours.start("quick");
  const init = Number(spawnSync(BPM, ["pid", "quick"], { env, encoding: "utf8" }).stdout);
  const oursRes = [rssKb(init)];
  let theirsRes = null;
  if (theirs) {
    await theirs.start("quick");
    const tiniPid = runc.initPid("rquick");
    // runc run --detach leaves only tini (no shim) beside the job.
    theirsRes = [rssKb(tiniPid)];
    void children;
  }
  report("resident memory per running job, beyond the job", "kB", oursRes, theirsRes);
  await ours.stop("quick");
  if (theirs) await theirs.stop("quick");

  // Peak memory of the CLI during a start (stopped again untimed).
  const peakOurs = [];
  const peakTheirs = [];
  for (let i = 0; i < 3; i++) {
    peakOurs.push(peakKb([BPM, "start", "quick"]));
    await ours.stop("quick");
    if (theirs) {
      peakTheirs.push(peakKb([...runc.cmd("run", "--detach", "--bundle", join(dir, "bundles", "rquick"), "bpm-rquick")]));
      await theirs.stop("quick");
    }
  }
  report("peak memory of the CLI during start", "kB", peakOurs, theirs && peakTheirs);
  say("list and throughput");

  // list with 1 and with 50 running jobs.
  const listOurs = () => timed(() => bpm("list"));
  const listTheirs = () => timed(async () => runc.list());
  // One configured and running job, then fifty.
  rmSync(join(root, "jobs", "slow"), { recursive: true });
  rmSync(join(root, "jobs", "quick"), { recursive: true });
  const names = Array.from({ length: 50 }, (_, i) => `many${i}`);
  job(names[0], QUICK);
  await ours.start(names[0]);
  if (theirs) await theirs.start(names[0]);
  const l1 = [[], []];
  for (let i = 0; i < rounds; i++) {
    l1[0].push(await listOurs());
    if (theirs) l1[1].push(await listTheirs());
  }
  report("list, 1 running job", "ms", l1[0], theirs && l1[1]);

  // list with fifty: the other 49 started (untimed), all stopped again.
  for (const n of names.slice(1)) job(n, QUICK);
  const batch = async (fn, xs) => {
    for (let i = 0; i < xs.length; i += 10) await Promise.all(xs.slice(i, i + 10).map(fn));
  };
  await batch((n) => ours.start(n), names.slice(1));
  if (theirs) await batch((n) => theirs.start(n), names.slice(1));
  const l50 = [[], []];
  for (let i = 0; i < rounds; i++) {
    l50[0].push(await listOurs());
    if (theirs) l50[1].push(await listTheirs());
  }
  report("list, 50 running jobs", "ms", l50[0], theirs && l50[1]);
  report("  list, 50 jobs beyond 1 (difference of medians)", "ms", [median(l50[0]) - median(l1[0])], theirs && [median(l50[1]) - median(l1[1])]);
  await batch((n) => bpm("stop", n), names);
  if (theirs) await batch((n) => runc.stop(`r${n}`), names);

  // Throughput: fifty jobs started, then stopped, ten at a time; three
  // cycles, the sides alternating (one sample of ~10 s is at the mercy of
  // whatever else the machine does).
  say("throughput");
  const through = [[], []];
  for (let c = 0; c < 3; c++) {
    const sides = theirs ? [0, 1] : [0];
    for (const k of c % 2 ? [...sides].reverse() : sides) {
      const [up, down] = k === 0 ? [(n) => bpm("start", n), (n) => bpm("stop", n)] : [(n) => runc.start(`r${n}`), (n) => runc.stop(`r${n}`)];
      through[k].push((await timed(() => batch(up, names))) + (await timed(() => batch(down, names))));
    }
  }
  report("50 jobs started and stopped (10 at a time), total", "ms", through[0], theirs && through[1]);

  const size = (f) => statSync(f).size;
  report("executable size", "bytes", [size(BPM)], theirs && [size(tools.runc) + size(tools.tini)]);
  const gz = (f) => gzipSync(readFileSync(f), { level: 6 }).length;
  report("executable size, gzipped (-6)", "bytes", [gz(BPM)], theirs && [gz(tools.runc) + gz(tools.tini)]);

  // What bounds our start-up: Node's own boot with an empty script, and our CLI doing nothing.
  const empty = join(dir, "empty.js");
  writeFileSync(empty, "");
  const nodeBoot = [];
  const version = [];
  for (let i = 0; i < rounds; i++) {
    nodeBoot.push(await timed(() => new Promise((r) => spawn(process.execPath, [empty]).on("exit", r))));
    version.push(await timed(() => bpm("version")));
  }
  results.push({ metric: "for reference: Node boot, empty script", unit: "ms", ours: median(nodeBoot), theirs: null, ratio: null, samples: { ours: nodeBoot, theirs: [] } });
  results.push({ metric: "for reference: bpm version", unit: "ms", ours: median(version), theirs: null, ratio: null, samples: { ours: version, theirs: [] } });
  const paired = version.map((v, i) => v - nodeBoot[i]);
  results.push({ metric: "  bpm version beyond Node's empty boot (paired)", unit: "ms", ours: median(paired), theirs: null, ratio: null, samples: { ours: paired, theirs: [] } });
} finally {
  // Whatever is still running from this run.
  for (const name of spawnSync("ls", [join(root, "jobs")], { encoding: "utf8" }).stdout.split("\n").filter(Boolean)) {
    spawnSync(BPM, ["stop", name], { env });
    if (BASELINE) spawnSync(BASELINE, ["stop", name], { env });
    if (runc && runc.status(`r${name}`) !== "gone") spawnSync(runc.runc, ["--root", runc.state, "delete", "--force", `bpm-r${name}`]);
  }
  rmSync(dir, { recursive: true, force: true });
  // runc makes its cgroup parent in every hierarchy (v1: cpu, blkio, ... too).
  const hierarchies = ["", ...readdirSync("/sys/fs/cgroup").map((h) => `/${h}`)];
  for (const h of hierarchies) spawnSync("rmdir", [`/sys/fs/cgroup${h}/bpm/bench-runc`], { stdio: "ignore" });
  // bpm keeps a root's cgroup scope for its jobs; it goes with the root.
  for (const d of cgroupDirs(jobCgroup(cgroupFsRoot(), root, "any"))) spawnSync("rmdir", [dirname(d)]);
}

if (asJson) {
  process.stdout.write(JSON.stringify({ rounds, runc: tools?.runc ?? null, tini: tools?.tini ?? null, results }, null, 1) + "\n");
} else {
  const fmt = (v, unit) => (v === null ? "-" : unit === "bytes" ? `${(v / 1e6).toFixed(1)} MB` : unit === "kB" ? `${Math.round(v)} kB` : `${v.toFixed(1)} ms`);
  const rows = results.map((r) => [r.metric, fmt(r.ours, r.unit), fmt(r.theirs, r.unit), r.ratio === null ? "-" : r.ratio.toFixed(2)]);
  const head = ["metric (medians)", "ours", "runc+tini", "ours/theirs"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) say(r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  "));
}
