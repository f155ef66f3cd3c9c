// The contract's error messages, each prefix written once, and the one kind
// of failure src/cli/main.ts turns into "Error: <message>" and exit status 1.

/** A failure the operator caused or can fix: printed as "Error: <message>", exit status 1. */
export class UserError extends Error {}

/** What each verb's failures begin with, as the contract words them (trace --startup runs like run). */
export const ERROR_PREFIX = {
  start: "failed to start job-process: ",
  run: "failed to run job-process: ",
  trace: "failed to run job-process: ",
  stop: "failed to stop job-process: ",
  config: "failed to parse job configuration: ",
} as const;

export type FailingVerb = keyof typeof ERROR_PREFIX;

/** verb's failure, said the contract's way. */
export const failure = (verb: FailingVerb, why: string) => new UserError(`${ERROR_PREFIX[verb]}${why}`);
