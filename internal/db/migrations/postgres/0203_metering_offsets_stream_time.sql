-- The JetStream timestamp (unix nanoseconds, exact as JetStream gives it)
-- of the message at stream_seq. A meter worker resuming after the offset
-- first checks the stream still holds that message there: a stream that
-- went back (JetStream lost messages it held in memory, or the stream was
-- recreated) gives its sequence numbers again, and they must not be
-- skipped as redeliveries. 0 for offsets stored before this column.
ALTER TABLE metering_offsets ADD COLUMN stream_time BIGINT NOT NULL DEFAULT 0;
