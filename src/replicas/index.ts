export type { ReplicaSettings, ReplicaStats } from '../sql/replica-router.ts'
export {
  consistencyToken,
  type ReplicaState,
  replicaStats,
  withConsistencyToken,
} from './consistency.ts'
