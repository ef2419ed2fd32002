//! Counted nouns in messages, right for one and for many: `1 request`,
//! `2 requests`, `1 request or delivery`, `64 requests and deliveries`.

/// `n` followed by `one` when `n` is 1, else by `many`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_anything_else_plural() {
        assert_eq!(count(1, "app", "apps"), "1 app");
        assert_eq!(count(0, "app", "apps"), "0 apps");
        assert_eq!(count(64, "app", "apps"), "64 apps");
    }
}
