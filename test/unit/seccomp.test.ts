// The seccomp program's decisions, found by running its encoded bytes through
// a classic-BPF interpreter written here (the kernel's semantics for the
// instructions the filter may use; anything else is an error).
import assert from "node:assert/strict";
import { constants } from "node:os";
import { describe, it } from "node:test";
import { decode, encode, OPS, type Insn } from "../../src/plan/bpf.ts";
import { AUDIT_ARCH, CLONE_NAMESPACE_FLAGS, retErrno, SECCOMP_RET_ALLOW, seccompProgram } from "../../src/plan/seccomp.ts";
import { syscallTable, type Arch } from "../../src/plan/syscalls.ts";

interface Call {
  nr: number;
  arch: number;
  args?: bigint[];
}

/** Runs a filter over struct seccomp_data as the kernel lays it out; returns the action. */
function run(prog: Insn[], call: Call): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(call.nr, 0);
  data.writeUInt32LE(call.arch, 4);
  (call.args ?? []).forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  let acc = 0;
  for (let pc = 0, steps = 0; ; pc++, steps++) {
    assert.ok(pc < prog.length, "ran off the end of the program");
    assert.ok(steps <= prog.length, "a loop (jumps must go forward)");
    const { code, jt, jf, k } = prog[pc]!;
    switch (code) {
      case OPS.BPF_LD_W_ABS:
        assert.ok(k % 4 === 0 && k + 4 <= 64, `load outside seccomp_data at ${k}`);
        acc = data.readUInt32LE(k);
        break;
      case OPS.BPF_JMP_JA: pc += k; break;
      case OPS.BPF_JEQ_K: pc += acc === k ? jt : jf; break;
      case OPS.BPF_JGE_K: pc += acc >= k ? jt : jf; break;
      case OPS.BPF_JSET_K: pc += (acc & k) >>> 0 ? jt : jf; break;
      case OPS.BPF_RET_K: return k;
      default: assert.fail(`unexpected instruction 0x${code.toString(16)} at ${pc}`);
    }
  }
}

const EPERM = retErrno(constants.errno.EPERM);
const ENOSYS = retErrno(constants.errno.ENOSYS);
const SIGCHLD = 17n;
const CLONE_THREAD_FLAGS = 0x3d0f00n; // what glibc's pthread_create passes

for (const arch of ["x86_64", "aarch64"] as const satisfies Arch[]) {
  describe(`seccomp filter for ${arch}`, () => {
    // Through the bytes the helper receives, not the in-memory list.
    const prog = decode(encode(seccompProgram(arch)));
    const nr = (name: string) => {
      const n = syscallTable(arch)[name];
      assert.notEqual(n, undefined, `${name} on ${arch}`);
      return n!;
    };
    const decide = (name: string, ...args: bigint[]) => run(prog, { nr: nr(name), arch: AUDIT_ARCH[arch], args });

    it("allows what servers call", () => {
      for (const name of ["read", "write", "openat", "close", "mmap", "futex", "epoll_pwait", "accept4", "bind", "listen",
        "execve", "exit_group", "wait4", "rt_sigaction", "getrandom", "statx", "rseq", "close_range", "faccessat2", "prctl"]) {
        assert.equal(decide(name), SECCOMP_RET_ALLOW, name);
      }
    });
    it("refuses namespaces, mounts, tracing, keys, BPF, kexec, modules, swap and reboot with EPERM", () => {
      for (const name of ["unshare", "setns", "mount", "umount2", "pivot_root", "ptrace", "keyctl", "add_key", "bpf",
        "kexec_load", "init_module", "finit_module", "delete_module", "swapon", "swapoff", "reboot", "perf_event_open",
        "process_vm_readv", "userfaultfd", "open_by_handle_at", "sethostname", "settimeofday", "acct", "io_uring_setup"]) {
        assert.equal(decide(name), EPERM, name);
      }
    });
    it("allows clone for threads and processes, never with namespace flags", () => {
      assert.equal(decide("clone", SIGCHLD), SECCOMP_RET_ALLOW);
      assert.equal(decide("clone", CLONE_THREAD_FLAGS), SECCOMP_RET_ALLOW);
      for (const flag of [0x20000n, 0x02000000n, 0x04000000n, 0x08000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
        assert.equal(decide("clone", SIGCHLD | flag), EPERM, `flag 0x${flag.toString(16)}`);
      }
      assert.equal(BigInt(CLONE_NAMESPACE_FLAGS) & CLONE_THREAD_FLAGS, 0n);
    });
    it("answers clone3 with ENOSYS so that libcs fall back to clone", () => {
      assert.equal(decide("clone3"), ENOSYS);
    });
    it("allows personality only for the standard personas", () => {
      assert.equal(decide("personality", 0n), SECCOMP_RET_ALLOW);
      assert.equal(decide("personality", 8n), SECCOMP_RET_ALLOW);
      assert.equal(decide("personality", 0xffffffffn), SECCOMP_RET_ALLOW);
      assert.equal(decide("personality", 0x0040000n), EPERM, "ADDR_NO_RANDOMIZE");
      assert.equal(decide("personality", 0x0400000n), EPERM, "READ_IMPLIES_EXEC");
    });
    it("refuses calls of another architecture and numbers it does not know", () => {
      const other = arch === "x86_64" ? "aarch64" : "x86_64";
      assert.equal(run(prog, { nr: nr("read"), arch: AUDIT_ARCH[other] }), EPERM);
      assert.equal(run(prog, { nr: nr("read"), arch: 0x40000003 }), EPERM, "i386");
      assert.equal(run(prog, { nr: 9999, arch: AUDIT_ARCH[arch] }), EPERM);
      assert.equal(run(prog, { nr: -1, arch: AUDIT_ARCH[arch] }), EPERM);
    });
    if (arch === "x86_64") {
      it("refuses x32 calls", () => {
        assert.equal(run(prog, { nr: 0x40000000 | nr("read"), arch: AUDIT_ARCH.x86_64 }), EPERM);
        assert.equal(run(prog, { nr: 0x40000000 | nr("getpid"), arch: AUDIT_ARCH.x86_64 }), EPERM);
      });
    }
    it("decides every number from 0 to 1023 and stays small", () => {
      const allowed = new Set(Object.values(syscallTable(arch)).filter((n) => run(prog, { nr: n, arch: AUDIT_ARCH[arch] }) === SECCOMP_RET_ALLOW));
      for (let n = 0; n < 1024; n++) run(prog, { nr: n, arch: AUDIT_ARCH[arch] });
      assert.ok(allowed.size > 200 && allowed.size < 320, `${allowed.size} syscalls allowed`);
      assert.ok(prog.length < 400, `${prog.length} instructions`);
    });
  });
}

describe("the documented seccomp policy", () => {
  it("lists every allowed syscall in docs/security.md", async () => {
    const { readFileSync } = await import("node:fs");
    const doc = readFileSync(new URL("../../docs/security.md", import.meta.url), "utf8");
    const { ALLOWED } = await import("../../src/plan/seccomp.ts");
    for (const name of ALLOWED) assert.ok(doc.includes(`\`${name}\``), `docs/security.md lists ${name}`);
  });
});
