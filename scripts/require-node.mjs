// Exits with one line when this Node.js is older than guildstore needs (22.12).
// Plain JavaScript that any Node parses: `npm run example` runs it first, and
// vitest.config.ts imports it, so an old Node never reaches a TypeScript file.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `guildstore needs Node.js >= 22.12, but this is ${process.version}. Fix: run ./dev (it brings Node 24 from the npm registry), or install Node >= 22.12 and put it first on PATH.\n`,
  )
  process.exit(1)
}
