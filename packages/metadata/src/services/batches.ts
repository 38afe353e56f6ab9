/** List streams send their items in batches, as upstream does (100 per message). */
export const LIST_BATCH = 100;

export function* batches<T>(items: Iterable<T>, size = LIST_BATCH): Generator<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
