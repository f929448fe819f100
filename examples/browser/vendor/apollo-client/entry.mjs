// The vendored build of Apollo Client for examples/browser: what the page imports, one ES module.
export { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
