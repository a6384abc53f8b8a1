export { freePort, waitFor } from '../../support/local-servers.ts'

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Collects `uncaughtException` / `unhandledRejection` events while a test runs,
 * so the test can assert that a fault never crashed the process.
 */
export function watchProcessCrashes(): { readonly errors: unknown[]; stop(): void } {
  const errors: unknown[] = []
  const onError = (error: unknown) => {
    errors.push(error)
  }
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  return {
    errors,
    stop() {
      process.off('uncaughtException', onError)
      process.off('unhandledRejection', onError)
    },
  }
}
