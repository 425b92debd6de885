//! The "lumbung" analyzer: one tokenization for Chinese, Japanese, Korean, Indonesian and English
//! text in the same field, used both when indexing and when analysing queries.
//!
//! Latin and other alphabetic or numeric words are split on everything that is not a letter or
//! digit, lower-cased and folded to ASCII (`café` -> `cafe`). CJK runs have no spaces between
//! words, so without a dictionary segmenter they are emitted as overlapping character bigrams
//! (`连接失败` -> `连接 接失 失败`), and as a single unigram when the run is one character long:
//! any two-character query word then matches wherever it occurs. The module stands alone so a
//! dictionary segmenter (jieba) can replace the bigrams without touching the index code.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Name under which the analyzer is registered in the index's tokenizer manager.
pub const ANALYZER_NAME: &str = "lumbung";

/// Tokens longer than this (in bytes) are dropped: they are base64 blobs, hashes or URLs that
/// nobody searches for and that would only bloat the term dictionary.
const MAX_TOKEN_BYTES: usize = 100;

/// The full analyzer: [`MixedScriptTokenizer`], lower-casing, ASCII folding, long-token removal.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(MixedScriptTokenizer)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
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
    Cjk,
    Separator,
}

fn classify(c: char) -> CharClass {
    if is_cjk(c) {
        CharClass::Cjk
    } else if c.is_alphanumeric() {
        CharClass::Word
    } else {
        CharClass::Separator
    }
}

/// Scripts written without spaces between words: Han, kana, Hangul and Bopomofo.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF            // Hangul Jamo
        | 0x3005 | 0x3007          // 々 〇
        | 0x3040..=0x30FF          // Hiragana, Katakana
        | 0x3100..=0x312F          // Bopomofo
        | 0x3130..=0x318F          // Hangul Compatibility Jamo
        | 0x31F0..=0x31FF          // Katakana Phonetic Extensions
        | 0x3400..=0x4DBF          // CJK Extension A
        | 0x4E00..=0x9FFF          // CJK Unified Ideographs
        | 0xA960..=0xA97F          // Hangul Jamo Extended-A
        | 0xAC00..=0xD7FF          // Hangul Syllables, Jamo Extended-B
        | 0xF900..=0xFAFF          // CJK Compatibility Ideographs
        | 0xFF66..=0xFF9D          // Halfwidth Katakana
        | 0x20000..=0x323AF        // CJK Extensions B to H, Compatibility Supplement
    )
}

fn split(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        let class = classify(c);
        // (byte offset, char) of the current run of one class.
        let mut run = Vec::new();
        while let Some(&(offset, c)) = chars.peek() {
            if classify(c) != class {
                break;
            }
            run.push((offset, c));
            chars.next();
        }
        let end = run
            .last()
            .map_or(start, |&(offset, c)| offset + c.len_utf8());
        match class {
            CharClass::Separator => {}
            CharClass::Word => push(&mut tokens, text, start, end),
            CharClass::Cjk if run.len() == 1 => push(&mut tokens, text, start, end),
            CharClass::Cjk => {
                for pair in run.windows(2) {
                    let (from, _) = pair[0];
                    let (last, c) = pair[1];
                    push(&mut tokens, text, from, last + c.len_utf8());
                }
            }
        }
    }
    tokens
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
                "vpn", "连接", "接失", "失败", "error", "code", "err", "42", "cafe"
            ]
        );
    }

    #[test]
    fn cjk_runs_touching_latin_are_split_from_it() {
        assert_eq!(analyze("打开VPN客户端"), ["打开", "vpn", "客户", "户端"]);
    }

    #[test]
    fn single_cjk_character_is_a_unigram() {
        assert_eq!(analyze("第3号 楼"), ["第", "3", "号", "楼"]);
    }

    #[test]
    fn indonesian_and_accents_fold_to_ascii() {
        assert_eq!(
            analyze("Koneksi GAGAL, coba lagi! Naïve Ångström"),
            ["koneksi", "gagal", "coba", "lagi", "naive", "angstrom"]
        );
    }

    #[test]
    fn kana_and_hangul_are_bigrammed() {
        assert_eq!(analyze("パスワード"), ["パス", "スワ", "ワー", "ード"]);
        assert_eq!(analyze("비밀번호"), ["비밀", "밀번", "번호"]);
    }

    #[test]
    fn punctuation_only_yields_nothing() {
        assert!(analyze("  ，。!?-- ** ").is_empty());
        assert!(analyze("").is_empty());
    }

    #[test]
    fn overlong_tokens_are_dropped() {
        let blob = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(analyze(&format!("key {blob} value")), ["key", "value"]);
    }

    #[test]
    fn offsets_and_positions_point_into_the_source() {
        let text = "Wi-Fi 网络";
        let tokens = split(text);
        let spans: Vec<_> = tokens
            .iter()
            .map(|t| (&text[t.offset_from..t.offset_to], t.position))
            .collect();
        assert_eq!(spans, [("Wi", 0), ("Fi", 1), ("网络", 2)]);
    }
}
