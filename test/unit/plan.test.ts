import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ext, jobPaths } from "../../src/bosh/paths.ts";
import { parseJobConfig } from "../../src/config/load.ts";
import { PLAN_VERSION } from "../../src/plan/wire.ts";
import { encodePlan } from "../../src/plan/encode.ts";
import { plan, root } from "./plan-fixture.ts";

const base = "processes:\n- name: web\n  executable: /bin/web\n";

describe("launch plan", () => {
  it("isolates in mount, ipc, uts and pid namespaces, never the network", () => {
    assert.deepEqual(plan(base).namespaces, ["mount", "ipc", "uts", "pid"]);
    assert.deepEqual(plan(base + "  unsafe: {host_pid_namespace: true}\n").namespaces, ["mount", "ipc", "uts"]);
  });
  it("runs as the job user with no capabilities and no_new_privs", () => {
    const p = plan(base);
    assert.deepEqual(p.user, { uid: 1000, gid: 1000, groups: [1000, 4] });
    assert.deepEqual(p.capabilities, []);
    assert.equal(p.noNewPrivs, true);
    assert.deepEqual(plan(base + "  capabilities: [NET_BIND_SERVICE, CAP_NET_BIND_SERVICE]\n").capabilities, ["NET_BIND_SERVICE"]);
  });
  it("gives a privileged job root, the original's capabilities (0-37) the host allows, and no nosuid mount", () => {
    const p = plan(base + "  unsafe: {privileged: true}\n");
    assert.deepEqual(p.user, { uid: 0, gid: 0, groups: [0] });
    assert.deepEqual(p.capabilities, ["CHOWN", "KILL"], "the host's CHOWN, KILL and PERFMON: PERFMON (38) was never in the set");
    assert.equal(p.noNewPrivs, false);
    assert.ok(!p.mounts.some((m) => m.kind === "mask"));
    assert.deepEqual(p.mounts.filter((m) => "flags" in m && m.flags.includes("nosuid")), []);
    assert.deepEqual(p.mounts.at(-1), { kind: "rootro", flags: ["ro", "nodev"] });
    assert.deepEqual(plan(base).mounts.at(-1), { kind: "rootro", flags: ["ro", "nosuid", "nodev"] });
  });
  it("sets rlimits from the config, or passes on bpm's own open-files limit", () => {
    assert.deepEqual(plan(base).rlimits, [{ name: "nofile", soft: 4096, hard: 4096 }]);
    assert.deepEqual(plan(base + "  limits: {open_files: 10, core_file_size: 0}\n").rlimits, [
      { name: "nofile", soft: 10, hard: 10 }, { name: "core", soft: 0, hard: 0 },
    ]);
  });
  it("mounts the job's places with the contract's options, parents first", () => {
    const p = plan(base + "  ephemeral_disk: true\n  additional_volumes: [{path: /var/vcap/data/shared, writable: true}]\n");
    const binds = p.mounts.filter((m) => m.kind === "bind") as Array<{ target: string; source: string; flags: string[] }>;
    const at = (t: string) => binds.find((b) => b.target === t)!;
    assert.deepEqual(at("/tmp").flags.sort(), ["nodev", "noexec", "nosuid"]);
    assert.deepEqual(at("/var/vcap/data/web").flags.sort(), ["nodev", "noexec", "nosuid"]);
    assert.deepEqual(at("/var/vcap/jobs/web").flags.sort(), ["nodev", "nosuid", "ro"]);
    assert.equal(at("/var/vcap/sys/log/web").source, "/var/vcap/data/sys/log/web", "a symlink root owns is resolved for the helper");
    assert.deepEqual(p.mounts.filter((m) => m.kind === "symlink" && m.target === "/bin"), [{ kind: "symlink", linkTarget: "usr/bin", target: "/bin" }]);
    assert.equal(at("/tmp").source, "/var/vcap/data/web/tmp");
    assert.ok(at("/etc").flags.includes("ro"));
    assert.deepEqual(at("/var/vcap/data/shared").flags.sort(), ["nodev", "noexec", "nosuid"]);
    const order = binds.map((b) => b.target);
    assert.ok(order.indexOf("/var/vcap/data/web") < order.indexOf("/var/vcap/data/web/tmp"));
    assert.ok(p.mounts.some((m) => m.kind === "mask" && m.target === "/proc/kcore"));
    assert.equal(p.mounts.at(-1)!.kind, "rootro");
  });
  it("has the helper create the job's directories and volumes, owned by the job, before the hook", () => {
    const p = plan(base + "  persistent_disk: true\n  hooks: {pre_start: /var/vcap/jobs/web/bin/pre}\n  additional_volumes: [{path: /var/vcap/data/shared, writable: true}, {path: /var/vcap/data/given, mount_only: true}]\n");
    assert.deepEqual(p.preps.map((d) => [d.path, d.mode.toString(8), d.uid, d.kind]), [
      ["/var/vcap/data/web", "700", 1000, "dir"],
      ["/var/vcap/data/web/tmp", "700", 1000, "dir"],
      ["/var/vcap/data/sys/run/web", "700", 1000, "dir"],
      ["/var/vcap/data/sys/run/bpm/web", "700", 0, "dir"],
      ["/var/vcap/data/sys/run/bpm/web/web.root", "700", 0, "dir"],
      ["/var/vcap/store/web", "700", 1000, "dir"],
      ["/var/vcap/data/shared", "700", 1000, "volume"],
    ]);
    assert.equal(p.hook?.path, "/var/vcap/jobs/web/bin/pre");
    const fields = encodePlan(p, []).toString().split("\0");
    assert.deepEqual(fields.slice(fields.indexOf("hook"), fields.indexOf("hook") + 2), ["hook", "/var/vcap/jobs/web/bin/pre"]);
  });
  it("drops unrestricted volumes under a path bpm already mounts", () => {
    const p = plan(base + "  unsafe: {unrestricted_volumes: [{path: /var/vcap/jobs/web/config/x.yml}, {path: /opt/shared}]}\n");
    const targets = p.mounts.filter((m) => m.kind === "bind").map((m) => (m as { target: string }).target);
    assert.ok(!targets.includes("/var/vcap/jobs/web/config/x.yml"));
    assert.ok(targets.includes("/opt/shared"));
  });
  it("adds the default environment under the job's own", () => {
    const env = plan(base + "  env: {LANG: C}\n").env;
    assert.equal(env.LANG, "C");
    assert.equal(env.TMPDIR, "/var/vcap/data/web/tmp");
    assert.equal(env.HOME, "/var/vcap/data/web");
  });
  it("encodes the plan as versioned, kind-named, length-prefixed NUL-separated records", () => {
    const buf = encodePlan(plan(base + "  args: [a, 'b c']\n"), []);
    const nl = buf.indexOf(10);
    const [version, kind, len] = buf.subarray(0, nl).toString().split(" ");
    assert.equal(version, PLAN_VERSION);
    assert.equal(kind, "launch");
    assert.equal(Number(len), buf.length - nl - 1);
    const fields = buf.subarray(nl + 1).toString().split("\0");
    assert.equal(fields.at(-1), "");
    assert.equal(fields.at(-2), "end");
    const argsAt = fields.indexOf("exe");
    assert.deepEqual(fields.slice(argsAt, argsAt + 8), ["exe", "/bin/web", "arg", "/bin/web", "arg", "a", "arg", "b c"]);
  });
});
