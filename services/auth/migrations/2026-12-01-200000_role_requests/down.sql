DROP TABLE role_requests;
