// The shape of bpm.yml and every rule a value must follow. Rules that need to
// know the job (where ROOT is, which dirs are the job's own) take a context.
import * as v from "valibot";
import { availableParallelism } from "node:os";
import { posix } from "node:path";
import { capabilityNumber } from "./capabilities.ts";
import { parseDuration, parseMemorySize } from "./units.ts";
import { stateConflict } from "./volumes.ts";
import { ext, idProblem, INTERNAL_ROOT, nameProblem, toExternal, type ExternalPath, type InternalPath } from "../bosh/paths.ts";

export interface SchemaContext {
  /** Host BOSH root (ROOT); volume paths may be written under it or under /var/vcap. */
  root: string;
  job: string;
}

const got = (issue: { received: string }) => `got ${({ Object: "a map", Array: "a list" } as Record<string, string>)[issue.received] ?? issue.received}`;
const text = v.string((i) => `expected text, ${got(i)}`);
const flag = v.boolean((i) => `expected true or false, ${got(i)}`);
const nonEmpty = (what: string) => v.pipe(text, v.nonEmpty(`${what} is required`));
const wholeNumber = (min: number) =>
  v.pipe(
    v.number((i) => `expected a whole number, ${got(i)}`),
    v.integer((i) => `expected a whole number, ${got(i)}`),
    v.minValue(min, (i) => `must be at least ${min}, ${got(i)}`),
    v.maxValue(Number.MAX_SAFE_INTEGER, (i) => `is too large, ${got(i)}`),
  );
const isMap = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
const list = <T extends v.GenericSchema>(item: T) => v.array(item, (i) => `expected a list, ${got(i)}`);
// valibot reports a missing key through the enclosing object's message.
const map = <T extends v.ObjectEntries>(entries: T) =>
  v.object(entries, (i) => (i.input === undefined && i.path?.length ? "is required" : `expected a map, ${got(i)}`));

const isCanonical = (p: string) => p.startsWith("/") && posix.normalize(p) === p && !p.endsWith("/");
const isStrictlyInside = (p: string, dir: string) => p.startsWith(dir.endsWith("/") ? dir : dir + "/");

/** A path written in bpm.yml (under /var/vcap, or under ROOT as the original took it) on the host. */
function hostPath(root: string, path: string): ExternalPath {
  if (path.startsWith(INTERNAL_ROOT + "/")) return toExternal(ext(root), path as InternalPath);
  return ext(path);
}

function volumePath(ctx: SchemaContext) {
  const own = [
    `${INTERNAL_ROOT}/data/${ctx.job}`, `${INTERNAL_ROOT}/store/${ctx.job}`,
    posix.join(ctx.root, "data", ctx.job), posix.join(ctx.root, "store", ctx.job),
  ];
  return v.pipe(
    nonEmpty("path"),
    v.check(isCanonical, (i) => `volume path must be absolute and canonical (no "..", "//" or trailing "/"), got ${i.received}`),
    v.check(
      (p) => isStrictlyInside(p, INTERNAL_ROOT) || isStrictlyInside(p, ctx.root),
      (i) => `volume path must be inside ${INTERNAL_ROOT}, got ${i.received}`,
    ),
    v.check((p) => !own.includes(p), (i) => `volume path ${i.received} is the job's own data or store directory: use ephemeral_disk or persistent_disk`),
  );
}

/** bpm's own state is no volume's (src/config/volumes.ts), written under /var/vcap or ROOT. */
const stateCheck = <T extends { path: string; writable: boolean }>(ctx: SchemaContext) =>
  v.rawCheck<T>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const why = stateConflict(dataset.value.path, dataset.value.writable, ctx.job, [INTERNAL_ROOT, ctx.root]);
    if (why) addIssue({ message: `volume path ${why}`, path: [pathItem(dataset.value, "path")] });
  });

const volumeOptions = {
  writable: v.optional(flag, false),
  allow_executions: v.optional(flag, false),
  mount_only: v.optional(flag, false),
  shared: v.optional(flag, false),
};

const volumeEntries = (ctx: SchemaContext) => ({ path: volumePath(ctx), ...volumeOptions });
type VolumeOptions = { path: string; writable: boolean; allow_executions: boolean; mount_only: boolean; shared: boolean };

/** A volume of additional_volumes, with its host path resolved once: `path` is where the job sees it, `source` the host's. */
export const volumeSchema = (ctx: SchemaContext) =>
  v.pipe(
    map(volumeEntries(ctx)),
    stateCheck<VolumeOptions>(ctx),
    v.transform((vol) => ({ ...vol, source: hostPath(ctx.root, vol.path) })),
  );

const unrestrictedVolume = (ctx: SchemaContext) =>
  v.pipe(
    map({
      path: v.pipe(nonEmpty("path"), v.check((p) => p.startsWith("/"), (i) => `path must be absolute, got ${i.received}`)),
      ...volumeOptions,
    }),
    stateCheck<VolumeOptions>(ctx),
  );

/** Written as a number and a unit ("512M"); read as bytes. */
const memorySize = v.pipe(
  text,
  v.check((s) => parseMemorySize(s) !== null, (i) => `expected a size such as 512M or 2G (units B, K, M, G, T), got ${i.received}`),
  v.transform((s) => parseMemorySize(s)!),
);

// Beyond the original (which ignores unknown keys): a CPU ceiling and share,
// and the grace period before QUIT. The ceiling allows up to 64 CPUs' worth
// per CPU of the machine: more is a typo, not a plan.
export const CPUS_PER_MACHINE_CPU = 64;
const maxCpus = () => availableParallelism() * CPUS_PER_MACHINE_CPU;
const cpuCeiling = v.pipe(
  v.number((i) => `expected a number of CPUs such as 0.5 or 2, ${got(i)}`),
  v.check((n) => n > 0, (i) => `must be more than 0, got ${i.received}`),
  v.check((n) => n <= maxCpus(), (i) => `must be at most ${maxCpus()} (this machine's ${availableParallelism()} CPUs × ${CPUS_PER_MACHINE_CPU}), got ${i.received}`),
);
const cpuWeight = v.pipe(
  v.number((i) => `expected a whole number from 1 to 10000, ${got(i)}`),
  v.integer((i) => `expected a whole number from 1 to 10000, ${got(i)}`),
  v.minValue(1, (i) => `must be from 1 to 10000, got ${i.received}`),
  v.maxValue(10_000, (i) => `must be from 1 to 10000, got ${i.received}`),
);

/** The longest shutdown_timeout: a stop that waits longer is surely a typo. */
export const MAX_SHUTDOWN_TIMEOUT_MS = 3_600_000;
/** Written as seconds (45) or a duration (45s, 2m, 1m30s); read as milliseconds. Empty means the default. */
const shutdownTimeout = v.pipe(
  text,
  v.check((s) => s === "" || parseDuration(s) !== null, (i) => `expected seconds (45) or a duration such as 45s or 2m, got ${i.received}`),
  v.check((s) => s === "" || (parseDuration(s)! > 0 && parseDuration(s)! <= MAX_SHUTDOWN_TIMEOUT_MS), (i) => `must be more than 0 and at most 1h, got ${i.received}`),
  v.transform((s) => (s === "" ? undefined : parseDuration(s)!)),
);

const capability = v.pipe(text, v.check((c) => capabilityNumber(c) !== undefined, (i) => `unknown capability ${i.received}`));

const processName = v.pipe(
  nonEmpty("name"),
  v.check((n) => !n.includes("/") && n !== "." && n !== "..", (i) => `name may not contain "/" or be "." or "..", got ${i.received}`),
  v.check((n) => nameProblem(n) === null, (i) => `${nameProblem(i.input)}, got ${i.received}`),
);

/** An environment variable's name: what execve and a shell can pass on. */
const envKey = v.pipe(
  text,
  v.check((k) => k !== "", "an environment variable's name may not be empty"),
  v.check((k) => !k.includes("="), (i) => `an environment variable's name may not contain "=", got ${i.received}`),
  v.check((k) => !/[\x00-\x1f\x7f]/.test(k), (i) => `an environment variable's name may not contain control characters, got ${i.received}`),
);

/** The kernel's largest pid limit (PID_MAX_LIMIT): pids.max takes no more. */
export const MAX_PROCESSES = 4_194_304;

const hooks = map({ pre_start: v.optional(text) });

const limits = map({
  memory: v.optional(memorySize),
  open_files: v.optional(wholeNumber(1)),
  processes: v.optional(v.pipe(wholeNumber(1), v.maxValue(MAX_PROCESSES, (i) => `must be at most ${MAX_PROCESSES} (the kernel's largest pid limit), got ${i.received}`))),
  core_file_size: v.optional(wholeNumber(0)),
  cpu: v.optional(cpuCeiling),
  cpu_weight: v.optional(cpuWeight),
});

const unsafe = (ctx: SchemaContext) =>
  map({
    privileged: v.optional(flag, false),
    host_pid_namespace: v.optional(flag, false),
    unrestricted_volumes: v.optional(list(unrestrictedVolume(ctx)), []),
  });

const process = (ctx: SchemaContext) =>
  map({
    name: processName,
    executable: nonEmpty("executable"),
    args: v.optional(list(text), []),
    env: v.optional(v.pipe(v.unknown(), v.check(isMap, (i) => `expected a map, ${got(i)}`), v.record(envKey, text)), {}),
    workdir: v.optional(v.pipe(text, v.check((p) => p.startsWith("/"), (i) => `workdir must be absolute, got ${i.received}`))),
    hooks: v.optional(hooks, {}),
    capabilities: v.optional(list(capability), []),
    limits: v.optional(limits, {}),
    ephemeral_disk: v.optional(flag, false),
    persistent_disk: v.optional(flag, false),
    additional_volumes: v.optional(list(volumeSchema(ctx)), []),
    unsafe: v.optional(unsafe(ctx), {}),
    shutdown_signal: v.optional(
      v.pipe(text, v.picklist(["TERM", "INT"], (i) => `shutdown_signal must be TERM or INT, got ${i.received}`)),
      "TERM",
    ),
    shutdown_timeout: v.optional(shutdownTimeout),
  });

export function configSchema(ctx: SchemaContext) {
  return v.pipe(
    map({
      processes: v.pipe(
        list(process(ctx)),
        v.minLength(1, "must have at least 1 process"),
      ),
    }),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const seen = new Set<string>();
      dataset.value.processes.forEach((p, i) => {
        const tooLong = idProblem(ctx.job || "job", p.name);
        if (tooLong) {
          addIssue({
            message: tooLong,
            path: [pathItem(dataset.value, "processes"), pathItem(dataset.value.processes, i), pathItem(p, "name")],
          });
        }
        if (seen.has(p.name)) {
          addIssue({
            message: `duplicate process name "${p.name}"`,
            path: [pathItem(dataset.value, "processes"), pathItem(dataset.value.processes, i), pathItem(p, "name")],
          });
        }
        seen.add(p.name);
      });
    }),
  );
}

// valibot's issue paths carry the parent value with each key.
function pathItem(input: unknown, key: string | number) {
  return { type: "object", origin: "value", input, key, value: (input as Record<string | number, unknown>)[key] } as never;
}

export type JobConfig = v.InferOutput<ReturnType<typeof configSchema>>;
export type ProcessConfig = JobConfig["processes"][number];
export type Volume = ProcessConfig["additional_volumes"][number];

/** Where each field sits in bpm.yml and whether it holds text, read off the
 * schema itself for the YAML reader (src/config/reader.ts): unknown keys
 * are reported and ignored, as the original did, and text fields keep the
 * text written even where YAML reads a number or a boolean. */
export type Shape = "text" | "value" | { map: Record<string, Shape> } | { list: Shape } | { values: Shape };

type AnySchema = { type: string; pipe?: readonly { kind: string }[]; wrapped?: AnySchema; entries?: Record<string, AnySchema>; item?: AnySchema; value?: AnySchema };

export function shapeOf(schema: AnySchema): Shape {
  if (schema.type === "optional" || schema.type === "nullable") return shapeOf(schema.wrapped!);
  // A pipe's last schema is the shape its value must have (env: unknown, then
  // a record); the first is the schema piped, never the pipe itself.
  const last = schema.pipe ? ([...schema.pipe].reverse().find((p) => p.kind === "schema") as AnySchema | undefined) : undefined;
  if (last) return shapeOf(last);
  switch (schema.type) {
    case "string":
    case "picklist": // of text (shutdown_signal)
      return "text";
    case "object": return { map: Object.fromEntries(Object.entries(schema.entries!).map(([k, s]) => [k, shapeOf(s)])) };
    case "array": return { list: shapeOf(schema.item!) };
    case "record": return { values: shapeOf(schema.value!) };
    default: return "value";
  }
}

/** The shape of any job's bpm.yml (the context changes rules, not shape). */
export const CONFIG_SHAPE: Shape = shapeOf(configSchema({ root: INTERNAL_ROOT, job: "" }) as unknown as AnySchema);
