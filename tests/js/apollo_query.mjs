// Apollo Client over HTTP: a mutation (submitJob) and a query (job).
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { JOB, SUBMIT, authorization, fail, report, url } from "./common.mjs";

const client = new ApolloClient({
  link: new HttpLink({ uri: `${url}/graphql`, headers: { authorization } }),
  cache: new InMemoryCache(),
});
try {
  const submitted = await client.mutate({
    mutation: gql(SUBMIT),
    variables: { input: { type: "noop", payload: { note: "from apollo" } } },
  });
  const { id } = submitted.data.submitJob;
  const { data } = await client.query({ query: gql(JOB), variables: { id }, fetchPolicy: "network-only" });
  report({ submitted: submitted.data.submitJob, job: data.job });
} catch (error) {
  fail(error);
}
