"""The GraphQL surface: strawberry types, queries, mutations. Resolvers stay thin."""
