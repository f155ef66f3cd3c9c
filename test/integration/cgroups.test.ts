// The job's cgroup as the kernel holds it: on this machine cgroup v1, in the
// VM suite (npm run test:vm) cgroup v2 on a second kernel. What the job can
// do inside its limits is in lifecycle.test.ts; here, what bpm leaves in the
// cgroup tree and how it behaves when many bpm processes work on it at once.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { containerId } from "../../src/bosh/paths.ts";
import { cgroupFsRoot, cgroupVersion, jobCgroup } from "../../src/runtime/cgroups.ts";
import { BPM, bashJob, skipUnlessRoot, useRoot, type Root } from "./harness.ts";

const fsRoot = cgroupFsRoot();
const v2 = cgroupVersion(fsRoot) === 2;
const read = (dir: string, file: string) => readFileSync(join(dir, file), "utf8").trim();
const cgOf = (r: Root, job: string) => jobCgroup(fsRoot, r.path, containerId(job));
/** The cgroup path the kernel reports for a host pid, in the hierarchy that holds `controller` (v2: the one). */
const kernelCgroup = (pid: number, controller: string) =>
  readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").map((l) => l.split(":")).find((f) => (v2 ? f[0] === "0" : f[1]!.split(",").includes(controller)))![2]!;

describe(`cgroups (v${v2 ? 2 : 1}, as this kernel has them)`, { skip: skipUnlessRoot }, () => {
  const root = useRoot("cgroups");

  it("puts each job in a cgroup of its own under bpm/, with its memory, swap and pids limits", () => {
    const r = root();
    r.job("limited", bashJob("limited", "exec sleep 1000", "  limits: {memory: 64M, processes: 20}\n"));
    assert.equal(r.bpm("start", "limited").status, 0);
    const init = Number(r.bpm("pid", "limited").stdout);
    const cg = cgOf(r, "limited");
    assert.equal(join(fsRoot, v2 ? "" : "memory", kernelCgroup(init, "memory")), cg.memory);
    assert.equal(join(fsRoot, v2 ? "" : "pids", kernelCgroup(init, "pids")), cg.pids);
    if (v2) {
      assert.equal(read(cg.memory, "memory.max"), String(64 << 20));
      if (existsSync(join(cg.memory, "memory.swap.max"))) assert.equal(read(cg.memory, "memory.swap.max"), "0");
    } else {
      assert.equal(read(cg.memory, "memory.limit_in_bytes"), String(64 << 20));
      if (existsSync(join(cg.memory, "memory.memsw.limit_in_bytes"))) assert.equal(read(cg.memory, "memory.memsw.limit_in_bytes"), String(64 << 20));
    }
    assert.equal(read(cg.pids, "pids.max"), "20");
    // The init and the job, nothing else.
    assert.equal(read(cg.pids, "cgroup.procs").split("\n").length, 2);
    assert.equal(r.bpm("stop", "limited").status, 0);
    assert.ok(!existsSync(cg.memory) && !existsSync(cg.pids), "the job's cgroup is removed on stop");
  });

  it("keeps the v2 rules: controllers enabled on the way down, no process in bpm's own cgroups", { skip: !v2 && "cgroup v1 here: the VM suite runs this on v2" }, () => {
    const r = root();
    r.job("ruled", bashJob("ruled", "exec sleep 1000"));
    // What the host already delegates at its root stays as it is.
    const before = read(fsRoot, "cgroup.subtree_control").split(" ");
    assert.equal(r.bpm("start", "ruled").status, 0);
    const job = cgOf(r, "ruled").memory;
    for (let dir = dirname(job); dir.startsWith(fsRoot); dir = dirname(dir)) {
      const enabled = read(dir, "cgroup.subtree_control").split(" ");
      assert.ok(enabled.includes("memory") && enabled.includes("pids"), `${dir} enables memory and pids: ${enabled}`);
      if (dir !== fsRoot) assert.equal(read(dir, "cgroup.procs"), "", `${dir} holds no process`);
      if (dir === fsRoot) break;
    }
    const after = read(fsRoot, "cgroup.subtree_control").split(" ");
    assert.deepEqual(before.filter((c) => !after.includes(c)), [], "nothing the host enabled was taken away");
    assert.equal(r.bpm("stop", "ruled").status, 0);
  });

  it("reports the job's memory and pids usage from the cgroup in list --json", () => {
    const r = root();
    r.job("used", `processes:\n- name: used\n  executable: /usr/bin/python3\n  args: [-c, "import time; x = bytearray(8 << 20); print('READY', flush=True); time.sleep(1000)"]\n`);
    assert.equal(r.bpm("start", "used").status, 0);
    return r.waitForLog("used", "READY").then(() => {
      const row = JSON.parse(r.bpm("list", "--json").stdout).find((p: { name: string }) => p.name === "used");
      assert.equal(row.status, "running");
      assert.ok(row.memoryBytes > 1 << 20, `memory ${row.memoryBytes}`);
      assert.ok(row.pids >= 2, `pids ${row.pids}`);
      assert.equal(r.bpm("stop", "used").status, 0);
    });
  });

  it("reads a running job's usage where its start put the cgroup, wherever this host would place the job today", async () => {
    const r = root();
    r.job("moved", `processes:\n- name: moved\n  executable: /usr/bin/python3\n  args: [-c, "import time; x = bytearray(8 << 20); print('READY', flush=True); time.sleep(1000)"]\n`);
    assert.equal(r.bpm("start", "moved").status, 0);
    await r.waitForLog("moved", "READY");
    // Today's placement elsewhere (on BOSH Lite it follows the caller's own cgroup): an empty cgroupfs.
    const elsewhere = mkdtempSync(join(r.path, "cgroupfs-"));
    const listed = spawnSync(BPM, ["list", "--json"], { env: { ...process.env, BPM_BOSH_ROOT: r.path, BPM_CGROUP_ROOT: elsewhere }, encoding: "utf8" });
    assert.equal(listed.status, 0, listed.stderr);
    const row = JSON.parse(listed.stdout).find((p: { name: string }) => p.name === "moved");
    assert.ok(row.memoryBytes > 1 << 20, `memory ${row.memoryBytes}`);
    assert.ok(row.pids >= 2, `pids ${row.pids}`);
    assert.equal(r.bpm("stop", "moved").status, 0);
  });

  // Every start cleans up its own stale cgroup and makes its new one at once,
  // in the same scope: the first VM run saw one start remove the empty scope
  // while another was enabling controllers in it.
  it("starts and stops ten different jobs at once, ten times over, without a failure", async () => {
    const r = root();
    const jobs = Array.from({ length: 10 }, (_, i) => `c${i}`);
    for (const j of jobs) r.job(j, bashJob(j, "exec sleep 1000", "  limits: {memory: 32M, processes: 10}\n"));
    const failures: string[] = [];
    for (let round = 0; round < 10; round++) {
      for (const res of await Promise.all(jobs.map((j) => r.bpmAsync("start", j)))) if (res.status !== 0) failures.push(`round ${round} start: ${res.stderr}`);
      for (const res of await Promise.all(jobs.map((j) => r.bpmAsync("stop", j)))) if (res.status !== 0) failures.push(`round ${round} stop: ${res.stderr}`);
    }
    assert.deepEqual(failures, []);
    for (const j of jobs) assert.ok(!existsSync(cgOf(r, j).memory), `${j}'s cgroup is gone`);
    // The root's scope stays for the next start: removing it when empty is what raced.
    assert.ok(existsSync(dirname(cgOf(r, jobs[0]!).memory)));
  });

  it("kills what a cgroup without state still holds before starting afresh", () => {
    const r = root();
    r.job("stale", bashJob("stale", "exec sleep 1000"));
    // What a bpm killed mid-start leaves: the job's cgroup, no state.
    const cg = cgOf(r, "stale");
    assert.equal(r.bpm("start", "stale").status, 0);
    const init = Number(r.bpm("pid", "stale").stdout);
    writeFileSync(join(r.path, "sys/run/bpm/stale/stale.state"), "not a state\n");
    assert.equal(r.bpm("start", "stale").status, 0, "a start over leftovers works");
    assert.notEqual(Number(r.bpm("pid", "stale").stdout), init);
    assert.ok(!existsSync(`/proc/${init}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${init}/status`, "utf8")), "the leftover process was killed");
    assert.equal(read(cg.pids, "cgroup.procs").split("\n").length, 2);
    assert.equal(r.bpm("stop", "stale").status, 0);
  });
});
