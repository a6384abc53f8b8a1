export {
  createTestDatabase,
  ensureTemplateDatabase,
  type TestDatabase,
  type TestDatabaseOptions,
} from './create-test-database.ts'
