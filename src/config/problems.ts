// A problem in bpm.yml, named by file:line:column and field, and the error
// that carries one or more of them.

export interface Problem {
  file: string;
  line: number;
  col: number;
  field: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.field ? p.field + ": " : ""}${p.message}`;
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
