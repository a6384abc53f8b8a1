-- guildstore 0009: one stored form per reaction emoji; an overwrite's
-- ADMINISTRATOR leaves the stored channel permissions.
--
-- A reaction's emoji is stored in its canonical form (src/validation/emoji.ts,
-- normalizeEmoji), so two spellings of one emoji are one reaction and take one
-- of the message's 20 slots:
--   * a Unicode emoji without redundant variation selectors: U+FE0F after a
--     character with default emoji presentation (Emoji_Presentation) is
--     dropped ('👍' U+FE0F is '👍'); after one with default text presentation
--     it is what makes the emoji and stays ('❤️', '#️⃣', '🏳️‍🌈');
--   * a custom emoji as name:id, a UUID id in lower case, a decimal id without
--     leading zeros ('party:0123' and '<a:party:000123>' are 'party:123').
-- Before, '👍' and '👍' U+FE0F, or 'party:123' and 'party:0123', were stored
-- as given: two reactions of one emoji. guildstore_canonical_emoji is that
-- rule in SQL (kept: test/messages/emoji-canonical.test.ts runs it and the
-- TypeScript rule on the same vectors, and over every code point). Its
-- Emoji_Presentation ranges are Node 24's (Unicode 17.0), written out.
--
-- Existing rows: each non-canonical reaction is deleted and inserted again
-- under its canonical emoji, through the reaction triggers of 0005, so the
-- per-emoji counts and the per-message distinct counts stay exact. A user who
-- reacted with two spellings of one emoji keeps one reaction (the earliest
-- created_at); an emoji keeps the earliest first_reacted_at of its spellings,
-- so a message lists its emojis in the same order as before.
--
-- The cap of 20 distinct emojis cannot be exceeded by the merge: every
-- canonical emoji of a message stands for at least one of the emojis it had,
-- so a message has at most as many distinct emojis as before. The insert still
-- keeps within the cap on its own (the earliest new emojis, up to 20 in all)
-- rather than trust that argument: nothing can make the migration fail on it.
SET LOCAL lock_timeout = '10s';

-- The canonical form of a stored (already validated) reaction emoji.
CREATE FUNCTION guildstore_canonical_emoji(emoji text) RETURNS text
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
  -- Every character with default emoji presentation (Emoji_Presentation=Yes).
  emoji_presentation CONSTANT text := '['
    '\u231A-\u231B\u23E9-\u23EC\u23F0\u23F3\u25FD-\u25FE\u2614-\u2615'
    '\u2648-\u2653\u267F\u2693\u26A1\u26AA-\u26AB\u26BD-\u26BE\u26C4-\u26C5'
    '\u26CE\u26D4\u26EA\u26F2-\u26F3\u26F5\u26FA\u26FD\u2705\u270A-\u270B'
    '\u2728\u274C\u274E\u2753-\u2755\u2757\u2795-\u2797\u27B0\u27BF'
    '\u2B1B-\u2B1C\u2B50\u2B55\U0001F004\U0001F0CF\U0001F18E'
    '\U0001F191-\U0001F19A\U0001F1E6-\U0001F1FF\U0001F201\U0001F21A\U0001F22F'
    '\U0001F232-\U0001F236\U0001F238-\U0001F23A\U0001F250-\U0001F251'
    '\U0001F300-\U0001F320\U0001F32D-\U0001F335\U0001F337-\U0001F37C'
    '\U0001F37E-\U0001F393\U0001F3A0-\U0001F3CA\U0001F3CF-\U0001F3D3'
    '\U0001F3E0-\U0001F3F0\U0001F3F4\U0001F3F8-\U0001F43E\U0001F440'
    '\U0001F442-\U0001F4FC\U0001F4FF-\U0001F53D\U0001F54B-\U0001F54E'
    '\U0001F550-\U0001F567\U0001F57A\U0001F595-\U0001F596\U0001F5A4'
    '\U0001F5FB-\U0001F64F\U0001F680-\U0001F6C5\U0001F6CC'
    '\U0001F6D0-\U0001F6D2\U0001F6D5-\U0001F6D8\U0001F6DC-\U0001F6DF'
    '\U0001F6EB-\U0001F6EC\U0001F6F4-\U0001F6FC\U0001F7E0-\U0001F7EB'
    '\U0001F7F0\U0001F90C-\U0001F93A\U0001F93C-\U0001F945'
    '\U0001F947-\U0001F9FF\U0001FA70-\U0001FA7C\U0001FA80-\U0001FA8A'
    '\U0001FA8E-\U0001FAC6\U0001FAC8\U0001FACD-\U0001FADC'
    '\U0001FADF-\U0001FAEA\U0001FAEF-\U0001FAF8'
    ']';
  custom text[];
  id text;
BEGIN
  -- Cheap tests first: most emojis hold neither a colon nor a U+FE0F.
  IF strpos(emoji, ':') = 0 THEN
    IF strpos(emoji, chr(65039)) = 0 THEN
      RETURN emoji;
    END IF;
    RETURN regexp_replace(emoji, '(' || emoji_presentation || ')\uFE0F', '\1', 'g');
  END IF;
  -- normalizeEmoji's custom reference: name:id, <name:id>, <:name:id> or
  -- <a:name:id>, the name 2-32 of A-Za-z0-9_, the id a UUID or 1-20 digits.
  -- Lengths and the UUID shape are tested outside the pattern: bounded
  -- repetitions make PostgreSQL's regex engine about 20 times slower.
  custom := regexp_match(emoji, '^(<(a?:)?)?([A-Za-z0-9_]+):([0-9A-Fa-f-]+)(>?)$');
  IF custom IS NOT NULL
    AND (custom[1] IS NULL) = (custom[5] = '')
    AND char_length(custom[3]) BETWEEN 2 AND 32
  THEN
    id := custom[4];
    IF id ~ '^[0-9]+$' AND char_length(id) <= 20 THEN
      RETURN custom[3] || ':' || coalesce(nullif(ltrim(id, '0'), ''), '0');
    END IF;
    IF char_length(id) = 36
      AND translate(lower(id), '0123456789abcdef', '') = '----'
      AND substr(id, 9, 1) = '-' AND substr(id, 14, 1) = '-'
      AND substr(id, 19, 1) = '-' AND substr(id, 24, 1) = '-'
    THEN
      RETURN custom[3] || ':' || lower(id);
    END IF;
  END IF;
  RETURN regexp_replace(emoji, '(' || emoji_presentation || ')\uFE0F', '\1', 'g');
END
$$;

-- No reaction is added or removed while the rows move (reads go on). Measured
-- on 200 000 reactions of which 40 000 moved (20 000 messages): 9 to 11 s on a
-- shared, busy server, so roughly 45 s per million reactions.
LOCK TABLE message_reactions IN SHARE ROW EXCLUSIVE MODE;

CREATE TEMPORARY TABLE guildstore_0009_moved ON COMMIT DROP AS
SELECT r.message_id, r.emoji, guildstore_canonical_emoji(r.emoji) AS canonical, r.user_id, r.created_at
FROM message_reactions r
WHERE (strpos(r.emoji, ':') > 0 OR strpos(r.emoji, chr(65039)) > 0)
  AND r.emoji <> guildstore_canonical_emoji(r.emoji);

-- The earliest first use of each canonical emoji among the messages concerned.
CREATE TEMPORARY TABLE guildstore_0009_first ON COMMIT DROP AS
SELECT c.message_id, guildstore_canonical_emoji(c.emoji) AS canonical, min(c.first_reacted_at) AS first_reacted_at
FROM message_reaction_counts c
WHERE c.message_id IN (SELECT m.message_id FROM guildstore_0009_moved m)
GROUP BY c.message_id, guildstore_canonical_emoji(c.emoji);

DELETE FROM message_reactions r
USING guildstore_0009_moved m
WHERE r.message_id = m.message_id AND r.emoji = m.emoji AND r.user_id = m.user_id;

-- Back under the canonical emoji: one row per (message, emoji, user), the
-- earliest created_at; emojis the message does not hold yet only while it has
-- fewer than 20 (earliest first).
INSERT INTO message_reactions AS r (message_id, emoji, user_id, created_at)
SELECT m.message_id, m.canonical, m.user_id, min(m.created_at)
FROM guildstore_0009_moved m
WHERE EXISTS (
    SELECT 1 FROM message_reaction_counts c
    WHERE c.message_id = m.message_id AND c.emoji = m.canonical)
  OR (m.message_id, m.canonical) IN (
    SELECT n.message_id, n.canonical FROM (
      SELECT x.message_id, x.canonical,
        row_number() OVER (PARTITION BY x.message_id ORDER BY min(x.created_at), x.canonical) AS rank
      FROM guildstore_0009_moved x
      WHERE NOT EXISTS (
        SELECT 1 FROM message_reaction_counts c
        WHERE c.message_id = x.message_id AND c.emoji = x.canonical)
      GROUP BY x.message_id, x.canonical
    ) n
    WHERE n.rank <= 20 - coalesce((
      SELECT s.emoji_count FROM message_reaction_summaries s WHERE s.message_id = n.message_id), 0))
GROUP BY m.message_id, m.canonical, m.user_id
ORDER BY m.message_id, m.canonical, m.user_id
ON CONFLICT (message_id, emoji, user_id) DO UPDATE SET created_at = least(r.created_at, excluded.created_at);

UPDATE message_reaction_counts c
SET first_reacted_at = f.first_reacted_at
FROM guildstore_0009_first f
WHERE c.message_id = f.message_id AND c.emoji = f.canonical
  AND f.first_reacted_at < c.first_reacted_at;

-- The stored channel permissions (0007) were computed by the access rule that
-- let an overwrite's ADMINISTRATOR (bit 8) through; the rule now strips it
-- (only the guild base grants ADMINISTRATOR). Rows holding the bit go: owners
-- and administrators recompute theirs on their next authorized call.
DELETE FROM channel_permission_cache WHERE (permissions & 8) <> 0;
