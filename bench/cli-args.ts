/** The command line of a bench script: `--name value` options and `--flag` switches. */

/**
 * Reads a bench script's arguments.
 *
 * @example
 * ```ts
 * const { argv, option, flag } = cliArgs()
 * const calls = Number(option('--calls') ?? (flag('--quick') ? 2000 : 10_000))
 * ```
 */
export function cliArgs(argv: string[] = process.argv.slice(2)) {
  return {
    argv,
    /** The value after `name`, or `undefined`. */
    option: (name: string): string | undefined => {
      const i = argv.indexOf(name)
      return i >= 0 ? argv[i + 1] : undefined
    },
    /** Whether `name` is given. */
    flag: (name: string): boolean => argv.includes(name),
  }
}
