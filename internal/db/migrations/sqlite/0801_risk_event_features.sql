-- What each stored event's decision was based on besides the event
-- (counters, graph, lists, score, list hits) and the decision it got, so a
-- backtest replays rules over them without reading the decisions.
ALTER TABLE risk_events ADD COLUMN features TEXT NOT NULL DEFAULT '{}';
ALTER TABLE risk_events ADD COLUMN decision TEXT NOT NULL DEFAULT '';
