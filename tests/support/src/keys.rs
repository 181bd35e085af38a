//! The setting keys a source file declares, so that each crate's test can check its `ALL`
//! list against its constants: a key added without being listed would otherwise be reported
//! as unknown when an operator writes it in a properties file.

/// The values of the `pub const NAME: &str = "ember.…";` items in `source` (the text of a
/// keys file), in order. A value may be on the line after the `=`.
pub fn declared_keys(source: &str) -> Vec<String> {
    source
        .split("pub const ")
        .skip(1)
        .filter_map(|item| {
            let item = &item[..item.find(';')?];
            let (_, value) = item.split_once("&str")?;
            let value = value.trim_start().strip_prefix('=')?.trim();
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            value.starts_with("ember.").then(|| value.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ember_keys_on_one_line_or_two() {
        let source = "/// a\npub const A: &str = \"ember.a\";\n\
                      pub const B: &str =\n    \"ember.b.c\";\n\
                      pub const ENV: &str = \"EMBER_X\";\npub const N: u16 = 1;\n";
        assert_eq!(declared_keys(source), ["ember.a", "ember.b.c"]);
    }
}
