/// AMQP topic matching: words split on `.`, `*` matches exactly one word, `#` zero or more.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches(&pattern, &key)
}

fn matches(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| matches(rest, &key[skip..])),
        Some((word, rest)) => match key.split_first() {
            Some((k, key_rest)) => (*word == "*" || word == k) && matches(rest, key_rest),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn star_and_hash_follow_amqp() {
        assert!(topic_matches("token.revoked", "token.revoked"));
        assert!(!topic_matches("token.revoked", "token.issued"));
        assert!(topic_matches("token.*", "token.revoked"));
        assert!(!topic_matches("token.*", "token.revoked.late"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(topic_matches("user.#", "user"));
        assert!(topic_matches("*.deleted", "user.deleted"));
        assert!(topic_matches("#.deleted", "a.b.deleted"));
        assert!(!topic_matches("*.deleted", "a.b.deleted"));
    }
}
