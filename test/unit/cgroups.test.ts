// Where jobs' cgroups go: pure path logic. What the kernel does with them is
// tested for real: cgroup v1 on this machine (test/integration), v2 in a VM on
// a second kernel (npm run test:vm, test/integration/cgroups.test.ts).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { jobCgroup, pathHash } from "../../src/runtime/cgroups.ts";

describe("cgroups", () => {
  it("places v1 jobs under bpm/ in the memory and pids hierarchies (cpu and cpuacct too, for CPU limits), scoped per BOSH root", () => {
    const v1 = mkdtempSync(join(tmpdir(), "bpm-cgroupv1-"));
    const cg = jobCgroup(v1, "/var/vcap", "bpm-web");
    assert.deepEqual(cg, {
      version: 1, memory: `${v1}/memory/bpm/bpm-web`, pids: `${v1}/pids/bpm/bpm-web`,
      cpu: `${v1}/cpu/bpm/bpm-web`, cpuacct: `${v1}/cpuacct/bpm/bpm-web`,
    });
    assert.match(jobCgroup(v1, "/srv/test", "bpm-web").memory, /memory\/bpm\/root-[0-9a-f]{12}\/bpm-web$/);
    assert.notEqual(jobCgroup(v1, "/srv/test", "bpm-web").memory, jobCgroup(v1, "/srv/test2", "bpm-web").memory);
    rmSync(v1, { recursive: true });
  });

  it("names a BOSH root's scope by the FNV-1a hash of its path", () => {
    // The published FNV-1a 64-bit test vectors.
    assert.equal(pathHash(""), "cbf29ce484222325");
    assert.equal(pathHash("a"), "af63dc4c8601ec8c");
    assert.equal(pathHash("foobar"), "85944171f73967e8");
    const v1 = mkdtempSync(join(tmpdir(), "bpm-cgroupv1-"));
    assert.equal(jobCgroup(v1, "/srv/test", "x").pids, `${v1}/pids/bpm/root-${pathHash("/srv/test").slice(0, 12)}/x`);
    rmSync(v1, { recursive: true });
  });

  it("places v2 jobs in one directory under bpm/, scoped the same way", () => {
    const v2 = mkdtempSync(join(tmpdir(), "bpm-cgroupv2-"));
    writeFileSync(join(v2, "cgroup.controllers"), "memory pids\n");
    mkdirSync(join(v2, "bpm"));
    const dir = `${v2}/bpm/bpm-web`;
    assert.deepEqual(jobCgroup(v2, "/var/vcap", "bpm-web"), { version: 2, memory: dir, pids: dir, cpu: dir, cpuacct: dir });
    assert.match(jobCgroup(v2, "/srv/test", "bpm-web").memory, /\/bpm\/root-[0-9a-f]{12}\/bpm-web$/);
    rmSync(v2, { recursive: true });
  });
});
