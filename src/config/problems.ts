// A problem in bpm.yml, named by file:line:column and field, and the error
// that carries one or more of them.

export interface Problem {
  file: string;
  line: number;
  col: number;
  field: string;
  message: string;
}

/** Text as bpm may print it: each control or format character (a newline,
 * an escape sequence, a bidi override) written as \\uXXXX instead. */
export const printable = (text: string) =>
  text.replace(/[\p{Cc}\p{Cf}]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`);

/** file:line:column: field: message, printable: names and values come from the file. */
export function formatProblem(p: Problem): string {
  return printable(`${p.file}:${p.line}:${p.col}: ${p.field ? p.field + ": " : ""}${p.message}`);
}

export class ConfigError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(problems.map(formatProblem).join("; "));
    this.problems = problems;
  }
}

/** A key in a field's path: a map key or a list index. */
export type Key = string | number;

/** `processes[0].env.FOO`: how an error names a field. */
export const fieldName = (path: readonly Key[]) =>
  path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`)).join("");

/** A value for an error message: quoted, control characters escaped, long ones cut. */
export function shown(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}..."` : s;
}
