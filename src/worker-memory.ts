/**
 * The worker's memory policy while snapshots stream through it. Every chunk that flowed into an upload's part buffer
 * is garbage once the part is sent, but V8 only collects Buffers' memory once ~64 MiB of it is pending, so a fast
 * stream holds far more memory than it uses. Where the worker runs with --expose-gc (the image and `npm start` do), a
 * young-generation collection per part (well under a millisecond) and a full one every 8 parts (a few milliseconds on
 * the worker's small heap) keep that from piling up. Without --expose-gc this does nothing.
 */
export function collectBufferGarbage(partNumber: number): void {
  (globalThis as { gc?: (o: { type: 'minor' | 'major' }) => void }).gc?.({ type: partNumber % 8 === 0 ? 'major' : 'minor' });
}
