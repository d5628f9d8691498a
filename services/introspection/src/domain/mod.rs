//! What a token is, and what a caller may see of it.

pub mod answer;
pub mod inspect;
