//! Whitespace rules shared by every format, so that the same words give the same text (and the
//! same content for chunking and citations) whichever format they came from.

use lumbung_core::Language;

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

/// Joins the lines of paragraphs that a plain-text editor or a PDF wrapped at a fixed width, so
/// that a sentence is not cut at every line end. Deliberate line breaks stay: after a sentence
/// end or a colon, before a list item or a differently indented line, after a short line, and
/// where the next line's first word would have fitted on the line (the writer broke it there).
/// Only lines in the wrapping zone (at least three quarters of the longest line, which must be
/// 60 characters or more) are joined.
pub(crate) fn unwrap_hard_wraps(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.split(is_line_break).collect();
    let width = lines
        .iter()
        .map(|l| l.trim_end().chars().count())
        .max()
        .unwrap_or(0);
    if width < 60 {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    for (index, line) in lines.iter().enumerate() {
        out.push_str(line);
        let Some(next) = lines.get(index + 1) else {
            break;
        };
        if wrapped(line, next, width) {
            let (last, first) = (
                line.trim_end().chars().last(),
                next.trim_start().chars().next(),
            );
            if !(last.is_some_and(is_cjk) && first.is_some_and(is_cjk)) {
                out.push(' ');
            }
        } else {
            out.push('\n');
        }
    }
    out
}

/// Whether the break between `line` and `next` is a wrap rather than the writer's.
fn wrapped(line: &str, next: &str, width: usize) -> bool {
    let (current, following) = (line.trim(), next.trim());
    if current.is_empty() || following.is_empty() {
        return false;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    if indent(line) != indent(next) {
        return false;
    }
    if current.ends_with(['.', '!', '?', ':', ';', '。', '！', '？', '：', '；']) {
        return false;
    }
    if starts_list_item(following) {
        return false;
    }
    let length = line.trim_end().chars().count();
    if length * 4 < width * 3 {
        return false;
    }
    let last = current.chars().last();
    let first = following.chars().next();
    if last.is_some_and(is_cjk) && first.is_some_and(is_cjk) {
        return true;
    }
    let first_word = following
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .count();
    first.is_some_and(|c| c.is_lowercase() || c.is_ascii_digit())
        || current.ends_with([',', '-', '('])
        || ends_with_function_word(current)
        || length + 1 + first_word > width
}

/// A line ending in "the", "of", "on", "yang" or "dan" stops mid-sentence, whatever the next
/// line starts with ("... the barrel heater band of zone 3 on" / "IMM-5 burned out").
fn ends_with_function_word(line: &str) -> bool {
    line.rsplit(char::is_whitespace).next().is_some_and(|word| {
        word.chars().all(char::is_lowercase) && Language::is_function_word(word)
    })
}

/// `- x`, `* x`, `• x`, `1. x`, `2) x`, `a) x`, `(3) x`.
fn starts_list_item(line: &str) -> bool {
    if line.starts_with(['-', '*', '•', '·', '–', '—', '(']) {
        return true;
    }
    let marker: String = line
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let rest = &line[marker.len()..];
    let numbered = !marker.is_empty()
        && (marker.chars().all(|c| c.is_ascii_digit()) || marker.chars().count() == 1);
    numbered && (rest.starts_with(". ") || rest.starts_with(") "))
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
    fn wrapped_paragraphs_are_joined_and_deliberate_breaks_kept() {
        let text = "Keep this card near the shift leader's desk. It lists who to call for which, so that a\n\
                    stopped line does not wait for the wrong team.\n\
                    \n\
                    Priority rules\n\
                    \x20 P1, a production line is stopped because of an IT system: helpdesk calls within\n\
                    \x20 15 minutes and the on-call engineer is alerted at once. Say \"line stopped\" first\n\
                    \x20 the call.\n\
                    \x20 P2, a whole team cannot work: response within 1 hour.\n\
                    On-site desks\n\
                    \x20 Cikarang plant, main office building, ground floor: Monday to Friday 7-17\n\
                    \x20 Karawang plant, building C, room C-104: Monday to Friday 08:00-16:30\n\
                    1. First step of a list that is long enough to reach the wrapping zone here\n\
                    2. Second step\n\
                    The barrel heater band of zone 3 burned out during shift B and then the line on\n\
                    IMM-5 stood still for 7.25 hours.";
        assert_eq!(
            normalize(&unwrap_hard_wraps(text)),
            "Keep this card near the shift leader's desk. It lists who to call for which, so that a \
             stopped line does not wait for the wrong team.\n\n\
             Priority rules\n\
             P1, a production line is stopped because of an IT system: helpdesk calls within 15 \
             minutes and the on-call engineer is alerted at once. Say \"line stopped\" first the call.\n\
             P2, a whole team cannot work: response within 1 hour.\n\
             On-site desks\n\
             Cikarang plant, main office building, ground floor: Monday to Friday 7-17\n\
             Karawang plant, building C, room C-104: Monday to Friday 08:00-16:30\n\
             1. First step of a list that is long enough to reach the wrapping zone here\n\
             2. Second step\n\
             The barrel heater band of zone 3 burned out during shift B and then the line on \
             IMM-5 stood still for 7.25 hours."
        );
    }

    #[test]
    fn short_texts_and_chinese_lines() {
        assert_eq!(unwrap_hard_wraps("a\nb"), "a\nb");
        let chinese = format!(
            "{}\n{}",
            "焊接作业前必须检查设备接地是否良好佩戴防护面罩阻燃手套和绝缘安全鞋作业区域应保持通风并清除易燃物品动火作业需要办理许可证并安排专人监护焊工",
            "持证上岗。"
        );
        assert_eq!(unwrap_hard_wraps(&chinese), chinese.replace('\n', ""));
    }

    #[test]
    fn cjk_detection() {
        assert!(is_cjk('焊') && is_cjk('。') && is_cjk('，') && is_cjk('カ'));
        assert!(!is_cjk('a') && !is_cjk('é') && !is_cjk('1') && !is_cjk(' '));
    }
}
