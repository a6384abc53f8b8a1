/**
 * V8 heap bytes allocated by a piece of work. Node 24's
 * `v8.getHeapStatistics()` has no running allocation counter
 * (`total_allocated_bytes` is absent), so the count is rebuilt from a
 * `v8.GCProfiler` over the work: what every collection freed (used heap
 * before − after) plus the used heap's net growth. Buffers outside the V8 heap
 * (socket reads, `Buffer.allocUnsafe`) are not counted.
 */
import v8 from 'node:v8'

/**
 * Runs `work` and returns the V8 heap bytes it allocated (see the module comment).
 *
 * @example
 * ```ts
 * const bytes = await allocatedBy(async () => { for (let i = 0; i < n; i++) await call(i) })
 * console.log(bytes / n, 'bytes per call')
 * ```
 */
export async function allocatedBy(work: () => Promise<void>): Promise<number> {
  const profiler = new v8.GCProfiler()
  const before = v8.getHeapStatistics().used_heap_size
  profiler.start()
  await work()
  const after = v8.getHeapStatistics().used_heap_size
  const gcs = profiler.stop()?.statistics ?? []
  let freed = 0
  for (const gc of gcs) {
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize
  }
  return after - before + freed
}
