// Submits a `hold` job with `client` and follows it with jobUpdated until the subscription completes.
import { gql } from "@apollo/client";
import { JOB_UPDATED, SUBMIT, fail, holdInput, onUpdate, report } from "./common.mjs";

export async function followWithApollo(client) {
  const submitted = await client.mutate({ mutation: gql(SUBMIT), variables: { input: holdInput } });
  const { id } = submitted.data.submitJob;
  let seen = 0;
  await new Promise((resolve, reject) => {
    client
      .subscribe({ query: gql(JOB_UPDATED), variables: { id }, fetchPolicy: "no-cache" })
      .subscribe({
        next: (result) => {
          if (result.error) return reject(result.error);
          onUpdate(result.data.jobUpdated, seen++);
        },
        error: reject,
        complete: resolve,
      });
  }).catch(fail);
  report({ completed: true });
}
