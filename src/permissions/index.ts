export * from './compute-permissions.ts'
export { DEFAULT_PERMISSIONS, hasPermission, Permissions } from './permissions.ts'
