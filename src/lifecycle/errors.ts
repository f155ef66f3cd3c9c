/** A failure the operator caused or can fix: printed as "Error: <message>", exit status 1. */
export class UserError extends Error {}
