import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, formatProblem, parseJobConfig } from "../../src/config/load.ts";
import { parseMemorySize } from "../../src/config/units.ts";

const fixtures = join(import.meta.dirname, "../fixtures/config");
const ctx = { root: "/var/vcap", job: "server" };
const parse = (text: string, c = ctx) => parseJobConfig(text, "bpm.yml", c);

describe("bpm.yml parsing", () => {
  it("accepts every field of the contract, YAML 1.1 booleans and numbers as text", () => {
    const { config, warnings } = parse(readFileSync(join(fixtures, "good/full.yml"), "utf8"));
    const [p, w] = config.processes;
    assert.deepEqual(p!.args, ["--port", "2424", "--verbose", "yes", "1.50"]);
    assert.deepEqual(p!.env, { FOO: "BAR", ENABLED: "on", COUNT: "3", EMPTY: "" });
    assert.equal(p!.ephemeral_disk, true);
    assert.equal(p!.persistent_disk, true);
    assert.deepEqual(p!.additional_volumes[0], { path: "/var/vcap/data/sockets", writable: true, allow_executions: false, mount_only: false, shared: false, source: "/var/vcap/data/sockets" });
    assert.equal(p!.unsafe.host_pid_namespace, false);
    assert.equal(p!.shutdown_signal, "INT");
    assert.equal(p!.limits.open_files, 1024);
    assert.equal(w!.executable, "worker");
    assert.equal(w!.shutdown_signal, "TERM");
    assert.deepEqual(warnings.map(formatProblem), ["bpm.yml:29:3: processes[0].future_option: unknown key, ignored"]);
  });

  it("applies YAML merge keys as the original's decoder did: explicit keys win, then the first map listed", () => {
    const { config } = parse(`common: &common {LANG: C, FOO: from-anchor}
more: &more {FOO: from-more, BAR: from-more, BAZ: 2}
base: &base
  executable: /bin/web
  limits: {memory: 1G}
processes:
- <<: *base
  name: web
  env:
    <<: [*common, *more]
    FOO: explicit
- {<<: *base, name: worker, executable: /bin/worker}
`);
    const [web, worker] = config.processes;
    assert.deepEqual(web!.env, { FOO: "explicit", LANG: "C", BAR: "from-more", BAZ: "2" });
    assert.equal(web!.executable, "/bin/web");
    assert.equal(web!.limits.memory, 1073741824);
    assert.equal(worker!.executable, "/bin/worker");
    assert.equal(worker!.limits.memory, 1073741824);
  });

  it("checks merged values where they were written, and refuses a merge of something else", () => {
    assert.throws(() => parse("base: &base {open_files: lots}\nprocesses:\n- name: a\n  executable: /a\n  limits: {<<: *base}\n"), (e: unknown) => {
      assert.equal((e as ConfigError).problems.map(formatProblem).join(), 'bpm.yml:1:26: processes[0].limits.open_files: expected a whole number, got "lots"');
      return true;
    });
    assert.throws(() => parse("processes:\n- name: a\n  executable: /a\n  env: {<<: [1, 2]}\n"), /processes\[0\]\.env\.<<: a merge key \(<<\) takes a map or a list of maps/);
  });

  for (const file of readdirSync(join(fixtures, "bad")).filter((f) => f.endsWith(".yml"))) {
    it(`rejects ${file} with every problem and its position`, () => {
      const expected = readFileSync(join(fixtures, "bad", file.replace(/\.yml$/, ".expected")), "utf8");
      assert.throws(
        () => parse(readFileSync(join(fixtures, "bad", file), "utf8")),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.equal(e.problems.map(formatProblem).join("\n") + "\n", expected);
          return true;
        },
      );
    });
  }

  it("reports an unknown key in every kind of map and still accepts the file", () => {
    const yaml = [
      "processes:", "- name: s", "  executable: x", "  hooks: {pre_start: /bin/true, post_stop: y}",
      "  limits: {memory: 1G, swap: 2}", "  additional_volumes:", "  - {path: /var/vcap/data/v, size: 3}",
      "  unsafe: {privileged: false, root: true}", "extra: 1", "",
    ].join("\n");
    const { config, warnings } = parse(yaml);
    assert.equal(config.processes[0]!.hooks.pre_start, "/bin/true");
    assert.deepEqual(warnings.map((w) => w.field), [
      "processes[0].hooks.post_stop", "processes[0].limits.swap", "processes[0].additional_volumes[0].size",
      "processes[0].unsafe.root", "extra",
    ]);
  });

  it("accepts volume paths under a moved ROOT as the original did", () => {
    const c = { root: "/srv/bosh", job: "server" };
    const yaml = "processes:\n- name: s\n  executable: x\n  additional_volumes:\n  - path: /srv/bosh/data/sockets\n  - path: /var/vcap/data/sockets\n";
    assert.equal(parse(yaml, c).config.processes[0]!.additional_volumes.length, 2);
    assert.throws(() => parse(yaml.replace("/srv/bosh/data/sockets", "/srv/bosh/store/server"), c), /job's own data or store/);
  });

  it("takes null and empty fields for absent ones, as the original's Go structs did", () => {
    // What Go's YAML marshaller writes for a config with only a name and an
    // executable (every field, nil ones as null, empty ones as "", [] and {}),
    // then the same with the nested maps present and empty inside.
    const goShaped = [
      "processes:", "- name: server", "  executable: /bin/server", "  args: []", "  env: {}", "  additional_volumes: []",
      "  capabilities: []", "  ephemeral_disk: false", "  hooks: null", "  limits: null", "  persistent_disk: false",
      '  workdir: ""', "  unsafe: null", '  shutdown_signal: ""',
      "- name: nested", "  executable: /bin/nested", '  hooks: {pre_start: ""}',
      "  limits: {memory: null, open_files: null, processes: null, core_file_size: null}",
      '  unsafe: {privileged: null, unrestricted_volumes: null, host_pid_namespace: ""}',
      "  args:", "  env:", "  capabilities:", "  additional_volumes:", "  workdir:", "  shutdown_signal:", "",
    ].join("\n");
    const { config, warnings } = parse(goShaped);
    assert.deepEqual(warnings, []);
    for (const p of config.processes) {
      assert.equal(p.workdir, undefined, p.name);
      assert.equal(p.shutdown_signal, "TERM", p.name);
      assert.equal(p.hooks.pre_start, undefined, p.name);
      assert.deepEqual(p.limits, {}, p.name);
      assert.deepEqual(p.unsafe, { privileged: false, host_pid_namespace: false, unrestricted_volumes: [] }, p.name);
      assert.deepEqual([p.args, p.env, p.capabilities, p.additional_volumes], [[], {}, [], []], p.name);
    }
    // An environment value is a value: empty stays empty.
    assert.deepEqual(parse('processes:\n- name: a\n  executable: /a\n  env: {A: "", B: null, C:}\n').config.processes[0]!.env, { A: "", B: "", C: "" });
    // What is required stays required when empty.
    assert.throws(() => parse('processes:\n- name: a\n  executable: ""\n'), (e: Error) => e.message === "bpm.yml:3:15: processes[0].executable: is required");
    assert.throws(() => parse('processes:\n- name: a\n  executable: /a\n  additional_volumes: [{path: ""}]\n'), /additional_volumes\[0\]\.path: is required/);
  });

  it("joins several problems into one message for start", () => {
    assert.throws(() => parse("processes:\n- name: a\n"), (e: Error) => e.message === "bpm.yml:2:3: processes[0].executable: is required");
  });

  it("parses memory sizes with 1024-based units", () => {
    assert.equal(parseMemorySize("1G"), 2 ** 30);
    assert.equal(parseMemorySize("512MB"), 512 * 2 ** 20);
    assert.equal(parseMemorySize("1.5k"), 1536);
    assert.equal(parseMemorySize("100B"), 100);
    assert.equal(parseMemorySize("12"), null);
    assert.equal(parseMemorySize("0M"), null);
    assert.equal(parseMemorySize("1Q"), null);
  });

  it("reads an empty file (or only comments and ---) as a job with no processes, as the original did", () => {
    for (const text of ["", "---\n", "# nothing rendered\n---\n# here\n"]) assert.deepEqual(parse(text).config, { processes: [] });
  });

  it("refuses what no file bpm derives can hold: names out of charset or too long, env keys with = or control characters, NULs", () => {
    const one = (extra: string, name = "web") => `processes:\n- name: ${name}\n  executable: /bin/web\n${extra}`;
    const problems = (text: string) => {
      try {
        parse(text);
      } catch (e) {
        return (e as ConfigError).problems.map(formatProblem).join("\n");
      }
      return "";
    };
    assert.match(problems(one("", '"a\\nb"')), /^bpm.yml:2:9: processes\[0\]\.name: a name may hold only letters, digits, "_", "-" and "\."/);
    assert.match(problems(one("", "x".repeat(65))), /at most 64 characters/);
    assert.match(problems(one("", "é")), /a name may hold only/);
    assert.match(problems(one("", ".".repeat(64))), /container id bpm-server\.2e(\.2E){64} is \d+ bytes long, more than 200/);
    assert.equal(problems(one("", "web.worker_2-x")), "");
    assert.match(problems(one('  env: {"PATH=/x:": ""}\n')), /^bpm.yml:4:\d+: processes\[0\]\.env\.PATH=\/x:: an environment variable's name may not contain "="/);
    assert.match(problems(one('  env: {"A\\eB": x}\n')), /may not contain control characters/);
    assert.match(problems(one('  args: [ok, "a\\0b"]\n')), /^bpm.yml:4:14: processes\[0\].args\[1\]: contains a NUL character/);
    assert.match(problems(one('  env: {A: "\\0"}\n')), /^bpm.yml:4:12: processes\[0\].env.A: contains a NUL character/);
    assert.match(problems(one("  limits: {processes: 9007199254740991}\n")), /^bpm.yml:4:23: processes\[0\].limits\.processes: must be at most 4194304 \(the kernel's largest pid limit\)/);
  });

  it("refuses volumes that reach bpm's own state, keeps the job's own run dir read-only and other jobs' dirs", () => {
    const vol = (path: string, opts = "", kind = "additional_volumes") =>
      `processes:\n- name: server\n  executable: /bin/s\n  ${kind === "additional_volumes" ? "" : "unsafe:\n    "}${kind}:\n  ${kind === "additional_volumes" ? "" : "  "}- {path: ${path}${opts}}\n`;
    const refused = (text: string) => assert.throws(() => parse(text), /bpm's own state|another job's state|this job's state/, text);
    for (const p of ["/var/vcap/data/bpm", "/var/vcap/data/bpm/locks", "/var/vcap/sys/run/bpm", "/var/vcap/sys/run/bpm/other", "/var/vcap/data/sys/run/bpm/other"]) {
      refused(vol(p));
      refused(vol(p, ", writable: true"));
      refused(vol(p, "", "unrestricted_volumes"));
    }
    for (const p of ["/var/vcap/data", "/var/vcap/sys/run", "/var/vcap/sys/run/bpm/server"]) refused(vol(p, ", writable: true"));
    const fine = ["/var/vcap/sys/run/bpm/server", "/var/vcap/data", "/var/vcap/data/garden", "/var/vcap/sys/run/haproxy"];
    for (const p of fine) parse(vol(p, ", mount_only: true"));
    parse(vol("/var/vcap/data/garden", ", writable: true"));
    parse(vol("/var/vcap/jobs/*/config/x.yml", ", mount_only: true", "unrestricted_volumes"));
    const moved = { root: "/srv/root", job: "server" };
    assert.throws(() => parse(vol("/srv/root/data/bpm/locks"), moved), /is bpm's own state \(\/srv\/root\/data\/bpm\)/);
    assert.equal(parse(vol("/var/vcap/data/garden"), moved).config.processes[0]!.additional_volumes[0]!.source, "/srv/root/data/garden");
  });

  it("reads up to 50,000 YAML tokens, duplicate keys found with one Set per map, and refuses more where they run out", () => {
    const envOf = (n: number) => Array.from({ length: n }, (_, i) => `    K${i}: v`).join("\n");
    const text = (n: number) => `processes:\n- name: server\n  executable: /bin/s\n  env:\n${envOf(n)}\n`;
    assert.equal(Object.keys(parse(text(6_000)).config.processes[0]!.env).length, 6_000);
    assert.throws(() => parse(text(6_000) + "    K5: again\n"), /bpm.yml:6005:5: invalid YAML: duplicate key "K5"/);
    // 90,000 keys: 1.6 MB, under the size limit, and 630,000 tokens.
    assert.throws(() => parse(text(90_000)), /bpm.yml:6251:12: invalid YAML: more than 50000 tokens/);
  });
});
