// The v2 (unified) layout, against a directory that mimics cgroupfs: these
// machines run v1, which the integration tests exercise for real.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cgroupUsage, cgroupVersion, createCgroup, jobCgroup, pathHash, procsFiles } from "../../src/runtime/cgroups.ts";

describe("cgroups", () => {
  const fake = mkdtempSync(join(tmpdir(), "bpm-cgroupfs-"));
  after(() => rmSync(fake, { recursive: true, force: true }));

  it("places v1 jobs under bpm/ in the memory and pids hierarchies, scoped per BOSH root", () => {
    const v1 = mkdtempSync(join(tmpdir(), "bpm-cgroupv1-"));
    const cg = jobCgroup(v1, "/var/vcap", "bpm-web");
    assert.deepEqual(cg, { version: 1, memory: `${v1}/memory/bpm/bpm-web`, pids: `${v1}/pids/bpm/bpm-web` });
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

  it("on v2 enables the controllers down the tree and writes memory, swap and pids limits", () => {
    writeFileSync(join(fake, "cgroup.controllers"), "cpu memory pids io\n");
    writeFileSync(join(fake, "cgroup.subtree_control"), "");
    assert.equal(cgroupVersion(fake), 2);
    const cg = jobCgroup(fake, "/var/vcap", "bpm-web");
    assert.equal(cg.memory, `${fake}/bpm/bpm-web`);
    // cgroupfs makes the control files; the fake must have those we write to the parent.
    mkdirSync(join(fake, "bpm"));
    writeFileSync(join(fake, "bpm", "cgroup.subtree_control"), "");
    mkdirSync(cg.memory);
    writeFileSync(join(cg.memory, "memory.swap.max"), "max");
    createCgroup(fake, cg, { memoryBytes: 1 << 20, pids: 42 });
    assert.equal(readFileSync(join(fake, "cgroup.subtree_control"), "utf8"), "+memory +pids");
    assert.equal(readFileSync(join(fake, "bpm", "cgroup.subtree_control"), "utf8"), "+memory +pids");
    assert.equal(readFileSync(join(cg.memory, "memory.max"), "utf8"), String(1 << 20));
    assert.equal(readFileSync(join(cg.memory, "memory.swap.max"), "utf8"), "0");
    assert.equal(readFileSync(join(cg.pids, "pids.max"), "utf8"), "42");
    assert.deepEqual(procsFiles(cg), [`${cg.memory}/cgroup.procs`]);
    assert.ok(!existsSync(join(cg.memory, "memory.limit_in_bytes")));
  });

  it("reads usage and OOM kills from memory.events on v2", () => {
    const cg = jobCgroup(fake, "/var/vcap", "bpm-web");
    writeFileSync(join(cg.memory, "memory.current"), "12345\n");
    writeFileSync(join(cg.memory, "pids.current"), "3\n");
    writeFileSync(join(cg.memory, "memory.events"), "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
    assert.deepEqual(cgroupUsage(cg), { memoryBytes: 12345, pids: 3, oomKills: 1 });
  });
});
