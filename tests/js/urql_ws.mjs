// urql: a mutation over HTTP (fetchExchange), a subscription over graphql-ws (subscriptionExchange).
import { Client, fetchExchange, subscriptionExchange } from "@urql/core";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { JOB_UPDATED, SUBMIT, authorization, fail, holdInput, onUpdate, report, url } from "./common.mjs";

const wsClient = createClient({
  url: url.replace(/^http/, "ws") + "/graphql",
  webSocketImpl: WebSocket,
  connectionParams: { authorization },
});
const client = new Client({
  url: `${url}/graphql`,
  fetchOptions: { headers: { authorization } },
  exchanges: [
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: wsClient.subscribe({ ...request, query: request.query ?? "" }, sink) }),
      }),
    }),
  ],
});
try {
  const submitted = await client.mutation(SUBMIT, { input: holdInput }).toPromise();
  if (submitted.error) throw submitted.error;
  const { id } = submitted.data.submitJob;
  let seen = 0;
  let last = 0;
  const subscription = await new Promise((resolve, reject) => {
    const sub = client.subscription(JOB_UPDATED, { id }).subscribe((result) => {
      if (result.error) return reject(result.error);
      const update = result.data.jobUpdated;
      // urql hands the last result again when the source completes: report each version once
      if (update.version <= last) return;
      last = update.version;
      onUpdate(update, seen++);
      if (update.status === "COMPLETED") resolve(sub);
    });
  });
  subscription.unsubscribe();
  report({ completed: true });
} catch (error) {
  fail(error);
}
await wsClient.dispose();
