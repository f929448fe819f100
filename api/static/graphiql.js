// GraphiQL for jobpulse: queries and mutations over HTTP, subscriptions over graphql-transport-ws,
// both with the token from the Headers editor ({"Authorization": "Bearer <token>"}).
"use strict";

const EXAMPLE_QUERY = `# Welcome to jobpulse. Put your token in the Headers tab below:
#   {"Authorization": "Bearer <token>"}
# (jobpulse serve prints an admin token when it starts.)

query JobTypes {
  jobTypes { name description maxAttempts timeoutSeconds }
}

mutation Submit {
  submitJob(input: {type: "data_analysis", payload: {data: [3, 1, 4, 1, 5, 9, 2, 6]}}) {
    ... on Job { id status }
    ... on UserError { code message field }
  }
}

# Paste the id from Submit, then run this to watch the job live:
subscription Watch {
  jobUpdated(id: "<id>") { status progress progressMessage attempts result error }
}
`;

const httpUrl = window.location.href.split(/[?#]/)[0];
const wsUrl = (() => {
  const url = new URL(httpUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  return url.toString();
})();

function isSubscription(documentAST, operationName) {
  if (!documentAST) return false;
  const operations = documentAST.definitions.filter((d) => d.kind === "OperationDefinition");
  const chosen = operationName
    ? operations.find((d) => d.name && d.name.value === operationName)
    : operations.length === 1 ? operations[0] : undefined;
  return Boolean(chosen && chosen.operation === "subscription");
}

function authorizationOf(headers) {
  for (const [name, value] of Object.entries(headers || {})) {
    if (name.toLowerCase() === "authorization") return String(value);
  }
  return null;
}

// One websocket client per subscription, made with the headers of the moment it starts: a token
// changed in the editor applies to the next subscription, and a finished one closes its socket.
function subscribe(params, headers) {
  const authorization = authorizationOf(headers);
  const client = graphqlWs.createClient({
    url: wsUrl,
    lazy: true,
    retryAttempts: 0,
    connectionParams: authorization ? { authorization } : {},
  });
  const iterator = client.iterate(params);
  const close = () => client.dispose();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      try {
        const step = await iterator.next();
        if (step.done) close();
        return step;
      } catch (error) {
        close();
        // A closed socket (e.g. 4401 for a missing or wrong token) shows as an error result.
        const reason = error && error.code ? `${error.code}: ${error.reason || "closed"}` : String(error);
        return { done: false, value: { errors: [{ message: `websocket closed (${reason})` }] } };
      }
    },
    async return() {
      await iterator.return();
      close();
      return { done: true, value: undefined };
    },
  };
}

const httpFetcher = GraphiQL.createFetcher({ url: httpUrl, subscriptionUrl: wsUrl });

function fetcher(params, options) {
  if (isSubscription(options && options.documentAST, params.operationName)) {
    return subscribe(params, options && options.headers);
  }
  return httpFetcher(params, options);
}

function App() {
  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  return React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: EXAMPLE_QUERY,
    defaultHeaders: '{\n  "Authorization": "Bearer <token>"\n}',
    defaultEditorToolsVisibility: true,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
    plugins: [explorer],
  });
}

ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
