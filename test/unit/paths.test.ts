import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { boshRoot, containerId, decodeContainerId, ext, int, jobPaths, toExternal } from "../../src/bosh/paths.ts";

describe("BOSH paths", () => {
  it("uses /var/vcap unless BPM_BOSH_ROOT is set", () => {
    assert.equal(boshRoot({}), "/var/vcap");
    assert.equal(boshRoot({ BPM_BOSH_ROOT: "/srv/x" }), "/srv/x");
  });
  it("lays out every contract path under ROOT", () => {
    const p = jobPaths(ext("/r"), "web", "worker");
    assert.equal(p.config, "/r/jobs/web/config/bpm.yml");
    assert.equal(p.pidfile, "/r/sys/run/bpm/web/worker.pid");
    assert.equal(p.stdoutLog, "/r/sys/log/web/worker.stdout.log");
    assert.equal(p.stderrLog, "/r/sys/log/web/worker.stderr.log");
    assert.equal(p.bpmLog, "/r/sys/log/web/bpm.log");
    assert.equal(p.lockFile, "/r/data/bpm/locks/bpm-web.2eworker.lock");
    assert.equal(p.tmpDir, "/r/data/web/tmp");
    assert.equal(p.storeDir, "/r/store/web");
    assert.equal(p.socketDir, "/r/sys/run/web");
    assert.equal(p.internal.tmpDir, "/var/vcap/data/web/tmp");
    assert.equal(jobPaths(ext("/r"), "web").proc, "web");
  });
  it("maps container paths to the host", () => {
    assert.equal(toExternal(ext("/r"), int("/var/vcap/data/x")), "/r/data/x");
    assert.throws(() => toExternal(ext("/r"), int("/etc")));
  });
  it("escapes container ids and decodes them back", () => {
    assert.equal(containerId("web"), "bpm-web");
    assert.equal(containerId("web", "web"), "bpm-web");
    assert.equal(containerId("web", "worker"), "bpm-web.2eworker");
    assert.equal(containerId("a b/ü"), "bpm-a.20b.2f.c3.bc");
    for (const name of ["web", "web.worker", "a b/ü", "x_y-z", "..."]) assert.equal(decodeContainerId(containerId(name)), name);
    assert.equal(decodeContainerId("bpm-bad.zz"), null);
    assert.equal(decodeContainerId("other"), null);
  });
  it("gives no two pairs of job and process names one id, and keeps ids of names without dots", () => {
    assert.equal(containerId("web", "worker"), "bpm-web.2eworker");
    assert.equal(containerId("a", "b"), "bpm-a.2eb");
    assert.equal(containerId("a.b", "a.b"), "bpm-a.2Eb");
    const names = ["a", "b", "a.b", "b.a", "a.2eb", "a.2Eb", ".", "..a", "a."];
    const ids = new Map<string, string>();
    for (const job of names) {
      for (const proc of names) {
        const id = containerId(job, proc);
        const pair = job === proc ? job : `${job} ${proc}`;
        assert.equal(ids.get(id) ?? pair, pair, `${id} for both ${ids.get(id)} and ${pair}`);
        ids.set(id, pair);
        assert.equal(decodeContainerId(id), job === proc ? job : `${job}.${proc}`);
      }
    }
  });
});
