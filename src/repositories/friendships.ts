/**
 * Friendships and blocks. One `friendships` row per direction:
 * `(a, b, 'pending')` is a request from a to b; an accepted friendship is two
 * rows `(a, b)` and `(b, a)`; `(a, b, 'blocked')` means a blocked b (b may
 * block a too, independently).
 *
 * Every mutating function runs in one transaction (the caller's when given
 * one) that first takes a transaction-scoped advisory lock on the unordered
 * pair ({@link lockUserPair}), so concurrent operations on one pair serialize:
 * crossing requests a→b and b→a at the same moment end as friends, never as two
 * pending requests. The lock relies on READ COMMITTED (PostgreSQL's default):
 * each statement after the lock sees what the previous holder committed. In a
 * caller's REPEATABLE READ transaction that already took its snapshot, this
 * guarantee does not hold; under SERIALIZABLE a conflict surfaces as a
 * retryable `DatabaseUnavailableError`.
 */
import { type Kysely, sql } from 'kysely'
import type { DB, FriendshipStatus, Friendships } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { inTransaction, prepareQuery } from '../sql/index.ts'
import { assertIdKey, assertObject, assertUuid, distinctIds } from '../validation/index.ts'
import { type User, userColumns } from './users.ts'

/** The columns every friendship-returning function selects. */
export const friendshipColumns = columnList<Friendships>()([
  'user_id',
  'friend_id',
  'status',
  'created_at',
  'updated_at',
])

/** One direction of a relation: `(user_id → friend_id, status)`; accepted friendships have both directions. */
export type Friendship = Projection<Friendships, typeof friendshipColumns>

/** Two users, one of them the caller (`user_id`), as {@link removeFriendship} and {@link isBlocked} take them. */
export interface UserPair {
  user_id: string
  other_user_id: string
}

/** Input of {@link sendFriendRequest}. */
export interface SendFriendRequestInput {
  from_user_id: string
  to_user_id: string
}

/** Input of {@link acceptFriendRequest}. */
export interface AcceptFriendRequestInput {
  /** The user who accepts. */
  user_id: string
  /** The user whose request is pending. */
  requester_id: string
}

/** Input of {@link blockUser} and {@link unblockUser}. */
export interface BlockUserInput {
  user_id: string
  blocked_user_id: string
}

/** What {@link listFriendRequests} returns. */
export interface FriendRequests {
  /** Users who asked this user. */
  incoming: User[]
  /** Users this user asked. */
  outgoing: User[]
}

/** The values of the `friendship_status` enum. */
export const FRIENDSHIP_STATUSES = [
  'pending',
  'accepted',
  'blocked',
] as const satisfies readonly FriendshipStatus[]

/** The user columns, qualified with the `u` alias of the list queries. */
const friendUserColumns = userColumns.map((c) => `u.${c}` as const)

const lockPair = prepareQuery('friendships.lock_pair', (db, p: { a: string; b: string }) =>
  db.selectNoFrom(
    sql<string>`pg_advisory_xact_lock(hashtextextended('guildstore:user_pair:' || least(${p.a}::uuid, ${p.b}::uuid)::text || ':' || greatest(${p.a}::uuid, ${p.b}::uuid)::text, 0))`.as(
      'locked',
    ),
  ),
)

// The pair's scope row (migration 0008's guildstore_access_epochs), incremented
// by every friendship write after the pair lock: a write in a caller's
// REPEATABLE READ or SERIALIZABLE transaction whose snapshot predates another
// write of the pair raises 40001 (retryable) instead of deciding from rows it
// cannot see (two crossed requests both left pending).
const touchPair = prepareQuery('friendships.touch_pair', (db, p: { a: string; b: string }) =>
  db.selectNoFrom(
    sql<string>`guildstore_touch_epochs(array[least(${p.a}::uuid, ${p.b}::uuid)], array[greatest(${p.a}::uuid, ${p.b}::uuid)])::text`.as(
      'touched',
    ),
  ),
)

/** The pair lock, then the pair's scope row: the first step of every friendship write. */
async function lockPairForWrite(trx: Kysely<DB>, p: { a: string; b: string }): Promise<void> {
  await lockPair.execute(trx, p)
  await touchPair.execute(trx, p)
}

const selectPair = prepareQuery('friendships.pair', (db, p: { a: string; b: string }) =>
  db
    .selectFrom('friendships')
    .select(friendshipColumns)
    .where((eb) =>
      eb.or([
        eb.and([eb('user_id', '=', p.a), eb('friend_id', '=', p.b)]),
        eb.and([eb('user_id', '=', p.b), eb('friend_id', '=', p.a)]),
      ]),
    ),
)

const upsertRow = prepareQuery(
  'friendships.upsert',
  (db, p: { user_id: string; friend_id: string; status: FriendshipStatus }) =>
    db
      .insertInto('friendships')
      .values({ user_id: p.user_id, friend_id: p.friend_id, status: p.status })
      .onConflict((oc) =>
        oc.columns(['user_id', 'friend_id']).doUpdateSet({
          status: (eb) => eb.ref('excluded.status'),
          updated_at: sql`now()`,
        }),
      )
      .returning(friendshipColumns),
)

// Runs after the pair's non-block rows are gone, so a conflict can only be an
// existing block, which is kept as it is (timestamps too).
const insertBlock = prepareQuery(
  'friendships.insert_block',
  (db, p: { user_id: string; friend_id: string }) =>
    db
      .insertInto('friendships')
      .values({ user_id: p.user_id, friend_id: p.friend_id, status: 'blocked' })
      .onConflict((oc) =>
        oc
          .columns(['user_id', 'friend_id'])
          .doUpdateSet({ status: (eb) => eb.ref('excluded.status') }),
      )
      .returning(friendshipColumns),
)

const deleteRelation = prepareQuery(
  'friendships.delete_relation',
  (db, p: { a: string; b: string }) =>
    db
      .deleteFrom('friendships')
      .where((eb) =>
        eb.or([
          eb.and([eb('user_id', '=', p.a), eb('friend_id', '=', p.b)]),
          eb.and([eb('user_id', '=', p.b), eb('friend_id', '=', p.a)]),
        ]),
      )
      .where('status', '<>', 'blocked'),
)

const deleteBlock = prepareQuery(
  'friendships.delete_block',
  (db, p: { user_id: string; friend_id: string }) =>
    db
      .deleteFrom('friendships')
      .where('user_id', '=', p.user_id)
      .where('friend_id', '=', p.friend_id)
      .where('status', '=', 'blocked'),
)

const selectBlocked = prepareQuery('friendships.is_blocked', (db, p: { a: string; b: string }) =>
  db.selectNoFrom((eb) =>
    eb
      .exists(
        eb
          .selectFrom('friendships')
          .select(sql`1`.as('one'))
          .where('status', '=', 'blocked')
          .where((w) =>
            w.or([
              w.and([w('user_id', '=', p.a), w('friend_id', '=', p.b)]),
              w.and([w('user_id', '=', p.b), w('friend_id', '=', p.a)]),
            ]),
          ),
      )
      .as('blocked'),
  ),
)

const selectFriends = prepareQuery('friendships.list_friends', (db, p: { user_id: string }) =>
  db
    .selectFrom('friendships as f')
    .innerJoin('users as u', 'u.id', 'f.friend_id')
    .select(friendUserColumns)
    .where('f.user_id', '=', p.user_id)
    .where('f.status', '=', 'accepted')
    .orderBy('u.username')
    .orderBy('u.id'),
)

const selectIncoming = prepareQuery('friendships.list_incoming', (db, p: { user_id: string }) =>
  db
    .selectFrom('friendships as f')
    .innerJoin('users as u', 'u.id', 'f.user_id')
    .select(friendUserColumns)
    .where('f.friend_id', '=', p.user_id)
    .where('f.status', '=', 'pending')
    .orderBy('f.created_at', 'desc')
    .orderBy('u.id'),
)

const selectOutgoing = prepareQuery('friendships.list_outgoing', (db, p: { user_id: string }) =>
  db
    .selectFrom('friendships as f')
    .innerJoin('users as u', 'u.id', 'f.friend_id')
    .select(friendUserColumns)
    .where('f.user_id', '=', p.user_id)
    .where('f.status', '=', 'pending')
    .orderBy('f.created_at', 'desc')
    .orderBy('u.id'),
)

const blocked = () => new ConflictError('a block stands between these users', { reason: 'blocked' })

/**
 * Takes the transaction-scoped advisory lock of an unordered user pair (the
 * same lock whichever way round), held until the transaction ends. Every
 * mutating friendship function takes it first; other pair operations (e.g.
 * creating a DM only when no block stands) can take it too, to serialize with
 * {@link blockUser}.
 *
 * @throws {InvalidInputError} when an id is not a UUID, or `db` is not a transaction.
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await lockUserPair(trx, a, b)
 *   if (await isBlocked(trx, { user_id: a, other_user_id: b })) throw …
 * })
 * // select pg_advisory_xact_lock(hashtextextended('guildstore:user_pair:' || least($1::uuid, $2::uuid)::text || ':' || greatest(…)::text, 0))
 * ```
 */
export async function lockUserPair(
  db: Kysely<DB>,
  user_id: string,
  other_user_id: string,
): Promise<void> {
  assertUuid(user_id, 'user_id')
  assertUuid(other_user_id, 'other_user_id')
  if (!db.isTransaction) {
    throw new InvalidInputError('lockUserPair must run inside a transaction', { field: 'db' })
  }
  await lockPair.execute(db, { a: user_id, b: other_user_id })
}

/**
 * Sends a friend request from `from_user_id` to `to_user_id`.
 *
 * - No relation yet: a pending request (`from → to`).
 * - The other side already asked (or they are friends already): both rows
 *   become `accepted`; returns the `from → to` row.
 * - A pending request of one's own already: returned as it is (idempotent).
 *
 * @throws {InvalidInputError} when an id is not a UUID or both are the same user.
 * @throws {ConflictError} (reason `'blocked'`) when either user has blocked the other.
 * @throws {ForeignKeyViolationError} when either user does not exist.
 * @example
 * ```ts
 * const f = await sendFriendRequest(db, { from_user_id: me, to_user_id: them })
 * if (f.status === 'accepted') notifyNewFriend()
 * ```
 */
export async function sendFriendRequest(
  db: Kysely<DB>,
  input: SendFriendRequestInput,
): Promise<Friendship> {
  assertObject(input, 'input')
  const [from, to] = distinctIds(input.from_user_id, 'from_user_id', input.to_user_id, 'to_user_id')
  return inTransaction(db, async (trx) => {
    await lockPairForWrite(trx, { a: from, b: to })
    const rows = await selectPair.execute(trx, { a: from, b: to })
    const mine = rows.find((r) => r.user_id === from)
    const theirs = rows.find((r) => r.user_id === to)
    if (mine?.status === 'blocked' || theirs?.status === 'blocked') throw blocked()
    if (theirs || mine?.status === 'accepted') {
      // They asked (or accepted) already: friends, both ways.
      if (theirs?.status !== 'accepted') {
        await upsertRow.execute(trx, { user_id: to, friend_id: from, status: 'accepted' })
      }
      if (mine?.status === 'accepted') return mine
      return upsertRow.executeTakeFirstOrThrow(trx, {
        user_id: from,
        friend_id: to,
        status: 'accepted',
      })
    }
    if (mine) return mine // pending already
    return upsertRow.executeTakeFirstOrThrow(trx, {
      user_id: from,
      friend_id: to,
      status: 'pending',
    })
  })
}

/**
 * Accepts the pending request of `requester_id` to `user_id`: both rows become
 * `accepted`. Returns the accepting user's row (`user_id → requester_id`).
 *
 * @throws {InvalidInputError} when an id is not a UUID or both are the same user.
 * @throws {NotFoundError} (entity `'friend_request'`) when no request of
 *   `requester_id` to `user_id` is pending (also when they are friends already).
 * @throws {ConflictError} (reason `'blocked'`) when `user_id` has blocked the requester.
 * @example
 * ```ts
 * const f = await acceptFriendRequest(db, { user_id: me, requester_id: them })
 * ```
 */
export async function acceptFriendRequest(
  db: Kysely<DB>,
  input: AcceptFriendRequestInput,
): Promise<Friendship> {
  assertObject(input, 'input')
  const [user, requester] = distinctIds(
    input.user_id,
    'user_id',
    input.requester_id,
    'requester_id',
  )
  return inTransaction(db, async (trx) => {
    await lockPairForWrite(trx, { a: user, b: requester })
    const rows = await selectPair.execute(trx, { a: user, b: requester })
    const mine = rows.find((r) => r.user_id === user)
    const theirs = rows.find((r) => r.user_id === requester)
    if (theirs?.status !== 'pending') {
      throw new NotFoundError('no pending friend request', { entity: 'friend_request' })
    }
    if (mine?.status === 'blocked') throw blocked()
    await upsertRow.execute(trx, { user_id: requester, friend_id: user, status: 'accepted' })
    return upsertRow.executeTakeFirstOrThrow(trx, {
      user_id: user,
      friend_id: requester,
      status: 'accepted',
    })
  })
}

/**
 * Ends the friendship or request between two users, whichever way it runs:
 * unfriend, cancel one's own request, decline an incoming one. Blocks stay.
 * Returns whether anything was deleted.
 *
 * @throws {InvalidInputError} when an id is not a UUID or both are the same user.
 * @example
 * ```ts
 * await removeFriendship(db, { user_id: me, other_user_id: them })
 * ```
 */
export async function removeFriendship(db: Kysely<DB>, input: UserPair): Promise<boolean> {
  assertObject(input, 'input')
  const [user, other] = distinctIds(input.user_id, 'user_id', input.other_user_id, 'other_user_id')
  return inTransaction(db, async (trx) => {
    await lockPairForWrite(trx, { a: user, b: other })
    return (await deleteRelation.executeAffected(trx, { a: user, b: other })) > 0
  })
}

/**
 * `user_id` blocks `blocked_user_id`: ends any friendship and requests between
 * them (both directions) and returns the block row. Idempotent; a block the
 * other user made stands as well.
 *
 * @throws {InvalidInputError} when an id is not a UUID or both are the same user.
 * @throws {ForeignKeyViolationError} when either user does not exist.
 * @example
 * ```ts
 * await blockUser(db, { user_id: me, blocked_user_id: troll })
 * ```
 */
export async function blockUser(db: Kysely<DB>, input: BlockUserInput): Promise<Friendship> {
  assertObject(input, 'input')
  const [user, other] = distinctIds(
    input.user_id,
    'user_id',
    input.blocked_user_id,
    'blocked_user_id',
  )
  return inTransaction(db, async (trx) => {
    await lockPairForWrite(trx, { a: user, b: other })
    await deleteRelation.execute(trx, { a: user, b: other })
    return insertBlock.executeTakeFirstOrThrow(trx, { user_id: user, friend_id: other })
  })
}

/**
 * Lifts the block `user_id` set on `blocked_user_id` (not one the other user
 * set). Returns whether there was one.
 *
 * @throws {InvalidInputError} when an id is not a UUID or both are the same user.
 * @example
 * ```ts
 * await unblockUser(db, { user_id: me, blocked_user_id: them })
 * ```
 */
export async function unblockUser(db: Kysely<DB>, input: BlockUserInput): Promise<boolean> {
  assertObject(input, 'input')
  const [user, other] = distinctIds(
    input.user_id,
    'user_id',
    input.blocked_user_id,
    'blocked_user_id',
  )
  return inTransaction(db, async (trx) => {
    await lockPairForWrite(trx, { a: user, b: other })
    return (await deleteBlock.executeAffected(trx, { user_id: user, friend_id: other })) > 0
  })
}

/**
 * Whether either user has blocked the other. One query; the same user twice
 * gives `false`.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * if (await isBlocked(db, { user_id: sender, other_user_id: recipient })) throw new ConflictError(…)
 * // select exists (select 1 from "friendships" where "status" = $1 and ((…) or (…))) as "blocked"
 * ```
 */
export async function isBlocked(db: Kysely<DB>, input: UserPair): Promise<boolean> {
  assertIdKey(input, ['user_id', 'other_user_id'])
  const row = await selectBlocked.executeTakeFirst(db, {
    a: input.user_id,
    b: input.other_user_id,
  })
  return row?.blocked === true
}

/**
 * Lists a user's friends (accepted), ordered by username.
 *
 * @throws {InvalidInputError} when `user_id` is not a UUID.
 * @example
 * ```ts
 * const friends = await listFriends(db, me)
 * ```
 */
export async function listFriends(db: Kysely<DB>, user_id: string): Promise<User[]> {
  assertUuid(user_id, 'user_id')
  return selectFriends.execute(db, { user_id })
}

/**
 * Lists a user's pending friend requests: `incoming` (users who asked them)
 * and `outgoing` (users they asked), each newest first.
 *
 * @throws {InvalidInputError} when `user_id` is not a UUID.
 * @example
 * ```ts
 * const { incoming, outgoing } = await listFriendRequests(db, me)
 * ```
 */
export async function listFriendRequests(db: Kysely<DB>, user_id: string): Promise<FriendRequests> {
  assertUuid(user_id, 'user_id')
  const [incoming, outgoing] = await Promise.all([
    selectIncoming.execute(db, { user_id }),
    selectOutgoing.execute(db, { user_id }),
  ])
  return { incoming, outgoing }
}
