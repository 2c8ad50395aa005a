/** An error in what the user asked for (a config field, a file, a shape), with a message that names it. */
export class MambalabError extends Error {
  override name = 'MambalabError';
}
