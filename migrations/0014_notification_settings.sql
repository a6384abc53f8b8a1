-- guildstore 0014: notification settings that shape the counts (issue 25, item 1).
--
-- Per user and guild: a level ('all', 'mentions', 'nothing'), whether @everyone
-- and role mentions are suppressed, and a mute with an optional expiry. Per
-- user and channel (guild channels and DMs): an override of the level and a
-- mute with an optional expiry. A row exists only once a user changed a
-- setting; no row means the defaults ('all', nothing suppressed, not muted).
-- A mute ends by time alone (muted_until in the past), with no write.
-- listChannelReadStates applies them (docs/read-state.md, "Notification settings").
CREATE TABLE guild_notification_settings (
  guild_id uuid NOT NULL,
  user_id uuid NOT NULL,
  level text NOT NULL DEFAULT 'all'
    CONSTRAINT guild_notification_settings_level CHECK (level IN ('all', 'mentions', 'nothing')),
  suppress_everyone boolean NOT NULL DEFAULT false,
  suppress_roles boolean NOT NULL DEFAULT false,
  muted boolean NOT NULL DEFAULT false,
  -- When the mute ends; NULL: until unmuted.
  muted_until timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (guild_id, user_id),
  FOREIGN KEY (guild_id, user_id) REFERENCES guild_members (guild_id, user_id) ON DELETE CASCADE
);
CREATE INDEX guild_notification_settings_user_id_idx ON guild_notification_settings (user_id);

CREATE TABLE channel_notification_settings (
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- NULL: the guild's level (a DM: 'all').
  level text
    CONSTRAINT channel_notification_settings_level CHECK (level IN ('all', 'mentions', 'nothing')),
  muted boolean NOT NULL DEFAULT false,
  muted_until timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_notification_settings_user_id_idx ON channel_notification_settings (user_id);
