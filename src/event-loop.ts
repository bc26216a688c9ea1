/**
 * Long synchronous work on the main thread (parsing a series, encoding instances, reading a probability map) gives
 * the event loop a turn now and then, so the API and the change feed answer within ~20 ms meanwhile. Async
 * iteration alone does not: data already buffered is consumed without ever reaching the event loop.
 */

/** Lets timers and I/O run before going on. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A function to call between units of work: it yields once `budgetMs` of work has passed since the last turn. */
export function turnTaker(budgetMs = 15): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await nextTurn();
    since = performance.now();
  };
}
