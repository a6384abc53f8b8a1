-- guildstore 0004: guild administration.
--
-- Channel permission overwrites (Discord's order), bans with an optional expiry,
-- invites with a use limit, and an audit log of administrative changes.
--
-- Existing databases need no data change: a 0.1.0 private channel keeps its
-- meaning as the last layer of the overwrite order (a private channel gives
-- nothing to a member who is not in channel_members; the owner and
-- administrators aside), and a database without overwrites computes exactly
-- what 0.1.0 computed.

-- channel_overwrites: per channel, an overwrite for one role (the default
-- @everyone role included) or for one member, with allow and deny bitfields.
-- guild_id is the channel's guild (set by the library from the channel row);
-- the composite foreign keys make a role of another guild impossible, and a
-- member's overwrite goes with their membership (kick, ban, leave) by cascade.
CREATE TABLE channel_overwrites (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  guild_id uuid NOT NULL,
  role_id uuid,
  user_id uuid,
  allow bigint NOT NULL DEFAULT 0,
  deny bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT channel_overwrites_one_target CHECK ((role_id IS NULL) <> (user_id IS NULL)),
  CONSTRAINT channel_overwrites_role_fkey FOREIGN KEY (role_id, guild_id)
    REFERENCES roles (id, guild_id) ON DELETE CASCADE,
  CONSTRAINT channel_overwrites_member_fkey FOREIGN KEY (guild_id, user_id)
    REFERENCES guild_members (guild_id, user_id) ON DELETE CASCADE,
  CONSTRAINT channel_overwrites_channel_role_key UNIQUE (channel_id, role_id),
  CONSTRAINT channel_overwrites_channel_user_key UNIQUE (channel_id, user_id)
);
CREATE INDEX channel_overwrites_role_id_guild_id_idx ON channel_overwrites (role_id, guild_id)
  WHERE role_id IS NOT NULL;
CREATE INDEX channel_overwrites_guild_id_user_id_idx ON channel_overwrites (guild_id, user_id)
  WHERE user_id IS NOT NULL;

-- guild_bans: one row per (guild, user). A ban stands while expires_at is NULL
-- or in the future; an expired row is ignored everywhere (it lapses by itself)
-- and a new ban replaces it.
CREATE TABLE guild_bans (
  guild_id uuid NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  reason text CONSTRAINT guild_bans_reason_length CHECK (char_length(reason) BETWEEN 1 AND 512),
  banned_by uuid REFERENCES users (id) ON DELETE SET NULL,
  expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX guild_bans_user_id_idx ON guild_bans (user_id);
CREATE INDEX guild_bans_banned_by_idx ON guild_bans (banned_by) WHERE banned_by IS NOT NULL;

-- While a ban stands, nobody inserts that membership, whatever the path
-- (addGuildMember, useInvite, plain SQL). The trigger first takes a shared
-- transaction-level advisory lock on (guild, user), which banMember takes
-- exclusively before it deletes the membership; then it reads guild_bans with
-- a fresh snapshot (a PL/pgSQL statement in READ COMMITTED). A join and a ban
-- never interleave, so a ban leaves no membership behind.
CREATE FUNCTION guildstore_ban_lock_key(guild_id uuid, user_id uuid) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT hashtext(guild_id::text || ':' || user_id::text)
$$;

CREATE FUNCTION guildstore_refuse_banned_member() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(
    hashtext('guildstore_guild_bans'), guildstore_ban_lock_key(NEW.guild_id, NEW.user_id));
  IF EXISTS (
    SELECT 1 FROM guild_bans b
    WHERE b.guild_id = NEW.guild_id AND b.user_id = NEW.user_id
      AND (b.expires_at IS NULL OR b.expires_at > statement_timestamp())
  ) THEN
    RAISE EXCEPTION 'the user is banned from this guild'
      USING ERRCODE = '23G01', CONSTRAINT = 'guild_members_not_banned', TABLE = 'guild_members';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER guild_members_refuse_banned
BEFORE INSERT ON guild_members
FOR EACH ROW EXECUTE FUNCTION guildstore_refuse_banned_member();

-- guild_invites: a CSPRNG code (made by the library) that lets anyone holding
-- it join the guild; optional expiry and use limit; revoked_at set on revoke.
-- uses never exceeds max_uses (the use is one conditional UPDATE).
CREATE TABLE guild_invites (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  code text NOT NULL CONSTRAINT guild_invites_code_format CHECK (code ~ '^[A-Za-z0-9_-]{8,64}$'),
  guild_id uuid NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
  inviter_id uuid REFERENCES users (id) ON DELETE SET NULL,
  max_uses integer CONSTRAINT guild_invites_max_uses_range CHECK (max_uses > 0),
  uses integer NOT NULL DEFAULT 0,
  expires_at timestamptz,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT guild_invites_code_key UNIQUE (code),
  CONSTRAINT guild_invites_uses_range CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses))
);
CREATE INDEX guild_invites_guild_id_id_idx ON guild_invites (guild_id, id);
CREATE INDEX guild_invites_inviter_id_idx ON guild_invites (inviter_id) WHERE inviter_id IS NOT NULL;

-- audit_log: one row per administrative change, written in the change's own
-- transaction. actor_id is NULL for trusted calls; changes is
-- { field: { before, after } } (64-bit values as strings), never a secret.
CREATE TABLE audit_log (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  guild_id uuid NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
  actor_id uuid REFERENCES users (id) ON DELETE SET NULL,
  action text NOT NULL CONSTRAINT audit_log_action_format CHECK (action ~ '^[a-z][a-z_]{0,63}$'),
  target_id uuid,
  changes jsonb NOT NULL DEFAULT '{}',
  reason text CONSTRAINT audit_log_reason_length CHECK (char_length(reason) BETWEEN 1 AND 512),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_guild_id_id_idx ON audit_log (guild_id, id);
CREATE INDEX audit_log_guild_id_action_id_idx ON audit_log (guild_id, action, id);
CREATE INDEX audit_log_guild_id_actor_id_id_idx ON audit_log (guild_id, actor_id, id);
CREATE INDEX audit_log_actor_id_idx ON audit_log (actor_id) WHERE actor_id IS NOT NULL;
