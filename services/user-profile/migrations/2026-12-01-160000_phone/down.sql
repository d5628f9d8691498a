ALTER TABLE profiles DROP COLUMN phone;
