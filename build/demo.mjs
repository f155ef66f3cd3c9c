// `npm run demo`: start a sample job in a throwaway BOSH root inside the
// project, show `list` and `logs`, stop it, and clean up. Needs root and the
// vcap user (`bash .ci/setup` makes one).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../src/runtime/cgroups.ts";

const top = resolve(import.meta.dirname, "..");
const bpm = join(top, "dist", "bpm");
if (process.getuid() !== 0) {
  console.error("demo: run as root (bpm starts real containers)");
  process.exit(1);
}
if (!existsSync(bpm)) execFileSync(process.execPath, [join(top, "build", "build.mjs")], { stdio: "inherit" });

const root = join(top, ".demo", `root-${process.pid}`);
mkdirSync(join(root, "jobs", "hello", "config"), { recursive: true });
writeFileSync(join(root, "jobs", "hello", "config", "bpm.yml"), `processes:
- name: hello
  executable: /bin/bash
  args:
  - -c
  - |
    echo "hello from $(id -un) in a container that sees $(ls /proc | grep -c '^[0-9]') processes"
    trap 'echo "got TERM, bye"; exit 0' TERM
    i=0; while :; do echo "tick $((i++))"; sleep 0.2; done
  limits: {memory: 64M, processes: 20}
`);
const env = { ...process.env, BPM_BOSH_ROOT: root };
const run = (...args) => {
  console.log(`\n$ bpm ${args.join(" ")}`);
  const r = spawnSync(bpm, args, { env, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`bpm ${args.join(" ")} exited ${r.status}`);
};
try {
  console.log(`BOSH root: ${root}`);
  run("start", "hello");
  await new Promise((r) => setTimeout(r, 1000));
  run("list");
  run("logs", "hello", "-n", "5");
  run("stop", "hello");
  run("list", "--long");
  run("logs", "hello", "-n", "2");
} finally {
  spawnSync(bpm, ["stop", "hello"], { env, stdio: "ignore" });
  rmSync(root, { recursive: true, force: true });
  // bpm keeps a root's cgroup scope for its jobs; it goes with the root.
  for (const d of cgroupDirs(jobCgroup(cgroupFsRoot(), root, "any"))) spawnSync("rmdir", [dirname(d)]);
}
