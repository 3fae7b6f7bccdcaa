//! RFC 6901 JSON pointers, built only when a violation is reported.

/// Appends `/token` to `pointer`, escaping `~` as `~0` and `/` as `~1`.
pub(crate) fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            other => pointer.push(other),
        }
    }
}

/// The pointer made of `tokens`, in order.
pub(crate) fn pointer<'a>(tokens: impl IntoIterator<Item = &'a str>) -> String {
    let mut pointer = String::new();
    for token in tokens {
        push_token(&mut pointer, token);
    }
    pointer
}

/// The pointer of the trait group `group` in a patch document.
pub(crate) fn group_pointer(group: &str) -> String {
    pointer(["traits", group])
}

/// The pointer of the trait `name` of `group` in a patch document.
pub(crate) fn trait_pointer(group: &str, name: &str) -> String {
    pointer(["traits", group, name])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_and_slash_are_escaped() {
        assert_eq!(trait_pointer("a/b", "c~d"), "/traits/a~1b/c~0d");
    }
}
