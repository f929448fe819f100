// What every client script shares: the server and token from the environment, the operations,
// and the `hold` job a subscription watches (the script ends it by creating its file once it has
// seen the job's first update, so the updates always include a change made after subscribing).
import { writeFileSync } from "node:fs";

export const url = process.env.JOBPULSE_URL;
export const token = process.env.JOBPULSE_TOKEN;
export const holdUntil = process.env.HOLD_UNTIL;
export const holdJournal = process.env.HOLD_JOURNAL;
export const authorization = `Bearer ${token}`;

export const SUBMIT = `mutation($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { id status } ... on UserError { code message } }
}`;
export const JOB = `query($id: ID!) { job(id: $id) { id type status owner payload } }`;
export const JOB_UPDATED = `subscription($id: ID!) { jobUpdated(id: $id) { id status version } }`;

export const holdInput = { type: "hold", payload: { until: holdUntil, journal: holdJournal } };

/** One line of JSON on stdout: what the Python test reads. */
export function report(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

/** Called with each jobUpdated value: reports it, and releases the job after the first. */
export function onUpdate(update, seen) {
  report({ update });
  if (seen === 0) writeFileSync(holdUntil, "go");
}

export function fail(error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
}
