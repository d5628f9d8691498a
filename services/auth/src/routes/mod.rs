pub mod applications;
pub mod metadata;
pub mod seed;
pub mod token;
pub mod users;
