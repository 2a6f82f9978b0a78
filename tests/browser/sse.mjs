// The npm graphql-sse client (distinct connections mode) against comfygraph's
// /graphql/stream: runs one operation and prints each result as a JSON line, then "complete".
// usage: node sse.mjs URL TOKEN QUERY [VARIABLES_JSON]
import { createClient } from 'graphql-sse';

const [url, token, query, variables] = process.argv.slice(2);
const client = createClient({
  url,
  headers: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
});
try {
  for await (const result of client.iterate({ query, variables: JSON.parse(variables || '{}') })) {
    console.log(JSON.stringify(result));
  }
  console.log('complete');
} catch (error) {
  console.error(error instanceof Error ? error.message : JSON.stringify(error));
  process.exitCode = 1;
} finally {
  client.dispose();
}
