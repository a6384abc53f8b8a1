export { type PreparedQuery, prepareQuery, type RowOf } from './prepared-query.ts'
export { inTransaction, mapErrors } from './transaction.ts'
