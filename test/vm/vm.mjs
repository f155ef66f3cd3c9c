// Runs one command as root in a VM on a second, real kernel: Debian's own
// (test/vm/get-kernel.sh), booted under qemu with TCG (no KVM here) and
// cgroup v2 only, the way BOSH's current stemcells boot. The guest sees this
// machine's filesystem at the same paths (9p, read-only, under a tmpfs
// overlay: it may write anywhere, nothing reaches the host) and hands back
// the command's output on the console and its exit status through a
// directory of this run's own.
//
// Three ways to boot: bare (the default), where the command's runner
// (guest.py) is the guest's pid 1 and cgroup2 is mounted plainly; systemd
// (--systemd), where the guest boots systemd as Noble stemcells do (cgroup
// v2 only), systemd mounts cgroup2 itself, and the command runs in a system
// service (test/vm/systemd/), as monit does on a stemcell; and jammy
// (--jammy), systemd on the cgroup v1 hybrid layout as Jammy stemcells boot
// (v1 controllers under /sys/fs/cgroup/CONTROLLER, a name=systemd hierarchy
// at /sys/fs/cgroup/systemd, cgroup2 at /sys/fs/cgroup/unified), the
// command the main process of runit.service with KillMode=process, as monit
// runs under runit there (test/vm/jammy/).
//
//   node test/vm/vm.mjs [--systemd | --jammy] [--env NAME]... [--timeout SECONDS] [--] CMD ARGS...
//   npm run vm -- CMD ARGS...
//
// The command runs in the current directory, with PATH, LANG, TERM and every
// BPM_* and NODE_* variable of this environment (add others with --env).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const top = resolve(import.meta.dirname, "../..");
const cache = join(top, ".vm");

/** The modules the guest loads before it can mount anything, in an order that satisfies their dependencies. */
const WANTED = ["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/** The extracted kernel package: its image and its modules' directory. */
export function findKernel() {
  const dir = join(cache, "kernel");
  const pkg = existsSync(dir) ? readdirSync(dir).filter((d) => /^linux-image-\d/.test(d)).sort().pop() : undefined;
  if (!pkg) throw new Error(`no kernel in ${dir}: run \`bash test/vm/get-kernel.sh\` (or \`bash .ci/setup\`)`);
  const version = pkg.replace(/^linux-image-/, "");
  return { version, image: join(dir, pkg, "boot", `vmlinuz-${version}`), modules: join(dir, pkg, "lib", "modules", version) };
}

/** Every module file under dir by name, and what each one depends on (its .modinfo "depends="). */
function moduleGraph(dir) {
  const files = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith(".ko")) files.set(e.name.slice(0, -3).replace(/-/g, "_"), join(d, e.name));
    }
  };
  walk(join(dir, "kernel"));
  const deps = (name) => {
    const bytes = readFileSync(files.get(name));
    const at = bytes.indexOf("\0depends=");
    if (at < 0) return [];
    const end = bytes.indexOf(0, at + 1);
    return bytes.subarray(at + 9, end).toString().split(",").filter(Boolean).map((d) => d.replace(/-/g, "_"));
  };
  return { files, deps };
}

/** The wanted modules and their dependencies, dependencies first. */
function moduleOrder(dir) {
  const { files, deps } = moduleGraph(dir);
  const order = [];
  const visit = (name) => {
    if (order.includes(name)) return;
    if (!files.has(name)) throw new Error(`module ${name} is not in ${dir}`);
    for (const d of deps(name)) visit(d);
    order.push(name);
  };
  for (const m of WANTED) visit(m);
  return order.map((name) => ({ name, file: files.get(name) }));
}

/** A gzipped newc cpio archive of the given entries (the format the kernel unpacks as its initramfs). */
function cpio(entries) {
  const parts = [];
  let ino = 1;
  const pad = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  const add = (name, mode, data = Buffer.alloc(0)) => {
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0];
    const header = "070701" + fields.map((f) => f.toString(16).padStart(8, "0")).join("");
    parts.push(Buffer.from(header), Buffer.from(name + "\0"), pad(110 + name.length + 1), data, pad(data.length));
  };
  for (const e of entries) add(e.name, e.mode, e.data);
  add("TRAILER!!!", 0);
  return gzipSync(Buffer.concat(parts), { level: 6 });
}

/** The initramfs for this kernel, built once and cached by what goes into it. */
export function initramfs(kernel) {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find(existsSync);
  if (!busybox) throw new Error("busybox is not installed: `apt-get install busybox-static` (or `bash .ci/setup`)");
  const modules = moduleOrder(kernel.modules);
  const init = readFileSync(join(import.meta.dirname, "init.sh"));
  const bb = readFileSync(busybox);
  const key = createHash("sha256").update(kernel.version).update(init).update(bb).update(modules.map((m) => m.name).join()).digest("hex").slice(0, 16);
  const out = join(cache, `initramfs-${key}.gz`);
  if (existsSync(out)) return out;
  const DIR = 0o040755, EXE = 0o100755, FILE = 0o100644;
  const archive = cpio([
    { name: "bin", mode: DIR }, { name: "bin/busybox", mode: EXE, data: bb },
    { name: "init", mode: EXE, data: init },
    { name: "modules", mode: DIR },
    ...modules.map((m) => ({ name: `modules/${m.name}.ko`, mode: FILE, data: readFileSync(m.file) })),
    { name: "modules.order", mode: FILE, data: Buffer.from(modules.map((m) => m.name).join("\n") + "\n") },
  ]);
  mkdirSync(cache, { recursive: true });
  writeFileSync(out + ".tmp", archive);
  renameSync(out + ".tmp", out);
  return out;
}

const PASSED = ["PATH", "LANG", "LC_ALL", "TZ", "TERM"];

/** The kernel's command line for each init: cgroup v2 only, or (jammy) v1 controllers
 * left to systemd, which then boots the hybrid layout (systemd 252 needs no more than
 * unified_cgroup_hierarchy=0 for it; 256 and later want a force switch). Under systemd,
 * the target to boot to. */
const BASE = "console=ttyS0 quiet loglevel=0 panic=-1 rdinit=/init";
const V2_ONLY = " cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1";
const SYSTEMD = " systemd.unit=bpm-vm.target systemd.show_status=error";
const APPEND = { bare: BASE + V2_ONLY, systemd: BASE + V2_ONLY + SYSTEMD, jammy: BASE + " systemd.unified_cgroup_hierarchy=0" + SYSTEMD };
/** The units each systemd boot installs (test/vm/systemd/ or test/vm/jammy/). */
const UNITS = { systemd: "systemd", jammy: "jammy" };

/**
 * Boots the VM (init "bare", "systemd" or "jammy"), runs argv in cwd with env, streams
 * its output to ours, and resolves with its exit status (124 if it did not
 * finish in time). onBooted hears how many seconds the guest took to reach
 * the command.
 */
export async function runInVm({ argv, cwd = process.cwd(), env = {}, timeoutMs = 30 * 60_000, memoryMb = 4096, cpus = 2, init = "bare", onBooted }) {
  if (!Object.hasOwn(APPEND, init)) throw new Error(`unknown init ${init}: bare, systemd or jammy`);
  const kernel = findKernel();
  const initrd = initramfs(kernel);
  const run = mkdtempSync(join(cache, "run-"));
  try {
    writeFileSync(join(run, "command.json"), JSON.stringify({ argv, cwd, env: { HOME: "/root", ...env } }));
    writeFileSync(join(run, "cwd"), cwd); // for the initramfs, which has no JSON parser
    writeFileSync(join(run, "guest.py"), readFileSync(join(import.meta.dirname, "guest.py")));
    writeFileSync(join(run, "init"), init); // read by the initramfs (init.sh)
    if (UNITS[init]) cpSync(join(import.meta.dirname, UNITS[init]), join(run, "systemd"), { recursive: true });
    const args = [
      "-machine", "pc", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", String(cpus), "-m", String(memoryMb),
      "-display", "none", "-monitor", "none", "-serial", "stdio", "-nic", "none", "-no-reboot",
      "-kernel", kernel.image, "-initrd", initrd,
      "-append", APPEND[init],
      // multidevs=remap: this machine's several filesystems keep distinct inode numbers in the guest.
      "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
      "-virtfs", `local,path=${run},mount_tag=out,security_model=none`,
    ];
    const qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "inherit", "inherit"] });
    const killer = setTimeout(() => qemu.kill("SIGKILL"), timeoutMs);
    const exited = await new Promise((res) => {
      qemu.on("error", (e) => res(e));
      qemu.on("exit", (code, signal) => res({ code, signal }));
    });
    clearTimeout(killer);
    if (exited instanceof Error) throw new Error(`qemu-system-x86_64 did not run: ${exited.message} (install qemu-system-x86, or run \`bash .ci/setup\`)`);
    const booted = join(run, "booted");
    if (onBooted && existsSync(booted)) onBooted(Number(readFileSync(booted, "utf8")));
    const statusFile = join(run, "status");
    if (!existsSync(statusFile)) {
      process.stderr.write(`bpm-vm: the guest ended without a status (qemu ${exited.signal ? `killed by ${exited.signal}: over ${timeoutMs / 1000} s` : `exit ${exited.code}`})\n`);
      return exited.signal ? 124 : 125;
    }
    return Number(readFileSync(statusFile, "utf8").trim());
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
}

/** The environment a command in the guest gets from ours. */
export function passedEnv(extra = []) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (PASSED.includes(k) || extra.includes(k) || /^(BPM|NODE)_/.test(k)) env[k] = v;
  return env;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const extra = [];
  let timeoutMs;
  let init = "bare";
  while (args.length && args[0].startsWith("--")) {
    const flag = args.shift();
    if (flag === "--") break;
    if (flag === "--env") extra.push(args.shift());
    else if (flag === "--systemd") init = "systemd";
    else if (flag === "--jammy") init = "jammy";
    else if (flag === "--timeout") timeoutMs = Number(args.shift()) * 1000;
    else {
      process.stderr.write(`vm: unknown flag ${flag}\nusage: node test/vm/vm.mjs [--systemd | --jammy] [--env NAME]... [--timeout SECONDS] [--] CMD ARGS...\n`);
      process.exit(2);
    }
  }
  if (args.length === 0) {
    process.stderr.write("usage: node test/vm/vm.mjs [--systemd | --jammy] [--env NAME]... [--timeout SECONDS] [--] CMD ARGS...\n");
    process.exit(2);
  }
  if (process.getuid() !== 0) process.stderr.write("vm: note: the guest runs the command as root whoever starts it\n");
  const onBooted = (s) => process.stderr.write(`vm: the guest (${init}) reached the command ${s.toFixed(1)} s after its kernel started\n`);
  process.exitCode = await runInVm({ argv: args, env: passedEnv(extra), timeoutMs, init, onBooted });
}
