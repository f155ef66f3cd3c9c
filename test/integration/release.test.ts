// The BOSH release pieces: a release directory with everything
// `bosh create-release` reads, the blob script, the package's install, and
// the wrapper monit calls.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { BPM, skipUnlessRoot } from "./harness.ts";

const RELEASE = resolve(import.meta.dirname, "../../release");

describe("BOSH release packaging", { skip: skipUnlessRoot }, () => {
  const dir = mkdtempSync("/var/tmp/bpm-tests/release-");
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is a complete release directory once make-blob.sh has added the blob, its record in step", () => {
    const rel = join(dir, "release");
    cpSync(RELEASE, rel, { recursive: true });
    const made = spawnSync(join(RELEASE, "make-blob.sh"), [rel], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    const yml = (p: string) => parse(readFileSync(join(rel, p), "utf8"));
    assert.equal(yml("config/final.yml").name, "bpm");
    assert.ok(yml("config/final.yml").blobstore.provider, "final.yml names a blobstore");
    // Every blob a package lists is in blobs/ and recorded with its size and sha256.
    const blobs = yml("config/blobs.yml") as Record<string, { size: number; sha: string }>;
    const listed = readdirSync(join(rel, "packages")).flatMap((p) => {
      assert.ok(existsSync(join(rel, "packages", p, "packaging")), `packages/${p}/packaging`);
      return yml(`packages/${p}/spec`).files as string[];
    });
    assert.deepEqual(Object.keys(blobs).sort(), listed.sort());
    for (const [path, rec] of Object.entries(blobs)) {
      const bytes = readFileSync(join(rel, "blobs", path));
      assert.equal(rec.size, bytes.length, path);
      assert.equal(rec.sha, `sha256:${createHash("sha256").update(bytes).digest("hex")}`, path);
    }
    assert.ok(readFileSync(join(rel, "blobs", listed[0]!)).equals(readFileSync(BPM)), "the blob is dist/bpm");
    // Every job: a spec, a monit file (empty for bpm, as the original's), its templates and packages.
    for (const job of readdirSync(join(rel, "jobs"))) {
      const spec = yml(`jobs/${job}/spec`);
      assert.equal(spec.name, job);
      assert.ok(statSync(join(rel, "jobs", job, "monit")).isFile(), `jobs/${job}/monit`);
      for (const t of Object.keys(spec.templates)) assert.ok(existsSync(join(rel, "jobs", job, "templates", t)), `jobs/${job}/templates/${t}`);
      for (const p of spec.packages) assert.ok(existsSync(join(rel, "packages", p, "spec")), `package ${p} of job ${job}`);
    }
  });

  it("installs the blob as bin/bpm with the package's script", () => {
    const blob = join(dir, "release/blobs/bpm/bpm-linux-amd64");
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
