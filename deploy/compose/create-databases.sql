-- A database per service, created when the PostgreSQL volume is first initialised.
CREATE DATABASE auth;
CREATE DATABASE introspection;
CREATE DATABASE user_profile;
CREATE DATABASE blog;
CREATE DATABASE webhook;
CREATE DATABASE notification_dispatch;
CREATE DATABASE portal;
