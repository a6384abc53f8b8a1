/**
 * The words message content is made of. `COMMON` is ordered by intended
 * frequency (the generator draws index `floor(n * random()^3)`, a Zipf-like
 * skew: the first word is in most messages, the last in well under 1%).
 * `RARE` words appear in about 0.005% of messages each.
 */
export const COMMON: readonly string[] = [
  ...new Set(
    `
the to and you it is that of for in on this lol with just but have not was are be so what
like my we do at can it's if all no me get i'm yes ok your about one know they up out will
now time good think there from how go when would more people see really make new an he she
want game today some back well also then because got need too going work still right any
only much here thanks day even why first way last server channel message update build
fix deploy release bug test code review merge branch commit push pull issue feature plan
meeting call voice stream music song video photo image link post thread reply react emoji
guild role admin mod user friend invite join leave ban kick mute welcome hello hey morning
night tonight tomorrow week weekend monday friday hour minute later soon again never always
maybe sure thing nice great cool awesome funny weird sad happy tired busy free ready done
start stop play win lose match team rank level quest raid boss loot drop event party group
coffee tea pizza lunch dinner breakfast food drink water beer cake snack cook kitchen table
home house room city school class exam homework project paper book read write learn teach
help question answer idea problem reason result number point part place world life family
phone laptop screen keyboard mouse battery charger cable network wifi router signal storage
database query index table schema migration backup restore cluster replica primary latency
cache memory disk cpu thread process docker kubernetes container image registry pipeline
rust python javascript typescript golang java kotlin swift ruby haskell elixir scala
window door garden tree flower river mountain ocean beach island forest desert valley cloud
rain snow storm wind sun moon star planet rocket space orbit galaxy comet meteor eclipse
red blue green yellow orange purple black white silver golden pink brown gray violet cyan
`
      .trim()
      .split(/\s+/),
  ),
]

/** Rare words: a search for one of these hits a few dozen rows per million messages. */
export const RARE: readonly string[] = `
xylophone quokka zeppelin marzipan obsidian kumquat sassafras gnocchi fjord axolotl
narwhal pangolin quasar yodel zither bamboozle kerfuffle lollygag snollygoster flibbertigibbet
`
  .trim()
  .split(/\s+/)
