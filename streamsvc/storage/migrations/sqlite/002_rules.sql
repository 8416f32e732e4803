-- The one home of "a check-in that counts": every query about presence asks this view.
-- (Who is expected at a session is one SQL fragment, storage/sql.py EXPECTED: a recursive
-- view could not be narrowed to one session before it recurses.)
CREATE VIEW counted_checkins (id, session_id, site_id, member, ts) AS
SELECT id, session_id, site_id, member, ts FROM events
WHERE type = 'checkin' AND voided = 0;
