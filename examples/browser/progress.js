// Submits a job with Apollo Client and follows it with the jobUpdated subscription over HTTP
// multipart (HttpLink alone: no websocket, so it works where proxies block them). Serve this page
// from jobpulse's origin (e.g. behind the same reverse proxy): jobpulse sends no CORS headers.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "./vendor/apollo-client/apollo-client.esm.min.js";

const SUBMIT = gql`
  mutation Submit($input: SubmitJobInput!) {
    submitJob(input: $input) { __typename ... on Job { id status } ... on UserError { code message } }
  }
`;
const FOLLOW = gql`
  subscription Follow($id: ID!) { jobUpdated(id: $id) { id status progress progressMessage error } }
`;

const $ = (id) => document.getElementById(id);
const show = (text) => { $("status").textContent = text; };

$("submit").addEventListener("submit", async (event) => {
  event.preventDefault();
  const client = new ApolloClient({
    link: new HttpLink({ uri: "/graphql", headers: { authorization: `Bearer ${$("token").value}` } }),
    cache: new InMemoryCache(),
  });
  $("bar").value = 0;
  try {
    const input = { type: $("type").value, payload: JSON.parse($("payload").value) };
    const { data } = await client.mutate({ mutation: SUBMIT, variables: { input } });
    const result = data.submitJob;
    if (result.__typename === "UserError") return show(`Refused: ${result.code} ${result.message}`);
    show(`Job ${result.id} ${result.status}`);
    $("status").dataset.jobId = result.id;
    client.subscribe({ query: FOLLOW, variables: { id: result.id }, fetchPolicy: "no-cache" }).subscribe({
      next: ({ data: update, error }) => {
        if (error) return show(`Error: ${error.message}`);
        const job = update.jobUpdated;
        $("bar").value = job.progress;
        show(`${job.status} ${Math.round(job.progress)}%${job.progressMessage ? ` (${job.progressMessage})` : ""}`);
        $("status").dataset.state = job.status;
      },
      error: (error) => show(`Error: ${error.message}`),
    });
  } catch (error) {
    show(`Error: ${error.message}`);
  }
});
