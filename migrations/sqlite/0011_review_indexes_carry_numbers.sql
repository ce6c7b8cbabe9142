-- PostgreSQL's 0011 adds the number to the indexes the review inputs read by period. SQLite's
-- indexes already carry it (the number is the rowid), so nothing changes here; the file keeps
-- both databases' migrations numbered alike.
SELECT 1;
