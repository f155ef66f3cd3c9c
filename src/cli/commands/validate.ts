// `bpm validate [JOB | PATH ...]`: checks configs the way start would and
// prints every problem with its position; no root needed (release CI).
import { existsSync, readdirSync, statSync } from "node:fs";
import { boshRoot, bpmDirs, jobPaths, reservedJobName } from "../../bosh/paths.ts";
import { ConfigError, formatProblem, loadJobConfig } from "../../config/load.ts";
import { command, CommandError } from "../command.ts";

/** A job name under ROOT/jobs, or a path to a bpm.yml (the job is the directory above config/). */
function target(arg: string) {
  const root = boshRoot();
  if (arg.includes("/") || arg.endsWith(".yml") || arg.endsWith(".yaml")) {
    const file = existsSync(arg) && statSync(arg).isDirectory() ? `${arg}/config/bpm.yml` : arg;
    const parts = file.split("/");
    const job = parts.length >= 3 && parts[parts.length - 2] === "config" ? parts[parts.length - 3]! : "job";
    return { file, job, root };
  }
  return { file: jobPaths(root, arg).config, job: arg, root };
}

export default command(
  {
    meta: { name: "validate", description: "Check bpm.yml files and print every problem with file:line:column" },
    args: { targets: { type: "positional", required: false, valueHint: "[JOB | PATH]...", description: "job names or paths to bpm.yml (default: every job under ROOT/jobs)" } },
    run({ args }) {
      let names = (args._ as string[]).length ? (args._ as string[]) : [];
      if (names.length === 0) {
        const jobs = bpmDirs(boshRoot()).jobsDir;
        names = existsSync(jobs) ? readdirSync(jobs).sort().filter((j) => existsSync(jobPaths(boshRoot(), j).config)) : [];
        if (names.length === 0) throw new CommandError(`no job configurations found under ${jobs}`);
      }
      let bad = 0;
      for (const name of names) {
        const t = target(name);
        const reserved = reservedJobName(t.job);
        if (reserved) {
          bad++;
          process.stdout.write(`${t.file}: ${reserved}\n`);
          continue;
        }
        try {
          const { config, warnings, advice } = loadJobConfig(t.file, { root: t.root, job: t.job });
          for (const w of [...warnings, ...advice]) process.stdout.write(`warning: ${formatProblem(w)}\n`);
          // An empty file is valid, as in the original: the job's template rendered nothing.
          process.stdout.write(`ok: ${t.file}${config.processes.length === 0 ? " (no processes: the file is empty)" : ""}\n`);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          bad++;
          for (const p of e.problems) process.stdout.write(`${formatProblem(p)}\n`);
        }
      }
      if (bad > 0) throw new CommandError(`${bad} of ${names.length} configuration${names.length > 1 ? "s are" : " is"} invalid`);
    },
  },
  { needsRoot: false },
);
