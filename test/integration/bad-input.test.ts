// Broken configs and `run` flags: each gets a clear error naming what is
// wrong, exit status 1, and leaves nothing behind: no process, mount, cgroup,
// pidfile or file (bpm.log, where the failure is recorded, aside).
import assert from "node:assert/strict";
import { chownSync, existsSync, lchownSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { lookupUser } from "../../src/runtime/users.ts";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { containerId } from "../../src/bosh/paths.ts";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../../src/runtime/cgroups.ts";
import { bashJob, skipUnlessRoot, useRoot, type Root } from "./harness.ts";

const CORPUS = resolve(import.meta.dirname, "../fixtures/bad-input");
const expected: Record<string, string> = JSON.parse(readFileSync(join(CORPUS, "expected.json"), "utf8"));

/** Cases made here rather than stored: too big, binary, or generated. */
const generated: Record<string, { body: string | Buffer; error: RegExp }> = {
  // An empty file is a job with no processes (as the original read it): the process is not in it.
  "empty-file": { body: "", error: /^process "job" not present in job configuration \(ROOT\/jobs\/job\/config\/bpm\.yml\)$/ },
  "binary-garbage": { body: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)), error: /bpm\.yml:1:1: not a text file \(it holds binary data\)$/ },
  "ten-megabytes": { body: "processes:\n" + "# padding\n".repeat(1_048_576), error: /bpm\.yml:0:0: file is too large \(10485771 bytes; at most 2097152\)$/ },
  "deeply-nested": { body: "processes: " + "[".repeat(20_000) + "]".repeat(20_000) + "\n", error: /invalid YAML: nested too deeply$/ },
  "nested-65-levels": { body: "processes: " + "[".repeat(70) + "]".repeat(70) + "\n", error: /: nested more than 64 levels deep$/ },
  "alias-bomb": {
    body: "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" +
      Array.from({ length: 11 }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(", ")}]`).join("\n") + "\nprocesses: [*a11]\n",
    error: /: more than 100 YAML aliases$/,
  },
};

const runFlags: [string[], string][] = [
  [["-v", "/var/vcap/data/x:writeable"], 'invalid volume "/var/vcap/data/x:writeable": unknown option "writeable" (options: writable, mount_only, allow_executions, shared)'],
  [["-v", "/var/vcap/data/x:writable,,shared"], 'invalid volume "/var/vcap/data/x:writable,,shared": unknown option "" (options: writable, mount_only, allow_executions, shared)'],
  [["-v", "/etc/passwd"], 'invalid volume "/etc/passwd": volume path must be inside /var/vcap, got "/etc/passwd"'],
  [["-v", "relative/path"], 'invalid volume "relative/path": volume path must be absolute and canonical (no "..", "//" or trailing "/"), got "relative/path"'],
  [["-v", "/var/vcap/data/../../etc"], 'invalid volume "/var/vcap/data/../../etc": volume path must be absolute and canonical (no "..", "//" or trailing "/"), got "/var/vcap/data/../../etc"'],
  [["-v", "/var/vcap/store/errand"], 'invalid volume "/var/vcap/store/errand": volume path "/var/vcap/store/errand" is the job\'s own data or store directory: use ephemeral_disk or persistent_disk'],
  [["-v", "/var/vcap/data/escape:writable"], "failed to run job-process: volume /var/vcap/data/escape leads outside ROOT (to /etc): a volume must stay inside ROOT"],
  [["-v", "/var/vcap/data/planted/link/sub:writable"], "failed to run job-process: volume /var/vcap/data/planted/link/sub: ROOT/data/planted/link is a symlink that root does not control (refused: a job may have planted it)"],
  [["-v", "/var/vcap/data/absent:mount_only"], "failed to run job-process: volume /var/vcap/data/absent is mount_only but ROOT/data/absent does not exist"],
  [["-e", "NOEQUALS"], 'invalid environment variable "NOEQUALS": expected KEY=VALUE'],
  [["-e", "=value"], 'invalid environment variable "=value": the name is empty'],
  [["-v"], "flag -v needs a value"],
  [["--env"], "flag --env needs a value"],
];

/** Every path under dir, relative, without following symlinks. */
function walk(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return e.isDirectory() ? [rel, ...walk(dir, rel)] : [rel];
  });
}

/** Everything a failed command could have left: files, cgroups, mounts, processes. */
function snapshot(r: Root, job: string) {
  // bpm.log and the directories holding it record the failure; data/bpm holds locks and the
  // helper, sys/run/bpm the plans handed to it (empty once read) and the parse of a bpm.yml
  // that was valid (config.cache: the refusal was about something else).
  const expected = new Set(["sys", "sys/log", `sys/log/${job}`, `sys/log/${job}/bpm.log`, "sys/run", "sys/run/bpm"]);
  const cache = (p: string) => /^sys\/run\/bpm\/[^/]+(\/config\.cache)?$/.test(p) && !p.endsWith(".pid");
  const files = walk(r.path).filter((p) => !p.startsWith("jobs") && !p.startsWith("data/bpm") && !expected.has(p) && !cache(p)).sort();
  const cgroups = cgroupDirs(jobCgroup(cgroupFsRoot(), r.path, containerId(job))).filter(existsSync);
  const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(r.path));
  const processes = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`bad-input-marker-${job}`);
    } catch {
      return false;
    }
  });
  return { files, cgroups, mounts, processes };
}

describe("bad input", { skip: skipUnlessRoot }, () => {
  const root = useRoot("bad-input");
  const show = (r: Root, s: string) => s.replaceAll(r.path, "ROOT");

  it("has a corpus of at least 40 cases", () => {
    assert.ok(Object.keys(expected).length + Object.keys(generated).length + runFlags.length >= 40);
    for (const f of readdirSync(CORPUS).filter((f) => f.endsWith(".yml"))) assert.ok(f.slice(0, -4) in expected, `${f} has an expected error`);
  });

  it("refuses every broken config with a clear error and changes nothing", () => {
    const r = root();
    mkdirSync(join(r.path, "data"), { recursive: true });
    if (!existsSync(join(r.path, "data", "escape"))) symlinkSync("/etc", join(r.path, "data", "escape"), "dir");
    const before = snapshot(r, "job");
    const cases: [string, string | Buffer, (err: string) => void][] = [
      ...Object.entries(expected).map(([name, msg]) => [name, readFileSync(join(CORPUS, `${name}.yml`)), (err: string) => assert.equal(err, msg, name)] as [string, Buffer, (e: string) => void]),
      ...Object.entries(generated).map(([name, c]) => [name, c.body, (err: string) => assert.match(err, c.error, name)] as [string, string | Buffer, (e: string) => void]),
    ];
    for (const [name, body, check] of cases) {
      r.job("job", "");
      writeFileSync(join(r.path, "jobs/job/config/bpm.yml"), body);
      const res = r.bpm("start", "job");
      assert.equal(res.status, 1, `${name}: ${res.stderr}`);
      assert.equal(res.stdout, "", name);
      assert.match(res.stderr, /^Error: [^\n]+\n$/, `${name}: one line`);
      check(show(r, res.stderr).replace(/^Error: /, "").trimEnd());
      assert.deepEqual(snapshot(r, "job"), before, `${name} left something behind`);
    }
    // The failures are recorded where operators look.
    assert.match(readFileSync(join(r.path, "sys/log/job/bpm.log"), "utf8"), /"message":"bpm.start.failed-to-parse-config"/);
  });

  it("refuses bad run flags with a clear error and changes nothing", () => {
    const r = root();
    mkdirSync(join(r.path, "data"), { recursive: true });
    if (!existsSync(join(r.path, "data", "escape"))) symlinkSync("/etc", join(r.path, "data", "escape"), "dir");
    // What a job can do in a directory it owns: a symlink of its own.
    const planted = join(r.path, "data", "planted");
    mkdirSync(planted, { recursive: true });
    if (!existsSync(join(planted, "link"))) symlinkSync("/etc", join(planted, "link"), "dir");
    const vcap = lookupUser("vcap");
    chownSync(planted, vcap.uid, vcap.gid);
    lchownSync(join(planted, "link"), vcap.uid, vcap.gid);
    r.job("errand", bashJob("errand", "echo bad-input-marker-errand; sleep 5"));
    const before = snapshot(r, "errand");
    for (const [flags, message] of runFlags) {
      const res = r.bpm("run", "errand", ...flags);
      assert.equal(res.status, 1, flags.join(" "));
      assert.equal(show(r, res.stderr).split("\n")[0], `Error: ${message}`, flags.join(" "));
      assert.equal(res.stdout, "");
      const after = snapshot(r, "errand");
      assert.deepEqual(after, before, `${flags.join(" ")} left something behind`);
    }
    assert.ok(!existsSync(join(r.path, "sys/log/errand/errand.stdout.log")), "the errand never ran");
  });
});
