// Apollo Client: a subscription over HTTP multipart (HttpLink alone, no websocket).
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client";
import { authorization, url } from "./common.mjs";
import { followWithApollo } from "./subscribe.mjs";

const client = new ApolloClient({
  link: new HttpLink({ uri: `${url}/graphql`, headers: { authorization } }),
  cache: new InMemoryCache(),
});
await followWithApollo(client);
