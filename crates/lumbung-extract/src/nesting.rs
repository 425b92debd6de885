//! How deep an HTML page nests its elements, estimated from its tags without building a tree.
//!
//! html5ever's tree builder checks element scopes by walking the stack of open elements, so its
//! time grows with the square of the nesting depth; this linear scan lets [`crate::html`] refuse
//! a page that would take minutes before parsing it.

/// An upper bound of how deep the page nests its elements, read from the tags alone: every
/// start tag opens a level and every end tag closes one, except void elements and those whose
/// end tag may be omitted (`p`, `li`, `td`, ...), which real pages often leave open. Comments,
/// scripts and styles are skipped, as the tree builder would.
pub(crate) fn nesting_depth(source: &str) -> usize {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        at += offset + 1;
        let rest = &bytes[at..];
        if rest.starts_with(b"!--") {
            at += find(rest, b"-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !rest[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = source[at + name_start..at + name_start + name_len].to_ascii_lowercase();
        let end = tag_end(&rest[name_start + name_len..]);
        let self_closing =
            end.is_some_and(|e| e > 0 && rest[name_start + name_len + e - 1] == b'/');
        at += name_start + name_len + end.unwrap_or(0);
        if closing {
            if !is_void_or_implied(&name) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        if matches!(name.as_str(), "script" | "style") {
            let close = format!("</{name}");
            at += find_ignore_case(&bytes[at..], close.as_bytes()).unwrap_or(bytes.len() - at);
            continue;
        }
        if !self_closing && !is_void_or_implied(&name) {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

/// The offset of the `>` that ends a tag, outside quoted attribute values.
fn tag_end(rest: &[u8]) -> Option<usize> {
    let mut quote = None;
    rest.iter().position(|&b| match quote {
        Some(q) => {
            if b == q {
                quote = None;
            }
            false
        }
        None if b == b'"' || b == b'\'' => {
            quote = Some(b);
            false
        }
        None => b == b'>',
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Elements that never hold content, or whose end tag HTML lets authors leave out.
fn is_void_or_implied(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "p"
            | "li"
            | "dt"
            | "dd"
            | "td"
            | "th"
            | "tr"
            | "tbody"
            | "thead"
            | "tfoot"
            | "colgroup"
            | "option"
            | "optgroup"
            | "rb"
            | "rt"
            | "rtc"
            | "rp"
            | "html"
            | "head"
            | "body"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_what_authors_close() {
        assert_eq!(nesting_depth("<div><div><span>x</span></div></div>"), 3);
        // Void, self-closing and end-tag-optional elements do not nest.
        assert_eq!(
            nesting_depth("<ul><li>a<li>b<br><img src='x>'/></ul><p>c<p>d<table><tr><td>e</table>"),
            1
        );
        // Comments and scripts hold no elements.
        assert_eq!(
            nesting_depth("<!-- <div><div> --><script>if (a<b) s='<div><div>'</SCRIPT><b>x</b>"),
            1
        );
        assert_eq!(nesting_depth("a < b and <3 <"), 0);
    }
}
