-- The user's mobile number (E.164), for notifications by SMS; shown only to the user.
ALTER TABLE profiles ADD COLUMN phone TEXT;
