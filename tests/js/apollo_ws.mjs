// Apollo Client: a subscription over graphql-ws (GraphQLWsLink), mutations over HTTP.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { authorization, url } from "./common.mjs";
import { followWithApollo } from "./subscribe.mjs";

const wsClient = createClient({
  url: url.replace(/^http/, "ws") + "/graphql",
  webSocketImpl: WebSocket,
  connectionParams: { authorization },
});
const isSubscription = ({ query }) => {
  const definition = getMainDefinition(query);
  return definition.kind === "OperationDefinition" && definition.operation === "subscription";
};
const client = new ApolloClient({
  link: ApolloLink.split(
    isSubscription,
    new GraphQLWsLink(wsClient),
    new HttpLink({ uri: `${url}/graphql`, headers: { authorization } }),
  ),
  cache: new InMemoryCache(),
});
await followWithApollo(client);
await wsClient.dispose();
