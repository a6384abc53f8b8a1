/** Below every UUID: the keyset start of an ascending first page. */
export const MIN_UUID = '00000000-0000-0000-0000-000000000000'
/** Above every UUID: the keyset start of a descending first page. */
export const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff'
