// What bpm.yml may ask for, checked through the built executable: no volume
// reaches bpm's own state, no two jobs share a container id, a large file is
// read in linear time, names and keys fit every file bpm derives from them
// (and list prints no control character), clear errors for NULs and
// out-of-range limits, and an empty bpm.yml is a job with no processes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../../src/runtime/cgroups.ts";
import { BPM, bashJob, eventually, makeRoot, skipUnlessRoot, useRoot } from "./harness.ts";

const alive = (pid: number) => existsSync(`/proc/${pid}`);
/** Control characters other than newline: what list must never print. */
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]/;

describe("config rules", { skip: skipUnlessRoot }, () => {
  const root = useRoot("config-rules");

  it("refuses volumes that reach bpm's own state, at validate and at start, and chowns nothing", () => {
    const r = root();
    // A first command makes data/bpm (the helper, the locks).
    r.job("probe", bashJob("probe", "exit 0"));
    assert.equal(r.bpm("run", "probe").status, 0);
    const stateOwner = statSync(join(r.path, "data/bpm")).uid;
    const cases: [string, string][] = [
      ["additional_volumes:\n  - {path: /var/vcap/data/bpm, writable: true}", "/var/vcap/data/bpm is bpm's own state"],
      ["additional_volumes:\n  - {path: /var/vcap/data/bpm/locks}", "/var/vcap/data/bpm/locks is bpm's own state"],
      ["additional_volumes:\n  - {path: /var/vcap/sys/run/bpm, writable: true}", "/var/vcap/sys/run/bpm is bpm's own state"],
      ["additional_volumes:\n  - {path: /var/vcap/sys/run/bpm/probe, mount_only: true}", "/var/vcap/sys/run/bpm/probe is another job's state"],
      ["additional_volumes:\n  - {path: /var/vcap/sys/run, writable: true}", "/var/vcap/sys/run holds bpm's own state"],
      [`unsafe:\n    unrestricted_volumes:\n    - {path: ${r.path}/data/bpm/locks, writable: true}`, `${r.path}/data/bpm/locks is bpm's own state`],
    ];
    for (const [volumes, message] of cases) {
      r.job("greedy", bashJob("greedy", "sleep 1000", `  ${volumes}\n`));
      const v = r.bpm("validate", "greedy");
      assert.equal(v.status, 1, `validate accepted ${volumes}`);
      assert.ok(v.stdout.includes(message), `validate: expected ${message} in ${v.stdout}`);
      assert.match(v.stdout, /bpm\.yml:\d+:\d+: processes\[0\]\.(additional_volumes|unsafe\.unrestricted_volumes)\[0\]/);
      const s = r.bpm("start", "greedy");
      assert.equal(s.status, 1, `start accepted ${volumes}`);
      assert.ok(s.stderr.includes(message), `start: expected ${message} in ${s.stderr}`);
      assert.equal(statSync(join(r.path, "data/bpm")).uid, stateOwner);
      assert.equal(statSync(join(r.path, "data/bpm/locks")).uid, 0);
    }
    // Through a symlink root owns (as /var/vcap/sys leads into data/ on a BOSH VM): start resolves it.
    symlinkSync(join(r.path, "data/bpm"), join(r.path, "data/state-link"));
    r.job("greedy", bashJob("greedy", "sleep 1000", "  additional_volumes:\n  - {path: /var/vcap/data/state-link/locks, writable: true}\n"));
    const s = r.bpm("start", "greedy");
    assert.equal(s.status, 1);
    assert.ok(s.stderr.includes(`failed to start job-process: volume /var/vcap/data/state-link/locks: ${r.path}/data/bpm/locks is bpm's own state`), s.stderr);
    assert.equal(statSync(join(r.path, "data/bpm/locks")).uid, 0);
  });

  it("never chowns a read-only volume", async () => {
    const r = root();
    const shared = join(r.path, "data/shared-config");
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, "settings"), "from-the-host\n");
    r.job("reader", bashJob("reader", 'echo "READ=$(cat /var/vcap/data/shared-config/settings)"; exec sleep 1000', "  additional_volumes:\n  - {path: /var/vcap/data/shared-config}\n"));
    assert.equal(r.bpm("start", "reader").status, 0, r.log("reader", "reader", "stderr"));
    assert.match(await r.waitForLog("reader", "READ="), /READ=from-the-host/);
    assert.equal(statSync(shared).uid, 0, "the read-only volume keeps its owner");
    assert.equal(statSync(shared).mode & 0o777, 0o755, "and its mode");
    assert.equal(r.bpm("stop", "reader").status, 0);
  });

  it("gives job a, process b and job a.b, process a.b containers of their own; ids of names without dots stay", async () => {
    const r = root();
    // Each says which cgroups it was put in, as the kernel sees it.
    const script = "echo CGROUPS $(grep -E ':(pids|memory):|^0::' /proc/self/cgroup | sort | tr '\\n' ' '); echo UP; exec sleep 1000";
    r.job("a", bashJob("b", script));
    r.job("a.b", bashJob("a.b", script));
    assert.equal(r.bpm("start", "a", "-p", "b").status, 0, r.log("a", "b", "stderr"));
    const cgroupsOfAB = /CGROUPS (.*)/.exec(await r.waitForLog("a", "UP", undefined, "b"))![1];
    const first = Number(r.bpm("pid", "a", "-p", "b").stdout);
    assert.equal(r.bpm("start", "a.b").status, 0, r.log("a.b", "a.b", "stderr"));
    const cgroupsOfAdotB = /CGROUPS (.*)/.exec(await r.waitForLog("a.b", "UP"))![1];
    assert.notEqual(cgroupsOfAB, cgroupsOfAdotB, "the two jobs share a cgroup");
    const second = Number(r.bpm("pid", "a.b").stdout);
    assert.ok(first > 0 && second > 0 && first !== second, `${first} ${second}`);
    assert.ok(alive(first), "starting job a.b left job a's process b running");
    const list = r.bpm("list");
    assert.equal(list.stdout.split("\n").filter((l) => / running$/.test(l)).length, 2, list.stdout);
    assert.equal(r.bpm("stop", "a.b").status, 0);
    assert.ok(alive(first), "stopping job a.b left job a's process b running");
    assert.equal(r.bpm("stop", "a", "-p", "b").status, 0);
    // A name without dots keeps today's id (its lock file is named after it).
    r.job("web", bashJob("worker", "exit 0"));
    assert.equal(r.bpm("run", "web", "-p", "worker").status, 0);
    assert.ok(existsSync(join(r.path, "data/bpm/locks/bpm-web.2eworker.lock")));
  });

  it("decides any bpm.yml up to the 2 MiB limit quickly: a file of more than 50,000 YAML tokens is refused where they run out", () => {
    const r = root();
    const envOf = (n: number) => Array.from({ length: n }, (_, i) => `    KEY_${i}: value-${i}`).join("\n");
    const head = "processes:\n- name: p\n  executable: /bin/true\n";
    const twoMiB = 2 * 1024 * 1024 - 100;
    r.job("small", bashJob("small", "exit 0"));
    r.job("many", bashJob("many", "exit 0", `  env:\n${envOf(6_000)}\n`));
    // The shapes that cost the YAML parser most per byte (3 to 9 s each before the cap).
    const hostile: [string, string, RegExp][] = [
      ["flowlist", `${head}  args: [${"a,".repeat(twoMiB / 2 - 40)}a]\n`, /bpm\.yml:4:\d+: invalid YAML: more than 50000 tokens/],
      ["blanks", head + "\n".repeat(twoMiB), /bpm\.yml:\d+:1: invalid YAML: more than 50000 tokens/],
      ["keys", `${head}  env:\n${envOf(90_000)}\n`.slice(0, twoMiB), /bpm\.yml:\d+:\d+: invalid YAML: more than 50000 tokens/],
    ];
    for (const [job, yaml] of hostile) r.job(job, yaml);
    // CPU seconds a command takes (bash's `times`): the clock means little on a
    // busy machine or under emulation, a ratio of CPU times holds on both.
    const cpu = (...args: string[]) => {
      const said = join(r.path, "said");
      const res = spawnSync("bash", ["-c", 'out=$1; shift; "$0" "$@" >"$out" 2>&1; rc=$?; times; cat "$out" >&2; exit $rc', BPM, said, ...args],
        { env: { ...process.env, BPM_BOSH_ROOT: r.path }, encoding: "utf8", timeout: 600_000 });
      const children = res.stdout.trim().split("\n")[1] ?? "";
      const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
      return { status: res.status, seconds, said: res.stderr };
    };
    const small = cpu("validate", "small");
    assert.equal(small.status, 0, small.said);
    assert.equal(cpu("validate", "many").status, 0, "6,000 env keys (about 42,000 tokens) are read");
    for (const [job, , message] of hostile) {
      const v = cpu("validate", job);
      assert.equal(v.status, 1, `${job}: ${v.said}`);
      assert.match(v.said, message, job);
      // About what a tiny file costs (Node's start-up); the parser took 25 to 80 times that.
      assert.ok(v.seconds < 5 * Math.max(small.seconds, 0.05), `${job}: ${v.seconds} s of CPU, a tiny file ${small.seconds} s`);
      process.stderr.write(`# CPU of bpm validate: tiny ${small.seconds} s, 2 MiB ${job} ${v.seconds} s\n`);
    }
    const l = r.bpm("list");
    assert.equal(l.status, 0, l.stderr);
    assert.match(l.stdout, /^many +- +stopped$/m);
    writeFileSync(join(r.path, "jobs/many/config/bpm.yml"), readFileSync(join(r.path, "jobs/many/config/bpm.yml"), "utf8") + "    KEY_7: again\n");
    const dup = r.bpm("validate", "many");
    assert.equal(dup.status, 1);
    assert.match(dup.stdout, /bpm\.yml:6008:5: invalid YAML: duplicate key "KEY_7"/);
  });

  it("refuses names and env keys no file can hold, and never prints a control character in list", () => {
    const r = root();
    const refused: [string, string, RegExp][] = [
      ["forged", `processes:\n- name: "x\\nfake 1 running\\e[31m"\n  executable: /bin/true\n`, /bpm\.yml:2:9: processes\[0\]\.name: a name may hold only letters, digits/],
      ["long", `processes:\n- name: ${"n".repeat(250)}\n  executable: /bin/true\n`, /bpm\.yml:2:9: processes\[0\]\.name: a name may be at most 64 characters long/],
      ["unicode", `processes:\n- name: "caf\\u00e9"\n  executable: /bin/true\n`, /processes\[0\]\.name: a name may hold only/],
      ["envkey", `processes:\n- name: envkey\n  executable: /bin/true\n  env: {"PATH=/var/vcap/data/envkey/bin:": ""}\n`, /bpm\.yml:4:\d+: processes\[0\]\.env\.PATH=\/var\/vcap\/data\/envkey\/bin:: an environment variable's name may not contain "="/],
    ];
    for (const [job, yaml, message] of refused) {
      r.job(job, yaml);
      const v = r.bpm("validate", job);
      assert.equal(v.status, 1, `${job}: ${v.stdout}`);
      assert.match(v.stdout, message);
      assert.doesNotMatch(v.stdout, CONTROL);
      const s = r.bpm("start", job, "-p", job === "envkey" ? "envkey" : "whatever");
      assert.equal(s.status, 1);
      assert.match(s.stderr, /failed to parse job configuration/);
      rmSync(join(r.path, "jobs", job), { recursive: true });
    }
    // A job directory whose name carries escapes: list names it escaped, on stderr.
    const evil = "evil\x1b[2J\nx 1 running";
    r.job(evil, bashJob("p", "exit 0"));
    const list = r.bpm("list");
    assert.equal(list.status, 0, list.stderr);
    assert.doesNotMatch(list.stdout + list.stderr, CONTROL, JSON.stringify(list));
    assert.equal(list.stdout.split("\n").filter((l) => l.includes("running")).length, 0, list.stdout);
    assert.match(list.stderr, /invalid config for evil\\u001b\[2J\\u000ax 1 running: invalid job name/);
    rmSync(join(r.path, "jobs", evil), { recursive: true });
  });

  it("says where a NUL and an out-of-range process limit are written, at validate time", () => {
    const r = root();
    r.job("nul", `processes:\n- name: nul\n  executable: /bin/echo\n  args: [fine, "bad\\0arg"]\n  env: {A: "x\\0y"}\n`);
    const v = r.bpm("validate", "nul");
    assert.equal(v.status, 1, v.stdout);
    assert.match(v.stdout, /nul\/config\/bpm\.yml:4:16: processes\[0\]\.args\[1\]: contains a NUL character/);
    r.job("pids", `processes:\n- name: pids\n  executable: /bin/true\n  limits:\n    processes: 9007199254740991\n`);
    const p = r.bpm("validate", "pids");
    assert.equal(p.status, 1, p.stdout);
    assert.match(p.stdout, /pids\/config\/bpm\.yml:5:16: processes\[0\]\.limits\.processes: must be at most 4194304 \(the kernel's largest pid limit\), got 9007199254740991/);
    const s = r.bpm("start", "pids");
    assert.equal(s.status, 1);
    assert.match(s.stderr, /failed to parse job configuration: .*limits\.processes: must be at most 4194304/);
  });

  it("reads an empty bpm.yml as a job with no processes, as the original did", async (t) => {
    const r = makeRoot("config-empty");
    t.after(() => r.cleanup());
    for (const [job, body] of [["empty", ""], ["dashes", "---\n# forward_files is false\n"]] as const) {
      r.job(job, body);
      const v = r.bpm("validate", job);
      assert.equal(v.status, 0, v.stdout);
      assert.match(v.stdout, /^ok: .*bpm\.yml \(no processes/m);
      const s = r.bpm("start", job);
      assert.equal(s.status, 1);
      assert.equal(s.stderr, `Error: process "${job}" not present in job configuration (${r.path}/jobs/${job}/config/bpm.yml)\n`);
    }
    const list = r.bpm("list");
    assert.equal(list.status, 0);
    assert.equal(list.stderr, "");
    assert.equal(list.stdout.trim(), "Name Pid Status");
  });
});

// Globs: unrestricted volumes are host paths, and bpm drops those under what it
// mounts itself (a harness root sits under /var/tmp): this root sits in /srv.
describe("a glob that matches bpm's own state", { skip: skipUnlessRoot }, () => {
  it("skips data/bpm, sys/run/bpm and a symlink a job planted, and mounts what else it matches", async (t) => {
    const path = `/srv/bpm-config-glob-${process.pid}-${randomBytes(3).toString("hex")}`;
    const env = { ...process.env, BPM_BOSH_ROOT: path };
    const bpm = (...args: string[]) => spawnSync(BPM, args, { env, encoding: "utf8", timeout: 300_000 });
    t.after(() => {
      bpm("stop", "globber");
      rmSync(path, { recursive: true, force: true });
      for (const dir of cgroupDirs(jobCgroup(cgroupFsRoot(), path, "any"))) spawnSync("rmdir", [dirname(dir)]);
    });
    // bpm's state as a first command leaves it (the glob is expanded before the helper runs).
    mkdirSync(join(path, "data/bpm/locks"), { recursive: true, mode: 0o700 });
    mkdirSync(join(path, "sys/run/bpm"), { recursive: true, mode: 0o700 });
    mkdirSync(join(path, "data/other-job"), { recursive: true });
    writeFileSync(join(path, "data/other-job/metric_targets.yml"), "targets\n");
    mkdirSync(join(path, "sys/run/other-job"), { recursive: true });
    // What another job (as vcap) could leave in its own data directory's parent: it must not stop this start.
    symlinkSync("/root", join(path, "data/planted"));
    const vcap = spawnSync("id", ["-u", "vcap"], { encoding: "utf8" }).stdout.trim();
    assert.equal(spawnSync("chown", ["-h", `${vcap}:${vcap}`, join(path, "data/planted")]).status, 0);
    mkdirSync(join(path, "jobs/globber/config"), { recursive: true });
    const script = `for d in data/planted data/other-job data/bpm data/bpm/locks sys/run/other-job sys/run/bpm; do test -e ${path}/$d && echo "SEES $d" || echo "NO $d"; done; echo DONE; exec sleep 1000`;
    writeFileSync(join(path, "jobs/globber/config/bpm.yml"), bashJob("globber", script,
      `  unsafe:\n    unrestricted_volumes:\n    - {path: "${path}/data/*", mount_only: true}\n    - {path: "${path}/sys/run/*", mount_only: true}\n`));
    assert.equal(bpm("validate", "globber").status, 0);
    const s = bpm("start", "globber");
    assert.equal(s.status, 0, s.stderr);
    assert.match(s.stderr, new RegExp(`Warning: ${path}/data/planted is left out of the job's volumes: ${path}/data/planted is a symlink that root does not control`));
    const log = join(path, "sys/log/globber/globber.stdout.log");
    await eventually(() => existsSync(log) && readFileSync(log, "utf8").includes("DONE"), () => (existsSync(log) ? readFileSync(log, "utf8") : "no log"));
    const seen = readFileSync(log, "utf8");
    for (const line of ["NO data/planted", "SEES data/other-job", "NO data/bpm", "NO data/bpm/locks", "SEES sys/run/other-job", "NO sys/run/bpm"]) assert.ok(seen.includes(line), `expected ${line}; saw ${seen}`);
    // A start of the running process does nothing, and says nothing of volumes it does not make.
    const again = bpm("start", "globber");
    assert.equal(again.status, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /left out of the job's volumes/);
    assert.equal(bpm("stop", "globber").status, 0);
  });
});

