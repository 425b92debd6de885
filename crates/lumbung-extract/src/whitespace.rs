//! Whitespace rules shared by every format, so that the same words give the same text (and the
//! same content for chunking and citations) whichever format they came from.

/// Collapses runs of spaces within a line, trims every line, keeps single line breaks, turns
/// any run of blank lines into one (a paragraph break) and trims the whole.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_lines = 0usize;
    let text = text.replace("\r\n", "\n");
    for line in text.split(is_line_break) {
        let line = single_line(line);
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        out.push_str(&line);
        blank_lines = 0;
    }
    out
}

/// The text on one line: every whitespace run becomes one space, invisible characters go.
pub(crate) fn single_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

fn is_line_break(c: char) -> bool {
    // \r alone is an old Mac line end; form feeds separate pages in text dumps.
    matches!(
        c,
        '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Characters that render as nothing but would split words for the lexical index.
fn is_invisible(c: char) -> bool {
    (c.is_control() && !c.is_whitespace()) || matches!(c, '\u{feff}' | '\u{200b}' | '\u{ad}')
}

/// Whether `c` belongs to a script written without spaces between words (Chinese, Japanese),
/// where joining two lines must not insert a space.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{2e80}'..='\u{2fdf}'     // radicals
        | '\u{3000}'..='\u{30ff}'   // CJK punctuation, hiragana, katakana
        | '\u{3400}'..='\u{4dbf}'   // extension A
        | '\u{4e00}'..='\u{9fff}'   // unified ideographs
        | '\u{f900}'..='\u{faff}'   // compatibility ideographs
        | '\u{ff00}'..='\u{ffef}'   // full-width forms and punctuation
        | '\u{20000}'..='\u{3134f}' // extensions B to G
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_spaces_collapse_and_lines_are_trimmed() {
        assert_eq!(normalize("  a \t  b  \n   c\u{3000}d  "), "a b\nc d");
    }

    #[test]
    fn blank_line_runs_become_one_paragraph_break() {
        assert_eq!(
            normalize("\n\none\r\n\r\n \n\t\ntwo\rthree\n\n"),
            "one\n\ntwo\nthree"
        );
        assert_eq!(normalize("page one\u{c}page two"), "page one\npage two");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(
            normalize("pass\u{ad}word\u{0}\u{200b} reset\u{feff}"),
            "password reset"
        );
    }

    #[test]
    fn whitespace_only_is_empty() {
        assert_eq!(normalize(" \n\u{a0}\n\t"), "");
        assert_eq!(single_line("\n a\n\nb \n"), "a b");
    }

    #[test]
    fn cjk_detection() {
        assert!(is_cjk('焊') && is_cjk('。') && is_cjk('，') && is_cjk('カ'));
        assert!(!is_cjk('a') && !is_cjk('é') && !is_cjk('1') && !is_cjk(' '));
    }
}
