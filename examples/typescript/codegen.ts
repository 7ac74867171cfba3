// Types for the operations in src/operations.graphql, from the schema a running server
// serves (CUSTOS_URL, introspection with CUSTOS_TOKEN) or, offline, the committed SDL.
import type { CodegenConfig } from "@graphql-codegen/cli";

const url = process.env.CUSTOS_URL;
const token = process.env.CUSTOS_TOKEN;

// Custos's custom scalars travel as JSON strings (Decimal also accepts a number as input):
// map them to what arrives, and parse where you compute. Enums become string-literal
// unions (no runtime code; a `switch` over one is checked exhaustive).
const scalars = {
  Date: "string",
  DateTime: "string",
  Decimal: "string",
  JSON: "unknown",
};

const config: CodegenConfig = {
  schema: url
    ? [{ [`${url}/graphql`]: { headers: token ? { Authorization: `Bearer ${token}` } : {} } }]
    : "../../schema/schema.graphql",
  documents: ["src/operations.graphql"],
  generates: {
    // Every schema type (objects, inputs, enums): for code that passes records around.
    "src/generated/schema.ts": {
      plugins: ["typescript"],
      config: { scalars, enumsAsTypes: true, strictScalars: true },
    },
    // The result and variables types of each operation in src/operations.graphql.
    "src/generated/operations.ts": {
      plugins: ["typescript-operations"],
      config: { scalars, enumType: "string-literal", strictScalars: true },
    },
  },
};

export default config;
