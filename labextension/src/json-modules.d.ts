// JSON files imported as modules (the display schema, from @mambalab/contract). Declared here
// rather than through `resolveJsonModule`, which would compile the schema as a source of this
// package (outside its rootDir); the bundler and tsx load the file itself.
declare module '*.schema.json' {
  const schema: Record<string, unknown>;
  export default schema;
}
