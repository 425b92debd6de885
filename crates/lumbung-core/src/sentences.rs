//! Sentences: the units `Ask` quotes. Split by Latin and CJK sentence ends and line breaks, so
//! that a list item or a table row (one line each) is one unit, without a language model. A
//! line that ends with a colon introduces what follows ("Fix:", "以下防护用品："), so it stays
//! with the next line.

use std::ops::Range;

/// Sentences shorter than this (in characters) carry too little to support an answer alone.
const MIN_SENTENCE_CHARS: usize = 6;

/// Splits `text` into sentences, returning each trimmed sentence's byte range in `text`.
pub fn split_sentences(text: &str) -> Vec<Range<usize>> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let next = chars.peek().map(|&(_, next)| next);
        let end = match c {
            '\n' if text[start..index].trim_end().ends_with([':', '：']) => None,
            '\n' => Some(index),
            '。' | '！' | '？' | '；' => Some(index + c.len_utf8()),
            // The number of a list item ("2. Open ...") starts its sentence, it does not end one.
            '.' if is_list_number(&text[start..index]) => None,
            // A full stop ends a sentence only before whitespace or the end: "v1.2", "10.0.0.1"
            // and "e.g.x" stay whole.
            '.' | '!' | '?' => match next {
                None => Some(index + 1),
                Some(n) if n.is_whitespace() => Some(index + 1),
                _ => None,
            },
            _ => None,
        };
        if let Some(end) = end {
            push_trimmed(text, start..end, &mut sentences);
            start = if c == '\n' { index + 1 } else { end };
        }
    }
    push_trimmed(text, start..text.len(), &mut sentences);
    sentences
}

/// Whether the last line of `before` is only a number: the list number of an item.
fn is_list_number(before: &str) -> bool {
    let before = before.rsplit('\n').next().unwrap_or(before).trim();
    !before.is_empty() && before.len() <= 3 && before.chars().all(|c| c.is_ascii_digit())
}

fn push_trimmed(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) {
    let slice = &text[range.clone()];
    let leading = slice.len() - slice.trim_start().len();
    let trimmed = slice.trim();
    if trimmed.chars().count() >= MIN_SENTENCE_CHARS {
        let start = range.start + leading;
        out.push(start..start + trimmed.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        split_sentences(text)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn latin_sentences_and_lines() {
        let text = "Open GlobalProtect. Enter the portal vpn.example.com and sign in!\nCall 4357 if it fails?";
        assert_eq!(
            split(text),
            [
                "Open GlobalProtect.",
                "Enter the portal vpn.example.com and sign in!",
                "Call 4357 if it fails?"
            ]
        );
    }

    #[test]
    fn numbers_and_addresses_stay_whole() {
        assert_eq!(
            split("Set the gateway to 10.0.0.1 now. Done here."),
            ["Set the gateway to 10.0.0.1 now.", "Done here."]
        );
    }

    #[test]
    fn chinese_sentences() {
        let text = "焊接作业前必须佩戴焊接面罩。穿阻燃工作服！是否需要皮手套？";
        assert_eq!(
            split(text),
            [
                "焊接作业前必须佩戴焊接面罩。",
                "穿阻燃工作服！",
                "是否需要皮手套？"
            ]
        );
    }

    #[test]
    fn a_line_ending_with_a_colon_stays_with_the_next() {
        let text = "The certificate has expired. Fix:\n\n1. Connect by cable for 30 minutes.\n2. Or call 4357.";
        assert_eq!(
            split(text),
            [
                "The certificate has expired.",
                "Fix:\n\n1. Connect by cable for 30 minutes.",
                "2. Or call 4357."
            ]
        );
        assert_eq!(
            split("必须佩戴以下防护用品：\n焊接面罩：遮光号不低于 9 号；\n阻燃工作服。"),
            [
                "必须佩戴以下防护用品：\n焊接面罩：遮光号不低于 9 号；",
                "阻燃工作服。"
            ]
        );
    }

    #[test]
    fn fragments_are_dropped() {
        assert_eq!(
            split("Ok.\n\nA longer sentence here."),
            ["A longer sentence here."]
        );
    }
}
