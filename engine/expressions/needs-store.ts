/** Thrown when the engine cannot promise PostgreSQL's result for a row: the store evaluates the batch. */
export class NeedsStore extends Error {
  constructor(why: string) {
    super(why);
  }
}
