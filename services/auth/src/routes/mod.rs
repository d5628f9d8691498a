pub mod applications;
pub mod authorize;
pub mod internal;
pub mod metadata;
pub mod seed;
pub mod token;
pub mod users;
