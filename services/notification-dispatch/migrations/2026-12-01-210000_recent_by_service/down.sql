DROP INDEX notifications_by_service;
