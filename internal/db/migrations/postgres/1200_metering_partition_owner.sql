-- The meter process that owns the partition now (issue 21: partitions
-- spread over meter nodes and move when one dies). A new owner writes its
-- token here under the row's lock when it takes the partition; every round
-- locks the row and checks the token before it writes, so a process that
-- lost the partition (its session's advisory lock gone) can never commit a
-- round beside the new owner. Empty on SQLite (one process).
ALTER TABLE metering_offsets ADD COLUMN owner TEXT NOT NULL DEFAULT '';
