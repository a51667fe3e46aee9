-- Render stage queries. The content hash of a statement's unencrypted PDF is kept in the
-- detail of its 'rendered' / 'rerendered' events (no schema change): a re-run of a shard
-- compares it with a fresh render and skips the encryption and upload when they match.

-- name: render_content_hashes
SELECT e.statement_id, e.event_id, e.detail
FROM statement_events e
JOIN statements s ON s.statement_id = e.statement_id
WHERE s.run_id = :run_id AND s.shard = :shard AND s.status = 'rendered'
  AND e.event IN ('rendered', 'rerendered')
ORDER BY e.statement_id, e.event_id;

-- name: render_replace_object
UPDATE statements SET
    sha256 = :sha256,
    pages = :pages,
    size_bytes = :size_bytes,
    updated_at = :at
WHERE statement_id = :statement_id AND status = 'rendered';
