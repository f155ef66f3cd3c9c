// The BOSH release pieces: the blob script, the package's install, and the
// wrapper monit calls.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { BPM, skipUnlessRoot } from "./harness.ts";

const RELEASE = resolve(import.meta.dirname, "../../release");

describe("BOSH release packaging", { skip: skipUnlessRoot }, () => {
  const dir = mkdtempSync("/var/tmp/bpm-tests/release-");
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("makes the blob with its checksum, and the package installs it as bin/bpm", () => {
    const made = spawnSync(join(RELEASE, "make-blob.sh"), [join(dir, "blobs")], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    const blob = join(dir, "blobs/bpm/bpm-linux-amd64");
    const sum = spawnSync("sha256sum", ["-c", "bpm-linux-amd64.sha256"], { cwd: join(dir, "blobs/bpm"), encoding: "utf8" });
    assert.equal(sum.status, 0, sum.stdout + sum.stderr);
    assert.ok(readFileSync(blob).equals(readFileSync(BPM)), "the blob is dist/bpm");
    // BOSH runs packaging in a directory holding the package's files, with BOSH_INSTALL_TARGET set.
    const work = join(dir, "compile");
    mkdirSync(join(work, "bpm"), { recursive: true });
    copyFileSync(blob, join(work, "bpm/bpm-linux-amd64"));
    const target = join(dir, "packages/bpm");
    const pkg = spawnSync("bash", [join(RELEASE, "packages/bpm/packaging")], { cwd: work, env: { ...process.env, BOSH_INSTALL_TARGET: target }, encoding: "utf8" });
    assert.equal(pkg.status, 0, pkg.stderr);
    assert.equal(spawnSync(join(target, "bin/bpm"), ["--version"], { encoding: "utf8" }).stdout, spawnSync(BPM, ["--version"], { encoding: "utf8" }).stdout);
    assert.match(readFileSync(join(RELEASE, "packages/bpm/spec"), "utf8"), /- bpm\/bpm-linux-amd64/);
    assert.match(readFileSync(join(RELEASE, "jobs/bpm/spec"), "utf8"), /bpm: bin\/bpm/);
  });

  it("has a wrapper that raises the open-files limit and passes every argument on", () => {
    const fake = join(dir, "fake-bpm");
    writeFileSync(fake, '#!/bin/bash\necho "nofile=$(ulimit -n) args=$*"\n');
    chmodSync(fake, 0o755);
    const wrapper = join(dir, "wrapper");
    writeFileSync(wrapper, readFileSync(join(RELEASE, "jobs/bpm/templates/bpm"), "utf8").replace("/var/vcap/packages/bpm/bin/bpm", fake));
    const r = spawnSync("bash", ["-c", `ulimit -Sn 256; bash ${wrapper} start my-job -p "two words"`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const [, nofile, args] = /^nofile=(\d+) args=(.*)$/.exec(r.stdout.trim())!;
    assert.ok(Number(nofile) > 256, `open files raised from 256, got ${nofile}`);
    assert.equal(args, "start my-job -p two words");
  });
});
