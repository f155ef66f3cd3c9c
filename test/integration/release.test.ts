// The BOSH release in release/, built as `bosh create-release` builds it but
// without the bosh CLI: from the files a clone has (git keeps no empty
// directory), the blob where make-blob.sh or `bosh sync-blobs` puts it, each
// package fingerprinted by bosh's rules, the job's templates rendered by ERB
// (Ruby's own where installed, else a rule that makes the rendering exact), and
// the rendered pre-start run as on a VM. Where a real bosh CLI is on PATH, its
// fingerprint is compared with ours.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, constants as C, copyFileSync, existsSync, globSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { BPM, skipUnlessRoot } from "./harness.ts";

const REPO = resolve(import.meta.dirname, "../..");
const RELEASE = join(REPO, "release");
const BLOB = "bpm/bpm-linux-amd64";
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const yml = (dir: string, path: string) => parse(readFileSync(join(dir, path), "utf8"));
const mode = (path: string) => statSync(path).mode & 0o7777;

/** Copies release/ as a clone has it: the files git tracks or would add (so
 * never an empty directory), executable 0755 or else 0644, as git records them. */
function copyAsCloned(to: string): void {
  const r = spawnSync("git", ["-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "release"], { encoding: "utf8" });
  assert.equal(r.status, 0, `git ls-files (this test reads the release as a clone has it): ${r.stderr}`);
  for (const f of r.stdout.split("\0").filter(Boolean)) {
    if (!existsSync(join(REPO, f))) continue; // deleted in the work tree
    const dst = join(to, relative("release", f));
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(join(REPO, f), dst);
    chmodSync(dst, mode(join(REPO, f)) & 0o111 ? 0o755 : 0o644);
  }
}

/** What a package's fingerprint is made of, as bosh-cli's release/pkg/dir_reader.go
 * collects it: packaging (and pre_packaging) without their mode; then every
 * file the spec's globs match in src/, else in blobs/, with its mode as git
 * would record it (the blob's mode counts). src/ must exist, even empty. */
interface Input {
  path: string;
  rel: string;
  mode: "100755" | "100644" | null;
}
function packageInputs(release: string, name: string): Input[] {
  assert.ok(existsSync(join(release, "src")) && lstatSync(join(release, "src")).isDirectory(), "src/: bosh create-release stops at 'lstat …/src: no such file or directory' without it");
  const dir = join(release, "packages", name);
  const spec = yml(dir, "spec");
  assert.equal(spec.name, name, `packages/${name}/spec name`);
  assert.ok(existsSync(join(dir, "packaging")), `packages/${name}/packaging`);
  const inputs: Input[] = ["packaging", "pre_packaging"].filter((f) => existsSync(join(dir, f))).map((f) => ({ path: join(dir, f), rel: f, mode: null }));
  for (const pattern of spec.files as string[]) {
    let found = false;
    for (const base of ["src", "blobs"]) {
      for (const match of globSync(pattern, { cwd: join(release, base) })) {
        const path = join(release, base, match);
        const st = lstatSync(path);
        if (st.isDirectory()) continue;
        assert.ok(st.isFile(), `${path}: this model knows regular files only`);
        found = true;
        if (!inputs.some((i) => i.rel === match)) inputs.push({ path, rel: match, mode: st.mode & 0o111 ? "100755" : "100644" });
      }
    }
    assert.ok(found, `Missing files for pattern '${pattern}' (packages/${name}/spec)`);
  }
  return inputs;
}

/** bosh's fingerprint (release/resource/fingerprint.go, "v2"): the sha256 of
 * "v2", then per input in path order its path, "sha256:" and its digest, and
 * its mode; then the dependencies' names, sorted, joined by ",". */
function fingerprint(inputs: Input[], dependencies: string[] = []): string {
  const byPath = inputs.toSorted((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const chunks = ["v2", ...byPath.map((i) => `${i.rel}sha256:${sha256(readFileSync(i.path))}${i.mode ?? ""}`)];
  if (dependencies.length) chunks.push(dependencies.toSorted().join(","));
  return sha256(chunks.join(""));
}

// A template as the director renders it: ERB with trim mode "-" (bosh's
// renderer), given the job's properties (this job has none) through p and if_p.
const ERB = `
require "erb"
class Context
  def initialize(properties)
    @properties = properties
  end
  def p(name, *default)
    return @properties[name] if @properties.key?(name)
    return default.first unless default.empty?
    raise "Can't find property '#{name}'"
  end
  def if_p(*names)
    yield(*names.map { |n| @properties[n] }) if names.all? { |n| @properties.key?(n) }
  end
  def context
    binding
  end
end
print ERB.new(File.read(ARGV[0]), trim_mode: "-").result(Context.new({}).context)
`;
/** Without Ruby, a template must hold no "<%": ERB then gives it back unchanged (trim mode "-" acts only inside tags). */
function render(template: string): string {
  if (has("ruby")) {
    const r = spawnSync("ruby", ["-e", ERB, template], { encoding: "utf8" });
    assert.equal(r.status, 0, `rendering ${template}: ${r.stderr}`);
    return r.stdout;
  }
  const text = readFileSync(template, "utf8");
  assert.ok(!text.includes("<%"), `${template} has ERB tags: install ruby to render it in this test`);
  return text;
}

/** Renders the job's templates as the agent lays them out: JOB/bin/NAME, 0755 (templates/ for the job's spec). */
function renderJob(release: string, job: string, to: string): Record<string, string> {
  const spec = yml(join(release, "jobs", job), "spec");
  const out: Record<string, string> = {};
  for (const [template, dest] of Object.entries(spec.templates as Record<string, string>)) {
    const path = join(to, dest);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, render(join(release, "jobs", job, "templates", template)), { mode: 0o755 });
    out[dest] = path;
  }
  return out;
}

/** A blob as `bosh sync-blobs` and `bosh add-blob` leave it: a 0600 temporary file, renamed into place. */
function placeLikeBosh(bytes: Buffer, dst: string): void {
  mkdirSync(dirname(dst), { recursive: true });
  const tmp = `${dst}.sync-${process.pid}`;
  const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
  writeSync(fd, bytes);
  closeSync(fd);
  renameSync(tmp, dst);
}

/** Runs packages/bpm/packaging as a compilation VM does: in a directory of the package's files, BOSH_INSTALL_TARGET set. */
function compile(release: string, work: string, target: string, env: NodeJS.ProcessEnv = process.env, blob = readFileSync(join(release, "blobs", BLOB))) {
  placeLikeBosh(blob, join(work, BLOB));
  return spawnSync("bash", [join(release, "packages/bpm/packaging")], { cwd: work, env: { ...env, BOSH_INSTALL_TARGET: target }, encoding: "utf8" });
}

describe("the BOSH release, built as bosh create-release builds it", { skip: skipUnlessRoot }, () => {
  mkdirSync("/var/tmp/bpm-tests", { recursive: true });
  const dir = mkdtempSync("/var/tmp/bpm-tests/release-");
  after(() => rmSync(dir, { recursive: true, force: true }));
  const author = join(dir, "author");

  it("has all bosh reads in a clone, and a package fingerprint that make-blob.sh and bosh sync-blobs agree on", () => {
    copyAsCloned(author);
    const made = spawnSync(join(RELEASE, "make-blob.sh"), [author, BPM], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    assert.equal(yml(author, "config/final.yml").name, "bpm", "the release keeps the name bpm");
    // Every blob recorded with its size and sha256, as bosh verifies them.
    const blobs = yml(author, "config/blobs.yml") as Record<string, { size: number; sha: string }>;
    assert.deepEqual(Object.keys(blobs), [BLOB]);
    const bytes = readFileSync(join(author, "blobs", BLOB));
    assert.ok(bytes.equals(readFileSync(BPM)), "the blob is the built bpm");
    assert.deepEqual(blobs[BLOB], { size: bytes.length, sha: `sha256:${sha256(bytes)}` });
    assert.equal(mode(join(author, "blobs", BLOB)).toString(8), "600", "the blob's mode, as bosh add-blob leaves it");

    // The package is its packaging script and the blob: nothing else (src/.gitkeep is in no package).
    const inputs = packageInputs(author, "bpm");
    assert.deepEqual(inputs.map((i) => [i.rel, i.mode]), [["packaging", null], [BLOB, "100644"]]);
    assert.deepEqual(yml(author, "packages/bpm/spec").dependencies ?? [], []);

    // A teammate: a clone, the committed blobs.yml, the blob fetched by sync-blobs.
    const teammate = join(dir, "teammate");
    copyAsCloned(teammate);
    copyFileSync(join(author, "config/blobs.yml"), join(teammate, "config/blobs.yml"));
    placeLikeBosh(bytes, join(teammate, "blobs", BLOB));
    assert.equal(fingerprint(packageInputs(teammate, "bpm")), fingerprint(inputs), "the same package version for both");

    // Every job: a spec naming it, a monit file (empty for bpm, as the original's), its templates and packages.
    for (const job of readdirSync(join(author, "jobs"))) {
      const spec = yml(join(author, "jobs", job), "spec");
      assert.equal(spec.name, job);
      assert.ok(statSync(join(author, "jobs", job, "monit")).isFile(), `jobs/${job}/monit`);
      for (const t of Object.keys(spec.templates)) assert.ok(existsSync(join(author, "jobs", job, "templates", t)), `jobs/${job}/templates/${t}`);
      for (const p of spec.packages) assert.ok(existsSync(join(author, "packages", p, "spec")), `package ${p} of job ${job}`);
    }
  });

  it("agrees with a real bosh CLI on the package's fingerprint, where one is installed", { skip: !has("bosh") && "no bosh CLI on PATH" }, () => {
    const real = join(dir, "real-bosh");
    copyAsCloned(real);
    assert.equal(spawnSync(join(RELEASE, "make-blob.sh"), [real, BPM]).status, 0);
    const r = spawnSync("bosh", ["create-release", "--force", "--dir", real, "--tarball", join(dir, "real-bosh.tgz")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const builds = yml(real, ".dev_builds/packages/bpm/index.yml").builds as Record<string, unknown>;
    assert.deepEqual(Object.keys(builds), [fingerprint(packageInputs(real, "bpm"))]);
  });

  it("make-blob.sh adds or replaces only its own blobs.yml entry, from any directory", () => {
    const rel = join(dir, "merge");
    copyAsCloned(rel);
    const others = [
      "aaa/first.tgz:\n  size: 10\n  object_id: 3d0f5b1e-aaaa\n  sha: sha256:00ff\n",
      "zzz/last.tgz:\n  size: 20\n  object_id: 9a1c7e42-zzzz\n  sha: 3f786850e387550fdab836ed7e6dc881de23001b\n",
    ];
    writeFileSync(join(rel, "config/blobs.yml"), `${others[0]}${BLOB}:\n  size: 5\n  object_id: stale\n  sha: sha256:dead\n${others[1]}`);
    // Run through a symlink, from an unrelated directory, with a relative RELEASE_DIR.
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere);
    symlinkSync(join(RELEASE, "make-blob.sh"), join(elsewhere, "make-blob"));
    // A small stand-in for the executable: the merge is what is tested here.
    const exe = join(dir, "stand-in-bpm");
    writeFileSync(exe, "#!/bin/sh\necho 100.0.0\n", { mode: 0o755 });
    const run = () => spawnSync("./make-blob", ["../merge", exe], { cwd: elsewhere, encoding: "utf8" });
    let r = run();
    assert.equal(r.status, 0, r.stderr);
    const ours = `${BLOB}:\n  size: ${statSync(exe).size}\n  sha: sha256:${sha256(readFileSync(exe))}\n`;
    // What bosh add-blob writes: every entry, sorted by path; the replaced one without an object_id.
    assert.equal(readFileSync(join(rel, "config/blobs.yml"), "utf8"), others[0] + ours + others[1]);
    assert.equal(mode(join(rel, "blobs", BLOB)).toString(8), "600");

    // Once uploaded (an object_id), the same bytes leave the entry as it is.
    const uploaded = others[0] + ours.replace("  sha:", "  object_id: 5b2e-uploaded\n  sha:") + others[1];
    writeFileSync(join(rel, "config/blobs.yml"), uploaded);
    r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(rel, "config/blobs.yml"), "utf8"), uploaded);

    // A blobs.yml it cannot read: named, with its line; nothing changed, no blob added.
    rmSync(join(rel, "blobs"), { recursive: true });
    writeFileSync(join(rel, "config/blobs.yml"), "foo: [1, 2]\n");
    r = run();
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /config\/blobs\.yml:1: not a blobs\.yml entry/);
    assert.equal(readFileSync(join(rel, "config/blobs.yml"), "utf8"), "foo: [1, 2]\n");
    assert.deepEqual(readdirSync(join(rel, "blobs", "bpm")), []);
    assert.deepEqual(readdirSync(join(rel, "config")).toSorted(), ["blobs.yml", "final.yml"]);
  });

  it("compiles: packaging installs the 0600 blob as an executable bin/bpm, and names glibc 2.28 where it is older", () => {
    const target = join(dir, "packages/bpm");
    const pkg = compile(author, join(dir, "compile"), target);
    assert.equal(pkg.status, 0, pkg.stderr);
    assert.equal(mode(join(target, "bin/bpm")).toString(8), "755");
    assert.equal(spawnSync(join(target, "bin/bpm"), ["version"], { encoding: "utf8" }).stdout, spawnSync(BPM, ["version"], { encoding: "utf8" }).stdout);

    // Bionic's glibc (what getconf says there): refused by name, nothing installed.
    const bin = join(dir, "bionic-bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "getconf"), '#!/bin/sh\n[ "$1" = GNU_LIBC_VERSION ] && echo "glibc 2.27"\n', { mode: 0o755 });
    const old = join(dir, "packages-bionic/bpm");
    const refused = compile(author, join(dir, "compile-bionic"), old, { ...process.env, PATH: `${bin}:${process.env.PATH}` }, Buffer.from("never installed"));
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /bpm needs glibc 2\.28 or later \(Ubuntu Jammy or Noble stemcells\); this stemcell has glibc 2\.27/);
    assert.ok(!existsSync(join(old, "bin/bpm")));
  });

  it("renders a pre-start that, run as on a VM, puts bpm on root's login PATH and makes sys/log/bpm vcap's", () => {
    const rendered = renderJob(author, "bpm", join(dir, "job"));
    assert.ok(existsSync(join(dir, "packages/bpm/bin/bpm")), "the package, compiled by the test before");
    assert.deepEqual(Object.keys(rendered).toSorted(), ["bin/bpm", "bin/pre-start", "bin/setup"]);
    // A private mount namespace: /var seen through an overlay whose changes
    // stay in a tmpfs, an empty /etc/profile.d; the host sees none of it.
    const script = `set -euo pipefail
mount -t tmpfs tmpfs /mnt && mkdir /mnt/upper /mnt/work
mount -t overlay overlay -o lowerdir=/var,upperdir=/mnt/upper,workdir=/mnt/work /var
mount -t tmpfs -o mode=0755 tmpfs /etc/profile.d
mkdir -p /var/vcap/jobs/bpm /var/vcap/sys/log
cp -a ${dir}/job/bin /var/vcap/jobs/bpm/
mkdir -p /var/vcap/packages && ln -s ${dir}/packages/bpm /var/vcap/packages/bpm   # a link, as on a VM
/var/vcap/jobs/bpm/bin/pre-start
echo "profile: $(stat -c '%a %U:%G' /etc/profile.d/bpm.sh)"
echo "log: $(stat -c '%F %U:%G' /var/vcap/sys/log/bpm)"
echo "list: $(su - root -c 'bpm list' 2>&1 | head -1)"
echo "which: $(su - root -c 'command -v bpm' 2>&1)"
echo "path: $(su - root -c '. /etc/profile.d/bpm.sh; echo "$PATH"' 2>&1)"
# A link put where the log directory goes: pre-start changes no owner through it.
rm -r /var/vcap/sys/log/bpm && mkdir /var/vcap/victim && ln -s /var/vcap/victim /var/vcap/sys/log/bpm
/var/vcap/jobs/bpm/bin/pre-start
echo "victim: $(stat -c '%U:%G' /var/vcap/victim)"
`;
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "bash", "-c", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const seen = Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]));
    assert.equal(seen.profile, "644 root:root");
    assert.equal(seen.log, "directory vcap:vcap");
    assert.match(seen.list!, /^Name\s+Pid\s+Status$/, "bpm list in root's login shell");
    assert.equal(seen.which, "/var/vcap/jobs/bpm/bin/bpm");
    assert.equal(seen.path!.split(":").filter((p) => p === "/var/vcap/jobs/bpm/bin").length, 1, `sourced twice, added once: ${seen.path}`);
    assert.equal(seen.victim, "root:root");
  });

  it("has a wrapper that raises the open-files limit and passes every argument on", () => {
    const fake = join(dir, "fake-bpm");
    writeFileSync(fake, '#!/bin/bash\necho "nofile=$(ulimit -n) args=$*"\n', { mode: 0o755 });
    const wrapper = join(dir, "wrapper");
    writeFileSync(wrapper, render(join(author, "jobs/bpm/templates/bpm")).replace("/var/vcap/packages/bpm/bin/bpm", fake));
    const r = spawnSync("bash", ["-c", `ulimit -Sn 256; bash ${wrapper} start my-job -p "two words"`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const [, nofile, args] = /^nofile=(\d+) args=(.*)$/.exec(r.stdout.trim())!;
    assert.ok(Number(nofile) > 256, `open files raised from 256, got ${nofile}`);
    assert.equal(args, "start my-job -p two words");
  });

  it("versions above the original's (0.1.0 … 1.4.38), as release/README.md says; bpm version prints the same", () => {
    const version = spawnSync(BPM, ["version"], { encoding: "utf8" }).stdout.trim();
    assert.match(version, /^100\.\d+\.\d+$/);
    assert.match(readFileSync(join(RELEASE, "README.md"), "utf8"), /`100\.MINOR\.PATCH`/);
    const [major, minor, patch] = version.split(".").map(Number);
    assert.ok(major! > 1 || (major === 1 && (minor! > 4 || (minor === 4 && patch! > 38))), version);
    assert.equal(version, JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version);
  });
});
