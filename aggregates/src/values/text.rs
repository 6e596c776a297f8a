//! Text that people write into the ledger: member numbers, names, titles, reasons and notes.
//!
//! Every accepted event must later be projected, replayed, exported and verified, and events
//! are never removed, so the ledger refuses at the door any text a later step could not hold:
//! - at least one character that is not white space, and at most `MAX` characters;
//! - no control characters (Unicode category Cc: NUL, escape, tab, …), except line breaks
//!   (`\n`, `\r`) in fields that allow several lines;
//! - no bidirectional overrides or isolates (U+202A–U+202E, U+2066–U+2069), which make a
//!   text read differently from what it holds (a reviewer could be shown a reversed name);
//! - valid Unicode (a Rust string cannot be anything else).
//!
//! Deserialising checks the same rules, so an event written before them, or by hand, that
//! breaks them cannot be read: it is one the projector reports and passes over.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text of at most `MAX` characters, on one line unless `LINES`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<const MAX: usize, const LINES: bool>(String);

/// A member's number in their organisation (工号): one line of at most 64 characters.
pub type MemberNo = Text<64, false>;
/// A person's, organisation's, course's or evaluation's name: one line of at most 200.
pub type Name = Text<200, false>;
/// A reason or note: at most 2,000 characters, line breaks allowed.
pub type Reason = Text<2000, true>;

/// Why text cannot be held. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is empty")]
    Blank,
    #[error("has {chars} characters; at most {max} are allowed")]
    TooLong { chars: usize, max: usize },
    #[error("holds the control character U+{code:04X} at character {at}")]
    Control { code: u32, at: usize },
    #[error("holds a line break at character {at}; it must be one line")]
    LineBreak { at: usize },
    #[error("holds the bidirectional control U+{code:04X} at character {at}")]
    Bidirectional { code: u32, at: usize },
}

impl<const MAX: usize, const LINES: bool> Text<MAX, LINES> {
    pub const MAX_CHARS: usize = MAX;

    pub fn parse(raw: impl Into<String>) -> Result<Self, TextError> {
        let raw = raw.into();
        check(&raw, MAX, LINES)?;
        Ok(Text(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

fn check(raw: &str, max: usize, lines: bool) -> Result<(), TextError> {
    let mut chars = 0;
    for (index, c) in raw.chars().enumerate() {
        let at = index + 1;
        let code = u32::from(c);
        if c == '\n' || c == '\r' {
            if !lines {
                return Err(TextError::LineBreak { at });
            }
        } else if c.is_control() {
            return Err(TextError::Control { code, at });
        } else if matches!(code, 0x202A..=0x202E | 0x2066..=0x2069) {
            return Err(TextError::Bidirectional { code, at });
        }
        chars = at;
    }
    if chars > max {
        return Err(TextError::TooLong { chars, max });
    }
    if raw.trim().is_empty() {
        return Err(TextError::Blank);
    }
    Ok(())
}

impl<const MAX: usize, const LINES: bool> fmt::Display for Text<MAX, LINES> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize, const LINES: bool> std::str::FromStr for Text<MAX, LINES> {
    type Err = TextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Text::parse(s)
    }
}

impl<const MAX: usize, const LINES: bool> AsRef<str> for Text<MAX, LINES> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize, const LINES: bool> Serialize for Text<MAX, LINES> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize, const LINES: bool> Deserialize<'de> for Text<MAX, LINES> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Text::parse(raw).map_err(|e| serde::de::Error::custom(format!("text {e}")))
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::{PartialSchema, ToSchema};

    use crate::values::text::Text;

    impl<const MAX: usize, const LINES: bool> PartialSchema for Text<MAX, LINES> {
        fn schema() -> RefOr<Schema> {
            let description = if LINES {
                "text; no control characters but line breaks, no bidirectional overrides"
            } else {
                "one line of text; no control characters, no bidirectional overrides"
            };
            // What `check` refuses, as a pattern: a character none of these, then at least one
            // that is not white space either.
            let refused = if LINES {
                r"\u0000-\u0009\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069"
            } else {
                r"\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069"
            };
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX))
                .pattern(Some(format!("^[^{refused}]*[^{refused}\\s][^{refused}]*$")))
                .description(Some(description))
                .into()
        }
    }

    impl<const MAX: usize, const LINES: bool> ToSchema for Text<MAX, LINES> {
        fn name() -> Cow<'static, str> {
            let kind = if LINES { "Paragraph" } else { "Line" };
            Cow::Owned(format!("{kind}{MAX}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hold_any_script_on_one_line() {
        for ok in [
            "王小明",
            "Zoë O'Brien",
            "福州市分公司 (第二)",
            "x",
            "emoji 📚",
        ] {
            assert_eq!(Name::parse(ok).map(|n| n.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn what_a_later_step_could_not_hold_is_refused_with_its_place() {
        assert_eq!(
            Name::parse("a\u{0}b"),
            Err(TextError::Control { code: 0, at: 2 })
        );
        assert_eq!(
            Name::parse("tab\there"),
            Err(TextError::Control { code: 9, at: 4 })
        );
        assert_eq!(
            Name::parse("\u{1b}[31mred"),
            Err(TextError::Control { code: 0x1b, at: 1 })
        );
        assert_eq!(
            Name::parse("abc\u{202E}cba"),
            Err(TextError::Bidirectional {
                code: 0x202E,
                at: 4
            })
        );
        assert_eq!(
            Name::parse("a\u{2066}b"),
            Err(TextError::Bidirectional {
                code: 0x2066,
                at: 2
            })
        );
        assert_eq!(
            Name::parse("two\nlines"),
            Err(TextError::LineBreak { at: 4 })
        );
        assert_eq!(Name::parse(""), Err(TextError::Blank));
        assert_eq!(Name::parse(" \u{3000} "), Err(TextError::Blank));
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let at_limit = "学".repeat(200);
        assert!(
            Name::parse(at_limit.as_str()).is_ok(),
            "600 bytes, 200 chars"
        );
        assert_eq!(
            Name::parse("学".repeat(201)),
            Err(TextError::TooLong {
                chars: 201,
                max: 200
            })
        );
        assert_eq!(
            MemberNo::parse("9".repeat(65)),
            Err(TextError::TooLong { chars: 65, max: 64 })
        );
    }

    #[test]
    fn reasons_may_span_lines_but_nothing_else_changes() {
        assert!(Reason::parse("第一行\r\n第二行\n").is_ok());
        assert_eq!(
            Reason::parse("a\u{0}"),
            Err(TextError::Control { code: 0, at: 2 })
        );
        assert_eq!(Reason::parse("\n\n"), Err(TextError::Blank));
    }

    #[test]
    fn deserialising_applies_the_same_rules() {
        let ok: Name = serde_json::from_str("\"王小明\"").expect("a name");
        assert_eq!(ok.as_str(), "王小明");
        assert!(serde_json::from_str::<Name>("\"a\\u0000b\"").is_err());
        assert!(serde_json::from_str::<Name>("\"\"").is_err());
        let long = format!("\"{}\"", "x".repeat(60_000));
        assert!(serde_json::from_str::<Name>(&long).is_err());
        assert_eq!(serde_json::to_string(&ok).expect("json"), "\"王小明\"");
    }

    /// What a later step could not hold, stated apart from `check`.
    fn holdable(raw: &str, max: usize, lines: bool) -> bool {
        let count = raw.chars().count();
        let allowed = |c: char| {
            let bidi = matches!(u32::from(c), 0x202A..=0x202E | 0x2066..=0x2069);
            let line_break = c == '\n' || c == '\r';
            !bidi && (line_break && lines || !c.is_control())
        };
        (1..=max).contains(&count) && !raw.trim().is_empty() && raw.chars().all(allowed)
    }

    fn hostile_char() -> impl Strategy<Value = char> {
        prop_oneof![
            any::<char>(),
            prop::sample::select(vec![
                '\0', '\t', '\n', '\r', '\u{7f}', '\u{85}', '\u{1b}', '\u{202A}', '\u{202E}',
                '\u{2066}', '\u{2069}', '\u{200B}', '\u{FEFF}', '\u{3000}', ' ', '学', '📚',
            ]),
        ]
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn text_is_taken_exactly_when_a_later_step_can_hold_it(
            raw in prop::collection::vec(hostile_char(), 0..80)
                .prop_map(|chars| chars.into_iter().collect::<String>())
        ) {
            prop_assert_eq!(Text::<40, false>::parse(raw.as_str()).is_ok(), holdable(&raw, 40, false));
            prop_assert_eq!(Text::<40, true>::parse(raw.as_str()).is_ok(), holdable(&raw, 40, true));
            if let Ok(text) = Text::<40, true>::parse(raw.as_str()) {
                let json = serde_json::to_string(&text).expect("json");
                let back: Text<40, true> = serde_json::from_str(&json).expect("read back");
                prop_assert_eq!(back, text);
            }
        }
    }
}
