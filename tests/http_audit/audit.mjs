// Runs the GraphQL-over-HTTP reference audit (graphql-http) against a live server.
// Usage: node audit.mjs URL TOKEN  — prints one JSON line: counts and non-ok results.
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('Authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
const counts = {};
const problems = [];
for (const result of results) {
  counts[result.status] = (counts[result.status] || 0) + 1;
  if (result.status !== 'ok') problems.push({ status: result.status, name: result.name });
}
console.log(JSON.stringify({ counts, problems }));
