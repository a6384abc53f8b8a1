-- guildstore 0001: the initial schema.
--
-- Thirteen tables of a Discord-like chat: users and their sessions, guilds with
-- members, roles and role assignments, channels (guild text/voice channels and
-- DM conversations alike) with private-channel membership, messages with their
-- attachments, DM pairs with per-participant read state, and friendships.
--
-- Deviations from the Rust seed, on purpose:
--   * ids are UUIDv7 from guildstore_uuidv7() (the seed said gen_random_uuid(),
--     which makes v4 ids that are not time-ordered; message keyset paging needs v7).
--   * roles.permissions (the contract's name) instead of permissions_bitfield.
--   * a DM conversation is also a `channels` row of type 'dm' (guild_id NULL), so
--     DMs and guild channels share one `messages` table, one history index and one
--     search path; dm_channels holds the unordered user pair, unique per pair.
--   * usernames and emails are unique on lower(...), i.e. case-insensitively.

-- UUIDv7 (RFC 9562): 48-bit Unix-millisecond timestamp, version 7, variant 10,
-- 74 random bits. PostgreSQL 18 has uuidv7() built in; 14-17 do not.
CREATE FUNCTION guildstore_uuidv7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(
    set_bit(
      set_bit(
        overlay(
          uuid_send(gen_random_uuid())
          PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
          FROM 1 FOR 6
        ),
        52, 1
      ),
      53, 1
    ),
    'hex'
  )::uuid
$$;

CREATE TYPE user_status AS ENUM ('online', 'away', 'busy', 'offline');
CREATE TYPE channel_type AS ENUM ('text', 'voice', 'dm');
CREATE TYPE friendship_status AS ENUM ('pending', 'accepted', 'blocked');

-- users: accounts. password_hash and mfa_secret are secrets: never in the
-- library's default projection (only findUserCredentials reads them).
CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  username text NOT NULL CONSTRAINT users_username_length CHECK (char_length(username) BETWEEN 2 AND 32),
  email text CONSTRAINT users_email_format CHECK (char_length(email) <= 320 AND email LIKE '_%@_%'),
  password_hash text CONSTRAINT users_password_hash_length CHECK (char_length(password_hash) BETWEEN 1 AND 1024),
  mfa_secret text CONSTRAINT users_mfa_secret_length CHECK (char_length(mfa_secret) BETWEEN 1 AND 1024),
  display_name text CONSTRAINT users_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 64),
  avatar_url text CONSTRAINT users_avatar_url_length CHECK (char_length(avatar_url) BETWEEN 1 AND 2048),
  status user_status NOT NULL DEFAULT 'offline',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- sessions: refresh tokens, stored only as the SHA-256 hex of the token.
CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash text NOT NULL CONSTRAINT sessions_token_hash_format CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  expires_at timestamptz NOT NULL,
  ip_address inet,
  user_agent text CONSTRAINT sessions_user_agent_length CHECK (char_length(user_agent) <= 1024),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- guilds: servers/workspaces. Deleting the owner's account deletes the guild.
CREATE TABLE guilds (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  name text NOT NULL CONSTRAINT guilds_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guilds_owner_id_idx ON guilds (owner_id);

-- guild_members: who belongs to which guild (the owner too).
CREATE TABLE guild_members (
  guild_id uuid NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  nickname text CONSTRAINT guild_members_nickname_length CHECK (char_length(nickname) BETWEEN 1 AND 64),
  joined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX guild_members_user_id_idx ON guild_members (user_id);

-- roles: a guild's roles with a 64-bit permission bitfield. Exactly one role per
-- guild is the default (@everyone) role, which every member has implicitly.
CREATE TABLE roles (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  guild_id uuid NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
  name text NOT NULL CONSTRAINT roles_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
  permissions bigint NOT NULL DEFAULT 0,
  position integer NOT NULL DEFAULT 0 CONSTRAINT roles_position_range CHECK (position >= 0),
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT roles_id_guild_id_key UNIQUE (id, guild_id)
);
CREATE INDEX roles_guild_id_position_idx ON roles (guild_id, position);
CREATE UNIQUE INDEX roles_one_default_per_guild ON roles (guild_id) WHERE is_default;

-- member_roles: role assignments. A role can only be assigned within its own
-- guild and to a member of it; leaving the guild or deleting the role removes it.
CREATE TABLE member_roles (
  guild_id uuid NOT NULL,
  user_id uuid NOT NULL,
  role_id uuid NOT NULL,
  PRIMARY KEY (guild_id, user_id, role_id),
  FOREIGN KEY (guild_id, user_id) REFERENCES guild_members (guild_id, user_id) ON DELETE CASCADE,
  FOREIGN KEY (role_id, guild_id) REFERENCES roles (id, guild_id) ON DELETE CASCADE
);
CREATE INDEX member_roles_role_id_guild_id_idx ON member_roles (role_id, guild_id);

-- channels: guild text/voice channels and, with type 'dm' and no guild, the
-- channel of a DM conversation. Private guild channels are visible only to
-- channel_members (and to the owner and administrators).
CREATE TABLE channels (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  guild_id uuid REFERENCES guilds (id) ON DELETE CASCADE,
  name text CONSTRAINT channels_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
  type channel_type NOT NULL DEFAULT 'text',
  topic text CONSTRAINT channels_topic_length CHECK (char_length(topic) <= 1024),
  position integer NOT NULL DEFAULT 0 CONSTRAINT channels_position_range CHECK (position >= 0),
  is_private boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT channels_kind CHECK (
    (type = 'dm' AND guild_id IS NULL AND name IS NULL AND NOT is_private)
    OR (type <> 'dm' AND guild_id IS NOT NULL AND name IS NOT NULL)
  )
);
CREATE INDEX channels_guild_id_position_idx ON channels (guild_id, position);

-- channel_members: membership of private channels.
CREATE TABLE channel_members (
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user_id_idx ON channel_members (user_id);

-- messages: the one history of guild channels and DMs. Soft delete sets
-- deleted_at; purge hard-deletes. `search` is the full-text vector ('simple'
-- configuration: no language-specific stemming, right for a multilingual chat).
CREATE TABLE messages (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  author_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  reply_to uuid REFERENCES messages (id) ON DELETE SET NULL,
  content text NOT NULL CONSTRAINT messages_content_length CHECK (char_length(content) BETWEEN 1 AND 4000),
  created_at timestamptz NOT NULL DEFAULT now(),
  edited_at timestamptz,
  deleted_at timestamptz,
  search tsvector NOT NULL GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED
);
-- History pages: keyset on the time-ordered id, live rows only.
CREATE INDEX messages_channel_id_id_live_idx ON messages (channel_id, id) WHERE deleted_at IS NULL;
-- For cascades and purges, which must also see soft-deleted rows.
CREATE INDEX messages_channel_id_idx ON messages (channel_id);
CREATE INDEX messages_author_id_idx ON messages (author_id);
CREATE INDEX messages_reply_to_idx ON messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_deleted_at_idx ON messages (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX messages_search_idx ON messages USING gin (search);

-- message_attachments: uploaded files (the object lives in S3 under s3_key).
-- They go with their message's hard delete.
CREATE TABLE message_attachments (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  filename text NOT NULL CONSTRAINT message_attachments_filename_length CHECK (char_length(filename) BETWEEN 1 AND 255),
  s3_key text NOT NULL CONSTRAINT message_attachments_s3_key_length CHECK (char_length(s3_key) BETWEEN 1 AND 1024),
  size bigint NOT NULL CONSTRAINT message_attachments_size_range CHECK (size >= 0),
  content_type text CONSTRAINT message_attachments_content_type_length CHECK (char_length(content_type) BETWEEN 1 AND 255),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_attachments_message_id_idx ON message_attachments (message_id);

-- dm_channels: a 1:1 DM conversation, unique per unordered pair of users
-- (user_a < user_b), so find-or-create is one INSERT ... ON CONFLICT. Its id is
-- the id of its `channels` row (type 'dm').
CREATE TABLE dm_channels (
  id uuid PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE DEFERRABLE INITIALLY IMMEDIATE,
  user_a uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  user_b uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT dm_channels_pair_order CHECK (user_a < user_b),
  CONSTRAINT dm_channels_pair_key UNIQUE (user_a, user_b)
);
CREATE INDEX dm_channels_user_b_idx ON dm_channels (user_b);

-- When a DM pair goes (a participant's account was deleted), its channel and
-- history go too.
CREATE FUNCTION guildstore_delete_dm_channel() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM channels WHERE id = OLD.id AND type = 'dm';
  RETURN NULL;
END
$$;
CREATE TRIGGER dm_channels_delete_channel
AFTER DELETE ON dm_channels
FOR EACH ROW EXECUTE FUNCTION guildstore_delete_dm_channel();

-- dm_participants: the two users of a DM and how far each has read.
CREATE TABLE dm_participants (
  channel_id uuid NOT NULL REFERENCES dm_channels (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  last_read_message_id uuid REFERENCES messages (id) ON DELETE SET NULL,
  joined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX dm_participants_user_id_idx ON dm_participants (user_id);
CREATE INDEX dm_participants_last_read_message_id_idx ON dm_participants (last_read_message_id);

-- friendships: one row per direction. (a, b, 'pending') is a request from a to b;
-- an accepted friendship is two rows (a, b) and (b, a); (a, b, 'blocked') means
-- a blocked b.
CREATE TABLE friendships (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  friend_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  status friendship_status NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, friend_id),
  CONSTRAINT friendships_not_self CHECK (user_id <> friend_id)
);
CREATE INDEX friendships_friend_id_idx ON friendships (friend_id);
