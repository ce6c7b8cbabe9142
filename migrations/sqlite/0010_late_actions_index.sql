-- Open corrective actions by nonconformity and due date: the overdue check of each listed
-- nonconformity (`status <> 'done' AND due_date < today`) reads this small index on both
-- databases, where PostgreSQL otherwise scans every action.
CREATE INDEX corrective_actions_late ON corrective_actions (nc, due_date) WHERE status <> 'done';
