/**
 * Issue 27, item 2: under `exactOptionalPropertyTypes` (which `tsc --init` turns
 * on), `{ before: page.at(-1)?.id }` is refused by a property typed `before?: string`.
 * Every optional property a caller can pass to the public API must therefore
 * also take `undefined`, and mean "absent" at run time.
 *
 * The list is derived mechanically: the TypeScript checker walks every export of
 * the package's entry points (`guildstore`, `guildstore/testing`), every parameter of
 * every exported function, class constructor and method, and every exported
 * interface or type alias, into the object types they reach that are declared in
 * src/, and reports each `name?: T` whose T does not include `undefined`.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { createRedis, redisRetryDelay } from '../../src/index.ts'
import { createTestDatabase } from '../../src/testing/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { testDatabaseUrl, testRedisUrl } from '../support/env.ts'
import { passUndefinedEverywhere } from '../types/undefined-options.ts'
import { repoRoot } from './support.ts'

const entries = ['src/index.ts', 'src/testing/index.ts'].map((f) => join(repoRoot, f))
const srcDir = join(repoRoot, 'src')

function program(): ts.Program {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(repoRoot, 'tsconfig.json'),
    { exactOptionalPropertyTypes: true, noEmit: true },
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
  )
  if (!config) throw new Error('cannot read tsconfig.json')
  return ts.createProgram(entries, config.options)
}

/** `path.Type.prop` for every optional property reachable from the public API that refuses `undefined`. */
function optionalPropertiesWithoutUndefined(): { missing: string[]; checked: number } {
  const p = program()
  const checker = p.getTypeChecker()
  const seenTypes = new Set<ts.Type>()
  const missing = new Set<string>()
  let checked = 0

  const ours = (node: ts.Node) => node.getSourceFile().fileName.startsWith(srcDir)

  const visitType = (type: ts.Type, where: string): void => {
    if (seenTypes.has(type)) return
    seenTypes.add(type)
    if (type.isUnionOrIntersection()) {
      for (const t of type.types) visitType(t, where)
      return
    }
    if (!(type.flags & ts.TypeFlags.Object)) return
    const objectFlags = (type as ts.ObjectType).objectFlags
    if (objectFlags & ts.ObjectFlags.Reference) {
      for (const arg of checker.getTypeArguments(type as ts.TypeReference)) visitType(arg, where)
    }
    const symbol = type.getSymbol() ?? type.aliasSymbol
    const declared = symbol?.declarations?.some(ours) ?? false
    // Functions passed in (callbacks): their parameters are ours to give, not to take.
    if (type.getCallSignatures().length > 0 && type.getProperties().length === 0) return
    if (!declared) return
    for (const prop of type.getProperties()) {
      const decl = prop.valueDeclaration ?? prop.declarations?.[0]
      if (!decl || !ours(decl)) continue
      if (
        !(ts.isPropertySignature(decl) || ts.isPropertyDeclaration(decl)) ||
        ts.isPrivateIdentifier(decl.name) ||
        (ts.getCombinedModifierFlags(decl) & ts.ModifierFlags.Private) !== 0
      ) {
        continue
      }
      const name = `${where}.${prop.name}`
      if (decl.questionToken) {
        checked++
        const declaredType = decl.type ? checker.getTypeFromTypeNode(decl.type) : undefined
        const takesUndefined =
          !declaredType ||
          declaredType.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown | ts.TypeFlags.Undefined) ||
          (declaredType.isUnion() &&
            declaredType.types.some((t) => t.flags & ts.TypeFlags.Undefined))
        if (!takesUndefined) {
          const file = decl.getSourceFile().fileName.slice(repoRoot.length + 1)
          missing.add(
            `${name} (${file}:${decl.getSourceFile().getLineAndCharacterOfPosition(decl.getStart()).line + 1})`,
          )
        }
      }
      visitType(checker.getTypeOfSymbolAtLocation(prop, decl), name)
    }
  }

  const visitSignature = (sig: ts.Signature, where: string): void => {
    for (const param of sig.getParameters()) {
      const decl = param.valueDeclaration
      if (!decl) continue
      visitType(checker.getTypeOfSymbolAtLocation(param, decl), `${where}(${param.name})`)
    }
  }

  for (const entry of entries) {
    const source = p.getSourceFile(entry)
    const moduleSymbol = source && checker.getSymbolAtLocation(source)
    if (!moduleSymbol) throw new Error(`no module symbol for ${entry}`)
    for (let symbol of checker.getExportsOfModule(moduleSymbol)) {
      if (symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol)
      const decl = symbol.valueDeclaration ?? symbol.declarations?.[0]
      if (!decl) continue
      const name = symbol.name
      if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) {
        visitType(checker.getDeclaredTypeOfSymbol(symbol), name)
      }
      if (symbol.flags & ts.SymbolFlags.Class) {
        const ctorType = checker.getTypeOfSymbolAtLocation(symbol, decl)
        for (const sig of ctorType.getConstructSignatures()) visitSignature(sig, `new ${name}`)
        const instance = checker.getDeclaredTypeOfSymbol(symbol)
        for (const member of instance.getProperties()) {
          const memberDecl = member.valueDeclaration
          if (!memberDecl || !ts.isMethodDeclaration(memberDecl)) continue
          const memberType = checker.getTypeOfSymbolAtLocation(member, memberDecl)
          for (const sig of memberType.getCallSignatures())
            visitSignature(sig, `${name}.${member.name}`)
        }
      }
      if (symbol.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Variable)) {
        const type = checker.getTypeOfSymbolAtLocation(symbol, decl)
        for (const sig of type.getCallSignatures()) visitSignature(sig, name)
        if (symbol.flags & ts.SymbolFlags.Variable) visitType(type, name)
      }
    }
  }
  return { missing: [...missing].sort(), checked }
}

describe('option bags under exactOptionalPropertyTypes', () => {
  it('every optional property of the public API also takes undefined', () => {
    const { missing, checked } = optionalPropertiesWithoutUndefined()
    // The walk must reach the option bags it is about, or it proves nothing.
    expect(checked).toBeGreaterThan(100)
    expect(missing).toEqual([])
  }, 120_000)
})

describe('a caller passing undefined for absent options (test/types/undefined-options.ts)', () => {
  const t = useTestDatabase({ max: 3 })
  const file = join(repoRoot, 'test', 'types', 'undefined-options.ts')

  it('compiles under strict and exactOptionalPropertyTypes, skipLibCheck off', () => {
    const config = ts.getParsedCommandLineOfConfigFile(
      join(repoRoot, 'tsconfig.json'),
      { strict: true, exactOptionalPropertyTypes: true, skipLibCheck: false, noEmit: true },
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
    )
    if (!config) throw new Error('cannot read tsconfig.json')
    const p = ts.createProgram([file], config.options)
    const diagnostics = ts
      .getPreEmitDiagnostics(p)
      .filter((d) => d.file?.fileName === file)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(diagnostics).toEqual([])
    expect(config.options.exactOptionalPropertyTypes).toBe(true)
  }, 120_000)

  it('runs: undefined means absent (defaults apply, nothing refused)', async () => {
    const outcome = await passUndefinedEverywhere(t.db, t.pool, randomBytes(4).toString('hex'))
    expect(outcome).toEqual({
      pageContents: ['second', 'first'],
      readContents: ['second', 'first', 'second', 'first'],
      replyTo: null,
      attachmentType: null,
      readStates: 1,
      reactions: 0,
      reactionUsers: 0,
      removed: 0,
      applied: 0,
      pending: 0,
    })
  })
})

describe("createRedis: an ioredis option given as undefined keeps guildstore's default", () => {
  it("retries, connect timeout and retry strategy stay guildstore's (ioredis would use 20 retries)", async () => {
    const redis = createRedis({
      url: testRedisUrl(),
      lazyConnect: true,
      maxRetriesPerRequest: undefined,
      connectTimeout: undefined,
      retryStrategy: undefined,
    })
    try {
      expect(redis.options.maxRetriesPerRequest).toBe(2)
      expect(redis.options.connectTimeout).toBe(5000)
      expect(redis.options.retryStrategy).toBe(redisRetryDelay)
    } finally {
      redis.disconnect()
    }
  })
})

describe('createTestDatabase: a pool option given as undefined keeps the default', () => {
  it("max stays 5 (it was pg's 10) and the clone is still the one connected to", async () => {
    const t = await createTestDatabase({
      url: testDatabaseUrl(),
      pool: { max: undefined, connectionString: undefined },
    })
    try {
      expect(t.pool.options.max).toBe(5)
      const { rows } = await t.pool.query('select current_database() as name')
      expect(rows[0].name).toBe(t.name)
    } finally {
      await t.drop()
    }
  })
})
