// A typed Custos client: every variable and result below is checked by tsc against the
// types graphql-codegen generated from the server's schema (npm run codegen).
import { readFileSync } from "node:fs";

import type {
  CreateCustomerMutation,
  CreateCustomerMutationVariables,
  CustomerPageQuery,
  CustomerPageQueryVariables,
  CustomerTier,
  NodeByIdQuery,
  NodeByIdQueryVariables,
} from "./generated/operations.js";
import type { Customer } from "./generated/schema.js";

const url = process.env.CUSTOS_URL ?? "http://127.0.0.1:8000";
const token = process.env.CUSTOS_TOKEN ?? "";
const purpose = process.env.CUSTOS_PURPOSE ?? "support";
const document = readFileSync(new URL("../src/operations.graphql", import.meta.url), "utf8");

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function run<TData, TVariables>(operationName: string, variables: TVariables): Promise<TData> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json",
      Authorization: `Bearer ${token}`,
      "X-Purpose": purpose,
    },
    body: JSON.stringify({ query: document, operationName, variables }),
  });
  const body = (await response.json()) as GraphQLResponse<TData>;
  if (body.errors?.length || !body.data) {
    throw new Error(`${operationName}: ${body.errors?.map((e) => e.extensions?.code).join(", ")}`);
  }
  return body.data;
}

// Exhaustive over the enum: a tier added to the schema fails this switch at compile time.
function tierLabel(tier: CustomerTier | null): string {
  switch (tier) {
    case "HIGH":
      return "high value";
    case "MID":
      return "mid value";
    case "LOW":
      return "low value";
    case null:
      return "not segmented yet";
  }
}

// A schema type: what any selection of a customer may hold.
function describe(customer: Pick<Customer, "id" | "tier">): string {
  return `${customer.id}: ${tierLabel(customer.tier ?? null)}`;
}

async function main(): Promise<void> {
  const created = await run<CreateCustomerMutation, CreateCustomerMutationVariables>(
    "CreateCustomer",
    { input: { name: "Typed Client", gender: "FEMALE", birthday: "1990-05-17" } },
  );
  const result = created.createCustomer;
  if (result.__typename !== "CustomerCreated") {
    throw new Error(`createCustomer refused: ${result.__typename === "UserError" ? result.code : "?"}`);
  }
  const customer = result.customer;

  const page = await run<CustomerPageQuery, CustomerPageQueryVariables>("CustomerPage", {
    first: 50,
    after: null,
    tier: null,
  });
  const scores = page.customers.nodes.map((n) => n.completeness.score);

  const node = await run<NodeByIdQuery, NodeByIdQueryVariables>("NodeById", { id: customer.id });
  const found = node.node;
  if (found?.__typename !== "Customer") {
    throw new Error("node(id:) did not answer the customer");
  }

  console.log(
    JSON.stringify({
      created: customer.id,
      gender: customer.gender,
      birthDate: customer.birthDate,
      total: page.customers.totalCount,
      scored: scores.length,
      node: found.__typename,
      tier: tierLabel(found.tier),
      described: describe(found),
    }),
  );
}

await main();
