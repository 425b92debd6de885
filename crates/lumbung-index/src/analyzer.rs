//! The "lumbung" analyzer: one tokenization for Chinese, Indonesian and English text (and other
//! languages) in the same field, used both when indexing and when analysing queries.
//!
//! - Latin and other alphabetic or numeric words are split on everything that is not a letter or
//!   digit, lower-cased, folded to ASCII (`café` -> `cafe`) and reduced to their English stem
//!   (`failures` -> `failur`).
//! - Identifiers, that is words joined by one connector such as `-`, `.`, `/` or `_` with a
//!   digit among them, are also emitted whole: `PPR-9087` gives `ppr`, `9087` and `ppr-9087`,
//!   so the exact identifier ranks first while its parts still match.
//! - Han runs have no spaces between words: they are segmented by jieba in search mode (words and
//!   the shorter words inside them, with its HMM for words missing from the dictionary) and also
//!   emitted as overlapping character bigrams, which keep recall where the segmenter cuts a query
//!   and a passage differently.
//! - Kana, Hangul and Bopomofo runs are emitted as character bigrams; a run of one character is
//!   a unigram.
//! - English, Indonesian and Chinese function words ("the", "yang", "的", "什么") are dropped:
//!   in a collection of several languages they are rare, so BM25 would weigh them as if they
//!   named the topic, and a question would match any passage in its own language through them.
//!   A word written in capitals (`IT`, `A` for shift A) is kept: it is a name, not a function
//!   word.
//!
//! Each choice was measured with `lumbung eval` on ../shared/eval; see docs/evaluation.md.
use std::sync::LazyLock;

use jieba_rs::Jieba;
use lumbung_core::Language as Lang;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token,
    TokenStream, Tokenizer,
};

/// Name under which the analyzer is registered in the index's tokenizer manager.
pub const ANALYZER_NAME: &str = "lumbung";

/// Changes whenever the terms produced for some text change: an index written by another version
/// is analysed again when it is opened (see `TantivyLexicalIndex::open`).
pub const ANALYZER_VERSION: &str =
    "4: han jieba+bigrams, identifiers with digits, english stems, no function words";

/// Segments Han text; loading its dictionary takes a few hundred milliseconds, once.
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Characters that join words into one identifier when they sit between two of them.
fn is_connector(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | '/' | ':' | '+' | '@' | '#')
}

/// Tokens longer than this (in bytes) are dropped: they are base64 blobs, hashes or URLs that
/// nobody searches for and that would only bloat the term dictionary.
const MAX_TOKEN_BYTES: usize = 100;

/// The full analyzer: [`MixedScriptTokenizer`], long-token removal, lower-casing, ASCII
/// folding and English stemming.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(MixedScriptTokenizer)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The terms `analyzer` produces for `text`, in order, duplicates included.
pub fn token_texts(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut texts = Vec::new();
    while let Some(token) = stream.next() {
        texts.push(token.text.clone());
    }
    texts
}

/// The distinct terms `analyzer` produces for `text`.
pub fn term_set(analyzer: &mut TextAnalyzer, text: &str) -> std::collections::HashSet<String> {
    token_texts(analyzer, text).into_iter().collect()
}

/// Splits text into alphanumeric words and CJK character bigrams; no normalisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct MixedScriptTokenizer;

impl Tokenizer for MixedScriptTokenizer {
    type TokenStream<'a> = MixedScriptTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> MixedScriptTokenStream {
        MixedScriptTokenStream {
            tokens: split(text).into_iter(),
            current: Token::default(),
        }
    }
}

/// Token stream of [`MixedScriptTokenizer`]; tokens are computed up front because bigrams need
/// look-ahead and chunks are small.
pub struct MixedScriptTokenStream {
    tokens: std::vec::IntoIter<Token>,
    current: Token,
}

impl TokenStream for MixedScriptTokenStream {
    fn advance(&mut self) -> bool {
        match self.tokens.next() {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Word,
    Han,
    /// Kana, Hangul and Bopomofo: written without spaces, but not segmented by jieba.
    OtherCjk,
    Separator,
}

fn classify(c: char) -> CharClass {
    if is_han(c) {
        CharClass::Han
    } else if is_other_cjk(c) {
        CharClass::OtherCjk
    } else if c.is_alphanumeric() {
        CharClass::Word
    } else {
        CharClass::Separator
    }
}

fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3005 | 0x3007            // 々 〇
        | 0x3400..=0x4DBF          // CJK Extension A
        | 0x4E00..=0x9FFF          // CJK Unified Ideographs
        | 0xF900..=0xFAFF          // CJK Compatibility Ideographs
        | 0x20000..=0x323AF        // CJK Extensions B to H, Compatibility Supplement
    )
}

fn is_other_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF            // Hangul Jamo
        | 0x3040..=0x30FF          // Hiragana, Katakana
        | 0x3100..=0x312F          // Bopomofo
        | 0x3130..=0x318F          // Hangul Compatibility Jamo
        | 0x31F0..=0x31FF          // Katakana Phonetic Extensions
        | 0xA960..=0xA97F          // Hangul Jamo Extended-A
        | 0xAC00..=0xD7FF          // Hangul Syllables, Jamo Extended-B
        | 0xFF66..=0xFF9D          // Halfwidth Katakana
    )
}

fn split(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let classes: Vec<CharClass> = chars.iter().map(|&(_, c)| classify(c)).collect();
    // Byte offset where the char at `index` starts, or the end of the text.
    let offset = |index: usize| chars.get(index).map_or(text.len(), |&(offset, _)| offset);
    let mut tokens = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let class = classes[start];
        let mut end = start + 1;
        while end < chars.len() && classes[end] == class {
            end += 1;
        }
        match class {
            CharClass::Separator => {}
            CharClass::Word => {
                let word = &text[offset(start)..offset(end)];
                let joined = end + 1 < chars.len()
                    && is_connector(chars[end].1)
                    && classes[end + 1] == CharClass::Word;
                if joined || !is_function_word(word) {
                    push(&mut tokens, text, offset(start), offset(end));
                }
                // Words joined by single connectors, with a digit among them, form an identifier
                // (a part number, a standard, an address, a version), emitted whole as well.
                // Hyphenated words without digits are not: on SciFact their whole forms cost
                // BM25 0.01 nDCG@10, counting one concept three times.
                let mut parts = 1;
                while end + 1 < chars.len()
                    && is_connector(chars[end].1)
                    && classes[end + 1] == CharClass::Word
                {
                    let part_start = end + 1;
                    end = part_start + 1;
                    while end < chars.len() && classes[end] == CharClass::Word {
                        end += 1;
                    }
                    push(&mut tokens, text, offset(part_start), offset(end));
                    parts += 1;
                }
                if parts > 1 && chars[start..end].iter().any(|(_, c)| c.is_ascii_digit()) {
                    push(&mut tokens, text, offset(start), offset(end));
                }
            }
            CharClass::Han if end - start > 1 => {
                let (from, to) = (offset(start), offset(end));
                for word in JIEBA.cut_for_search(&text[from..to], true) {
                    if is_function_word(word.word) {
                        continue;
                    }
                    push(
                        &mut tokens,
                        text,
                        from + word.byte_start,
                        from + word.byte_end,
                    );
                }
                push_bigrams(&mut tokens, text, &chars[start..end], to);
            }
            CharClass::OtherCjk if end - start > 1 => {
                push_bigrams(&mut tokens, text, &chars[start..end], offset(end));
            }
            CharClass::Han | CharClass::OtherCjk => {
                if !is_function_word(&text[offset(start)..offset(end)]) {
                    push(&mut tokens, text, offset(start), offset(end));
                }
            }
        }
        start = end;
    }
    tokens
}

/// A function word of one of the three languages, unless written in capitals (a name such as
/// `IT` or shift `A`).
fn is_function_word(word: &str) -> bool {
    if word.chars().all(is_han) {
        return Lang::is_function_word(word);
    }
    word.chars().any(char::is_lowercase) && Lang::is_function_word(&word.to_lowercase())
}

/// Overlapping character pairs of `run`, a run of at least two chars ending at byte `run_end`.
fn push_bigrams(tokens: &mut Vec<Token>, text: &str, run: &[(usize, char)], run_end: usize) {
    for (index, &(from, _)) in run.iter().enumerate().take(run.len() - 1) {
        let to = run.get(index + 2).map_or(run_end, |&(offset, _)| offset);
        push(tokens, text, from, to);
    }
}

fn push(tokens: &mut Vec<Token>, text: &str, from: usize, to: usize) {
    tokens.push(Token {
        offset_from: from,
        offset_to: to,
        position: tokens.len(),
        text: text[from..to].to_string(),
        position_length: 1,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze(text: &str) -> Vec<String> {
        token_texts(&mut analyzer(), text)
    }

    #[test]
    fn mixed_languages_in_one_string() {
        assert_eq!(
            analyze("VPN 连接失败 error-code ERR_42 café"),
            [
                "vpn", "连接", "失败", "连接", "接失", "失败", "error", "code", "err", "42",
                "err_42", "cafe"
            ]
        );
    }

    #[test]
    fn identifiers_are_kept_whole_and_in_parts() {
        assert_eq!(
            analyze("PPR-9087, ISO-45001 and 10.0.0.1."),
            [
                "ppr",
                "9087",
                "ppr-9087",
                "iso",
                "45001",
                "iso-45001",
                "10",
                "0",
                "0",
                "1",
                "10.0.0.1"
            ]
        );
        // A connector must sit between two words: trailing or doubled ones split. Words
        // without a digit are not an identifier.
        assert_eq!(
            analyze("x-- b- c well-known"),
            ["x", "b", "c", "well", "known"]
        );
    }

    #[test]
    fn english_words_are_stemmed() {
        assert_eq!(
            analyze("Printers failing; failures printed"),
            ["printer", "fail", "failur", "print"]
        );
    }

    #[test]
    fn han_runs_get_dictionary_words_and_bigrams() {
        // Search mode also gives the words inside a long one (中华, 人民, 共和国 ...).
        let tokens = analyze("中华人民共和国");
        for word in ["中华", "人民", "共和国", "中华人民共和国", "华人", "民共"] {
            assert!(tokens.iter().any(|t| t == word), "{word} in {tokens:?}");
        }
    }

    #[test]
    fn cjk_runs_touching_latin_are_split_from_it() {
        assert_eq!(
            analyze("打开VPN客户端"),
            ["打开", "打开", "vpn", "客户", "客户端", "客户", "户端"]
        );
    }

    #[test]
    fn single_cjk_character_is_a_unigram() {
        assert_eq!(analyze("第3号 楼"), ["第", "3", "号", "楼"]);
    }

    #[test]
    fn indonesian_and_accents_fold_to_ascii() {
        assert_eq!(
            analyze("Koneksi GAGAL, coba lagi! Naïve Ångström"),
            ["koneksi", "gagal", "coba", "lagi", "naiv", "angstrom"]
        );
    }

    #[test]
    fn kana_and_hangul_are_bigrammed() {
        assert_eq!(analyze("パスワード"), ["パス", "スワ", "ワー", "ード"]);
        assert_eq!(analyze("비밀번호"), ["비밀", "밀번", "번호"]);
    }

    #[test]
    fn function_words_are_dropped_unless_written_as_names() {
        assert_eq!(
            analyze("What is the OEE of shift A? Berapa lama yang harus"),
            ["oee", "shift", "a", "lama"]
        );
        assert_eq!(analyze("Call the IT helpdesk"), ["call", "it", "helpdesk"]);
        assert_eq!(
            analyze("焊接的要求是什么"),
            [
                "焊接", "要求", "焊接", "接的", "的要", "要求", "求是", "是什", "什么"
            ]
        );
    }

    #[test]
    fn punctuation_only_yields_nothing() {
        assert!(analyze("  ，。!?-- ** ").is_empty());
        assert!(analyze("").is_empty());
    }

    #[test]
    fn overlong_tokens_are_dropped() {
        let blob = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(analyze(&format!("key {blob} value")), ["key", "valu"]);
    }

    #[test]
    fn offsets_and_positions_point_into_the_source() {
        let text = "Wi-Fi6 网络";
        let tokens = split(text);
        let spans: Vec<_> = tokens
            .iter()
            .map(|t| (&text[t.offset_from..t.offset_to], t.position))
            .collect();
        assert_eq!(
            spans,
            [
                ("Wi", 0),
                ("Fi6", 1),
                ("Wi-Fi6", 2),
                ("网络", 3),
                ("网络", 4)
            ]
        );
    }
}
