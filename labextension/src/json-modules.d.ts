// JSON files imported as modules (the display schema). Declared here rather than through
// `resolveJsonModule` so that the schema stays where it is agreed (kernel/schema/) without
// pulling it under this package's rootDir; the bundler and tsx load the file itself.
declare module '*.schema.json' {
  const schema: Record<string, unknown>;
  export default schema;
}
