#!/usr/bin/env node
// The version guard runs before the CLI is imported, so an old Node gets one line, not a stack.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `guildstore needs Node.js >= 22.12, but this is ${process.version}. Fix: install Node >= 22.12 (e.g. npm install --prefix ~/.cache/node24 node@24, then put ~/.cache/node24/node_modules/.bin first on PATH).\n`,
  )
  process.exit(1)
}
const { main } = await import('./main.ts')
process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
})
