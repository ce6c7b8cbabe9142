-- Management-review inputs at scale: findings logged in a period, actions done in a period.
CREATE INDEX nonconformities_created ON nonconformities (created_at);
CREATE INDEX corrective_actions_done ON corrective_actions (status, updated_at);
