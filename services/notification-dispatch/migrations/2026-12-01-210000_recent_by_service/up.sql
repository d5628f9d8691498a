-- A service's recent notifications, newest first (the developer portal shows them).
CREATE INDEX notifications_by_service ON notifications (provider_id, service_id, created_at);
