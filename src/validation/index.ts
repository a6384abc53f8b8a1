export * from './fields.ts'
export * from './keys.ts'
export * from './validate.ts'
