//! What a question asks for, read from its wording: the quantity phrases ("how long",
//! "berapa lama", "多久") that say a number is wanted, and are not the subject of the question.

/// Phrases that ask for a quantity, a duration or a date. Their words are question words here
/// ("long" in "how long must my password be"), not what the question is about.
const LATIN: &[&str] = &[
    "how long",
    "how many",
    "how much",
    "how often",
    "how far",
    "how high",
    "how old",
    "how fast",
    "how quickly",
    "how soon",
    "how big",
    "how large",
    "what percentage",
    "what time",
    "what year",
    "when",
    "berapa lama",
    "berapa banyak",
    "berapa jauh",
    "berapa tinggi",
    "berapa sering",
    "berapa",
    "kapan",
];
const HAN: &[&str] = &[
    "多少",
    "几",
    "多长",
    "多久",
    "多高",
    "多远",
    "多大",
    "多快",
    "何时",
    "什么时候",
    "哪一年",
    "哪年",
];

/// Whether the question asks for a quantity, a duration or a date, whose answer holds digits.
pub(crate) fn asks_for_number(question: &str) -> bool {
    !latin_phrases(question).is_empty() || HAN.iter().any(|phrase| question.contains(phrase))
}

/// The question with its quantity phrases taken out: what its subject is.
pub(crate) fn subject(question: &str) -> String {
    let mut text = question.to_string();
    for phrase in HAN {
        text = text.replace(phrase, " ");
    }
    let found = latin_phrases(&text);
    if found.is_empty() {
        return text;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut kept = Vec::with_capacity(words.len());
    let mut index = 0;
    while index < words.len() {
        let skip = found
            .iter()
            .map(|phrase| phrase.split(' ').count())
            .find(|&length| {
                index + length <= words.len()
                    && found.contains(&normalize(&words[index..index + length].join(" ")).as_str())
            });
        match skip {
            Some(length) => index += length,
            None => {
                kept.push(words[index]);
                index += 1;
            }
        }
    }
    kept.join(" ")
}

/// The phrases of [`LATIN`] in `question`, longest first.
fn latin_phrases(question: &str) -> Vec<&'static str> {
    let joined = format!(" {} ", normalize(question));
    let mut found: Vec<&'static str> = LATIN
        .iter()
        .copied()
        .filter(|phrase| joined.contains(&format!(" {phrase} ")))
        .collect();
    found.sort_by_key(|phrase| std::cmp::Reverse(phrase.len()));
    found
}

/// Lower-case words separated by single spaces, punctuation dropped.
fn normalize(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_for_numbers_in_three_languages() {
        for question in [
            "How long must my password be?",
            "How many days do I have to return my old laptop?",
            "Berapa lama mata harus dibilas?",
            "Kapan kata sandi kedaluwarsa?",
            "叉车在车间内的最高速度是多少？",
            "从多高开始算高处作业？",
            "When does the helpdesk open?",
        ] {
            assert!(asks_for_number(question), "{question}");
        }
        for question in [
            "What protective equipment must a welder wear?",
            "Apa arti ERR-VPN-809?",
            "Who resets a forgotten MES badge PIN?",
            "焊接作业需要佩戴什么防护用品？",
            "Whenever I print, it jams",
        ] {
            assert!(!asks_for_number(question), "{question}");
        }
    }

    #[test]
    fn the_subject_is_what_remains() {
        assert_eq!(
            subject("How long must my password be?"),
            "must my password be?"
        );
        assert_eq!(
            subject("Berapa lama mata harus dibilas?"),
            "mata harus dibilas?"
        );
        assert!(!subject("VPN 连上以后多久要重新登录一次？").contains("多久"));
        assert_eq!(
            subject("What protective equipment must a welder wear?"),
            "What protective equipment must a welder wear?"
        );
        assert_eq!(
            subject("For long absences, how long is mail kept?"),
            "For long absences, is mail kept?"
        );
    }
}
