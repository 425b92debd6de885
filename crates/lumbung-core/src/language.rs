//! The language of a question or a passage, among the three the company writes in.
//!
//! Search needs each passage's language and the question's to fetch the nearest passages of
//! every language and to take each language's mean vector out of similarities (see
//! `lumbung-search`'s `dense.rs`), so the detector is deliberately small: Han characters mean
//! Chinese, and Latin-script text is English or Indonesian by its function words, which every
//! sentence of either language is full of and which the two languages do not share. Anything
//! else, or too little to tell, is [`Language::Unknown`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Zh,
    Id,
    En,
    /// Another language, or too little text to tell (an error code, a number, a name).
    #[default]
    Unknown,
}

/// English function words that are not Indonesian words.
const ENGLISH: &[&str] = &[
    "a", "about", "after", "an", "and", "are", "at", "be", "been", "before", "by", "can", "could",
    "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is",
    "it", "its", "may", "must", "my", "not", "of", "on", "or", "our", "should", "than", "that",
    "the", "their", "then", "there", "these", "this", "those", "to", "was", "we", "were", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// Indonesian function words that are not English words.
const INDONESIAN: &[&str] = &[
    "ada",
    "adakah",
    "adalah",
    "agar",
    "akan",
    "anda",
    "antara",
    "apa",
    "apakah",
    "atau",
    "bagaimana",
    "bagaimanakah",
    "bagi",
    "bahwa",
    "belum",
    "berapa",
    "berapakah",
    "bila",
    "bisa",
    "boleh",
    "bukan",
    "bukankah",
    "dalam",
    "dan",
    "dapat",
    "dari",
    "dengan",
    "di",
    "dimana",
    "dimanakah",
    "hanya",
    "harus",
    "hingga",
    "ialah",
    "ini",
    "itu",
    "jika",
    "juga",
    "kalau",
    "kami",
    "kapan",
    "kapankah",
    "karena",
    "ke",
    "kenapa",
    "kepada",
    "ketika",
    "kita",
    "lebih",
    "mana",
    "manakah",
    "masih",
    "mengapa",
    "mengapakah",
    "mereka",
    "merupakan",
    "namun",
    "oleh",
    "pada",
    "para",
    "perlu",
    "saat",
    "sampai",
    "sangat",
    "saya",
    "sebagai",
    "sebelum",
    "sebuah",
    "secara",
    "sejak",
    "seorang",
    "setelah",
    "setiap",
    "siapa",
    "siapakah",
    "sudah",
    "supaya",
    "telah",
    "tentang",
    "tersebut",
    "tetapi",
    "tidak",
    "untuk",
    "yaitu",
    "yang",
];

/// Chinese function words and question words, as a word segmenter cuts them.
const CHINESE: &[&str] = &[
    "为什么",
    "什么",
    "他们",
    "你们",
    "哪个",
    "哪些",
    "如何",
    "怎么",
    "怎样",
    "我们",
    "请问",
    "的",
    "了",
    "是",
    "在",
    "和",
    "与",
    "或",
    "及",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "这",
    "那",
    "就",
    "都",
    "也",
    "把",
    "被",
    "给",
    "之",
    "其",
    "我",
    "你",
    "他",
    "她",
    "它",
];

/// How many Latin-script words one Han character outweighs: a Chinese word is one to two
/// characters, so Chinese text with English terms in it (`PPE`, `km/h`) stays Chinese.
const HAN_PER_WORD: usize = 2;

impl Language {
    /// The BCP 47 tag (`und` for unknown).
    pub fn code(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::Id => "id",
            Language::En => "en",
            Language::Unknown => "und",
        }
    }

    /// The language of a tag written by [`Language::code`]; anything else is unknown.
    pub fn from_code(code: &str) -> Language {
        match code {
            "zh" => Language::Zh,
            "id" => Language::Id,
            "en" => Language::En,
            _ => Language::Unknown,
        }
    }

    /// Whether `word` (lower-cased) is an English, Indonesian or Chinese function word: one that
    /// says nothing about what a question or a passage is about.
    pub fn is_function_word(word: &str) -> bool {
        ENGLISH.binary_search(&word).is_ok()
            || INDONESIAN.binary_search(&word).is_ok()
            || CHINESE.contains(&word)
    }

    /// Detects the language of `text` (a question or a passage).
    pub fn detect(text: &str) -> Language {
        let mut han = 0usize;
        let (mut words, mut english, mut indonesian) = (0usize, 0usize, 0usize);
        let mut word = String::new();
        let mut finish = |word: &mut String| {
            if word.is_empty() {
                return;
            }
            words += 1;
            let lower = word.to_lowercase();
            if ENGLISH.binary_search(&lower.as_str()).is_ok() {
                english += 1;
            } else if INDONESIAN.binary_search(&lower.as_str()).is_ok() {
                indonesian += 1;
            }
            word.clear();
        };
        for c in text.chars() {
            if is_han(c) {
                han += 1;
                finish(&mut word);
            } else if c.is_alphabetic() {
                word.push(c);
            } else {
                finish(&mut word);
            }
        }
        finish(&mut word);
        if han >= 2 && han * HAN_PER_WORD >= words {
            return Language::Zh;
        }
        match english.cmp(&indonesian) {
            std::cmp::Ordering::Greater => Language::En,
            std::cmp::Ordering::Less => Language::Id,
            std::cmp::Ordering::Equal => Language::Unknown,
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x323AF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_are_sorted_and_disjoint() {
        // detect() looks words up by binary search.
        assert!(ENGLISH.windows(2).all(|w| w[0] < w[1]), "ENGLISH unsorted");
        assert!(
            INDONESIAN.windows(2).all(|w| w[0] < w[1]),
            "INDONESIAN unsorted"
        );
        for word in ENGLISH {
            assert!(!INDONESIAN.contains(word), "{word} in both lists");
        }
    }

    #[test]
    fn function_words_of_each_language() {
        for word in ["the", "what", "yang", "berapa", "的", "什么"] {
            assert!(Language::is_function_word(word), "{word}");
        }
        for word in ["password", "sandi", "焊接", "vpn"] {
            assert!(!Language::is_function_word(word), "{word}");
        }
    }

    #[test]
    fn questions_in_the_three_languages() {
        let cases = [
            (
                "What protective equipment must a welder wear?",
                Language::En,
            ),
            ("How long must my password be?", Language::En),
            (
                "Berapa lama mata harus dibilas jika terkena bahan kimia?",
                Language::Id,
            ),
            ("Berapa hari kata sandi berlaku?", Language::Id),
            ("Apa arti ERR-VPN-809?", Language::Id),
            ("叉车在车间内的最高速度是多少？", Language::Zh),
            ("ERR-VPN-809 是什么意思？", Language::Zh),
            ("焊接作业必须佩戴哪些PPE？", Language::Zh),
        ];
        for (text, expected) in cases {
            assert_eq!(Language::detect(text), expected, "{text}");
        }
    }

    #[test]
    fn identifiers_and_numbers_alone_are_unknown() {
        for text in ["ERR-VPN-809", "L4 OEE Q3", "10.0.0.1", "", "GlobalProtect"] {
            assert_eq!(Language::detect(text), Language::Unknown, "{text:?}");
        }
    }

    #[test]
    fn passages_with_terms_from_other_languages() {
        assert_eq!(
            Language::detect("作业人员必须佩戴PPE，车速不得超过5 km/h。"),
            Language::Zh
        );
        assert_eq!(
            Language::detect(
                "Buka GlobalProtect dan masukkan alamat portal vpn.example-manufacturing.com."
            ),
            Language::Id
        );
        assert_eq!(
            Language::detect("Open Company Portal and search for GlobalProtect."),
            Language::En
        );
    }

    #[test]
    fn codes_read_back_as_their_language() {
        for language in [Language::Zh, Language::Id, Language::En, Language::Unknown] {
            assert_eq!(Language::from_code(language.code()), language);
        }
    }
}
