-- guildstore 0002: one identity rule for usernames and emails, and private-channel
-- membership that cannot outlive the guild membership (issue 11, items 1-3).
--
-- Existing rows are migrated, never silently changed:
--   * usernames that contain '@' (after NFKC, so '＠' counts) and usernames or
--     emails that collide under the new rule make this migration FAIL with a
--     message naming the problem and the user ids involved; nothing is applied.
--     Resolve them (rename one account) and run the migration again. See
--     docs/identity.md for the queries that list them.
--   * channel_members rows whose user is no longer a member of the channel's
--     guild (the 0.1.0 removal race left some) or that point at a DM channel
--     are deleted: they granted access nobody should have.
--
-- Needs the ICU collation "und-x-icu" (PostgreSQL built with ICU: the default
-- since 16, and every PGDG/Debian/RHEL/Docker/managed build of 14-15 we know of)
-- and a UTF8 database (normalize() needs it).

-- Wait at most this long for the locks on users, channels and channel_members
-- (a busy table): fail and retry later rather than queue every other query.
SET LOCAL lock_timeout = '30s';

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
    RAISE EXCEPTION 'guildstore 0002 needs the ICU collation "und-x-icu" (PostgreSQL built with ICU) for Unicode case folding of usernames and emails';
  END IF;
  IF pg_encoding_to_char((SELECT encoding FROM pg_database WHERE datname = current_database())) <> 'UTF8' THEN
    RAISE EXCEPTION 'guildstore 0002 needs a UTF8 database (Unicode normalisation of usernames and emails)';
  END IF;
END
$$;

-- The identity rule: two usernames (or two emails) are the same account name
-- when their keys are equal. key(x) =
--   NFKC(x)                       compatibility forms: 'ﬁ' = 'fi', '＠' = '@', 'Ｋ' = 'K',
--                                 and NFC, so NFD 'José' = NFC 'José'
--   without default-ignorables    soft hyphen, zero-width (non-)joiners/spaces, word
--                                 joiner, BOM, variation selectors: invisible padding
--   upper(), then lower(), ICU    full Unicode case mapping, locale-independent
--                                 ("und" root locale): 'ß' -> 'SS' -> 'ss', 'ſ' -> 'S' -> 's',
--                                 'ς' -> 'Σ' -> 'σ', 'ı' -> 'I' -> 'i', 'K' (Kelvin) -> 'k'
--   'ς' -> 'σ'                    ICU's lower() writes a word-final sigma as 'ς'; make the
--                                 key use one sigma whatever the position
--   'ß' -> 'ss'                   capital sharp s 'ẞ' upper-cases to itself and lower-cases
--                                 to 'ß': fold it as Unicode full case folding does
--   NFKC again                    case mapping can leave a string unnormalised
-- Strings with the same upper-case form always get the same key. The library
-- never re-implements this in JavaScript: uniqueness (the expression indexes
-- below) and every lookup call this function.
--
-- IMMUTABLE as required by an index: like any ICU-collation index, the indexes on
-- it must be REINDEXed after an ICU major upgrade changes case mappings
-- (PostgreSQL warns about a collation version mismatch then).
CREATE FUNCTION guildstore_identity_key(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT normalize(
    replace(
      translate(
        lower(
          upper(
            regexp_replace(
              normalize(value, NFKC),
              '[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8]',
              '',
              'g'
            ) COLLATE "und-x-icu"
          ) COLLATE "und-x-icu"
        ),
        'ς',
        'σ'
      ),
      'ß',
      'ss'
    ),
    NFKC
  )
$$;

-- Existing data: refuse to guess. Usernames may not contain '@' any more (a
-- username could pose as another account's email at login), and no two
-- usernames / emails may share a key.
DO $$
DECLARE
  offenders text;
BEGIN
  SELECT string_agg(id::text, ', ' ORDER BY id) INTO offenders
  FROM (SELECT id FROM users WHERE strpos(guildstore_identity_key(username), '@') > 0 ORDER BY id LIMIT 20) o;
  IF offenders IS NOT NULL THEN
    RAISE EXCEPTION 'guildstore 0002: usernames must not contain "@" any more; rename these users first (ids, at most 20 shown): %', offenders
      USING HINT = 'See docs/identity.md: SELECT id, username FROM users WHERE strpos(guildstore_identity_key(username), ''@'') > 0';
  END IF;

  SELECT string_agg(ids, '; ') INTO offenders
  FROM (
    SELECT string_agg(id::text, ', ' ORDER BY id) AS ids
    FROM users GROUP BY guildstore_identity_key(username) HAVING count(*) > 1
    ORDER BY min(id::text) LIMIT 20
  ) d;
  IF offenders IS NOT NULL THEN
    RAISE EXCEPTION 'guildstore 0002: these users have usernames that are the same under the identity rule (NFKC + case folding); rename all but one of each group first (ids, at most 20 groups): %', offenders
      USING HINT = 'See docs/identity.md: SELECT guildstore_identity_key(username), array_agg(id) FROM users GROUP BY 1 HAVING count(*) > 1';
  END IF;

  SELECT string_agg(ids, '; ') INTO offenders
  FROM (
    SELECT string_agg(id::text, ', ' ORDER BY id) AS ids
    FROM users WHERE email IS NOT NULL GROUP BY guildstore_identity_key(email) HAVING count(*) > 1
    ORDER BY min(id::text) LIMIT 20
  ) d;
  IF offenders IS NOT NULL THEN
    RAISE EXCEPTION 'guildstore 0002: these users have emails that are the same under the identity rule (NFKC + case folding); change all but one of each group first (ids, at most 20 groups): %', offenders
      USING HINT = 'See docs/identity.md: SELECT guildstore_identity_key(email), array_agg(id) FROM users WHERE email IS NOT NULL GROUP BY 1 HAVING count(*) > 1';
  END IF;
END
$$;

-- Uniqueness on the key replaces uniqueness on lower(). The migration runs in
-- one transaction, so CONCURRENTLY is not available; building the two indexes
-- locks writes to users for the time of the build.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX users_username_identity_key ON users (guildstore_identity_key(username));
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX users_email_identity_key ON users (guildstore_identity_key(email));
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX users_username_lower_key;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX users_email_lower_key;

-- A username never contains '@' (also not as '＠' or '﹫', which NFKC makes '@'),
-- so a login is an email exactly when it contains '@'. Checked above already.
-- (NOT VALID + VALIDATE would not help inside one transaction; the table is
-- locked for the index builds above anyway.)
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_username_no_at
  CHECK (strpos(guildstore_identity_key(username), '@') = 0);

-- channel_members carries the channel's guild_id, and (guild_id, user_id) is a
-- foreign key to guild_members ON DELETE CASCADE: removing a guild member
-- removes their private-channel memberships in the same delete, and a
-- concurrent addChannelMember either locks the membership row first (the
-- removal then waits and its cascade sees the committed row) or finds it gone
-- (the foreign key refuses the row). No interleaving can leave a row behind.
-- (channel_id, guild_id) references channels (id, guild_id), so the guild_id
-- is always the channel's own; DM channels (guild_id NULL) have no members here.
ALTER TABLE channel_members ADD COLUMN guild_id uuid;

-- Back-fill from the channel; drop rows of DM channels and rows whose user is
-- no longer a member of the guild (leaked by the 0.1.0 race).
UPDATE channel_members cm SET guild_id = c.guild_id FROM channels c WHERE c.id = cm.channel_id;
DELETE FROM channel_members cm
WHERE cm.guild_id IS NULL
   OR NOT EXISTS (
     SELECT 1 FROM guild_members gm WHERE gm.guild_id = cm.guild_id AND gm.user_id = cm.user_id
   );

-- squawk-ignore adding-not-nullable-field
ALTER TABLE channel_members ALTER COLUMN guild_id SET NOT NULL;

-- The target of the (channel_id, guild_id) foreign key (a unique index is enough).
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX channels_id_guild_id_key ON channels (id, guild_id);

-- Validated at once (one transaction; channel_members is small: one row per
-- member of a private channel).
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ALTER TABLE channel_members ADD CONSTRAINT channel_members_guild_member_fkey
  FOREIGN KEY (guild_id, user_id) REFERENCES guild_members (guild_id, user_id) ON DELETE CASCADE;
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ALTER TABLE channel_members ADD CONSTRAINT channel_members_channel_guild_fkey
  FOREIGN KEY (channel_id, guild_id) REFERENCES channels (id, guild_id) ON DELETE CASCADE;

-- For the cascade from guild_members (guild_id, user_id).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX channel_members_guild_id_user_id_idx ON channel_members (guild_id, user_id);
