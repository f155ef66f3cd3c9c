// Classic BPF, as seccomp runs it: the few instructions a syscall filter
// needs, their encoding (struct sock_filter), and a balanced decision tree
// over syscall numbers, so that any syscall is decided in ~log2(n) steps.

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JA = 0x05;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;
export const OPS = { BPF_LD_W_ABS, BPF_JMP_JA, BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K, BPF_RET_K } as const;

export const ld = (offset: number): Insn => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: offset });
export const ret = (k: number): Insn => ({ code: BPF_RET_K, jt: 0, jf: 0, k: k >>> 0 });
export const ja = (k: number): Insn => ({ code: BPF_JMP_JA, jt: 0, jf: 0, k });
export const jeq = (k: number, jt: number, jf: number): Insn => ({ code: BPF_JEQ_K, jt, jf, k: k >>> 0 });
export const jge = (k: number, jt: number, jf: number): Insn => ({ code: BPF_JGE_K, jt, jf, k: k >>> 0 });
export const jset = (k: number, jt: number, jf: number): Insn => ({ code: BPF_JSET_K, jt, jf, k: k >>> 0 });

/** A stretch of syscall numbers [start, next segment's start) and the code that decides it (ends in a ret). */
export interface Segment {
  start: number;
  code: Insn[];
}

/** Binary search over sorted segments; every leaf returns, so jumps only go forward. */
export function decisionTree(segments: Segment[]): Insn[] {
  if (segments.length === 0) throw new Error("no segments");
  if (segments.length === 1) return segments[0]!.code;
  const mid = segments.length >> 1;
  const left = decisionTree(segments.slice(0, mid));
  const right = decisionTree(segments.slice(mid));
  const k = segments[mid]!.start;
  // Conditional jumps reach 255 instructions; beyond that, hop with ja.
  if (left.length <= 255) return [jge(k, left.length, 0), ...left, ...right];
  return [jge(k, 0, 1), ja(left.length), ...left, ...right];
}

/** struct sock_filter[], little-endian (x86_64 and aarch64). */
export function encode(prog: Insn[]): Uint8Array {
  if (prog.length > 4096) throw new Error(`BPF program too long: ${prog.length} instructions`);
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((i, n) => {
    if (i.jt > 255 || i.jf > 255) throw new Error(`BPF jump out of range at ${n}`);
    buf.writeUInt16LE(i.code, n * 8);
    buf.writeUInt8(i.jt, n * 8 + 2);
    buf.writeUInt8(i.jf, n * 8 + 3);
    buf.writeUInt32LE(i.k >>> 0, n * 8 + 4);
  });
  return new Uint8Array(buf);
}

export function decode(bytes: Uint8Array): Insn[] {
  const buf = Buffer.from(bytes);
  const out: Insn[] = [];
  for (let off = 0; off + 8 <= buf.length; off += 8) {
    out.push({ code: buf.readUInt16LE(off), jt: buf.readUInt8(off + 2), jf: buf.readUInt8(off + 3), k: buf.readUInt32LE(off + 4) });
  }
  return out;
}
