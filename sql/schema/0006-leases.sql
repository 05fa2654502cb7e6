-- sql/schema/0006-leases.sql -- a leased task is claimed, running or
-- expired.
--
-- No table changes.  A worker pool now claims with started_ms NULL and
-- writes started_ms when a thread starts the handler (within about 10
-- ms), so a task it claimed ahead of a free thread is not shown as
-- running, and an attempt's times are the handler's.  A leased task
-- (state 'running') reads as:
--   claimed   started_ms IS NULL and the lease still holds
--   running   started_ms IS NOT NULL and the lease still holds
--   expired   lease_until_ms has passed (its worker died or stalled);
--             the next reap makes it ready again, or dead
-- The views, recreated after this migration, say so: spool_queues counts
-- the three, spool_running lists running ones only, spool_leases every
-- leased task with its lease_state.

PRAGMA user_version = 6;
