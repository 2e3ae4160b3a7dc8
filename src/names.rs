//! App names: validation (Heroku's rules) and random Heroku-style names.

use rand::seq::SliceRandom;
use rand::Rng;

/// Heroku's app name rule (it lives in `api::apps`, which both sides of the socket share).
pub use crate::api::apps::validate_name as validate;

/// Turns a directory name into a valid app name, if that can be done sensibly
/// (`My_App` → `my-app`); `None` when nothing usable is left.
pub fn from_dir_name(dir: &str) -> Option<String> {
    let mut out = String::new();
    for c in dir.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    // Must start with a letter.
    let out = out
        .trim_start_matches(|c: char| !c.is_ascii_lowercase())
        .to_string();
    let mut out: String = out.chars().take(30).collect();
    while out.ends_with('-') {
        out.pop();
    }
    validate(&out).ok().map(|_| out)
}

const ADJECTIVES: &[&str] = &[
    "ancient",
    "autumn",
    "billowing",
    "blooming",
    "calm",
    "cool",
    "crimson",
    "damp",
    "dark",
    "dawn",
    "delicate",
    "divine",
    "dry",
    "evening",
    "falling",
    "floral",
    "fragrant",
    "frosty",
    "gentle",
    "hidden",
    "icy",
    "lively",
    "misty",
    "morning",
    "muddy",
    "nameless",
    "obscure",
    "peaceful",
    "polished",
    "quiet",
    "rough",
    "shrouded",
    "silent",
    "sparkling",
    "still",
    "sweltering",
    "twilight",
    "wandering",
    "weathered",
    "young",
];
const NOUNS: &[&str] = &[
    "bird", "brook", "bush", "cloud", "dew", "dream", "dust", "field", "fire", "firefly", "flower",
    "fog", "forest", "frog", "glade", "grass", "haze", "hill", "lake", "leaf", "meadow", "moon",
    "mountain", "night", "paper", "pine", "pond", "rain", "river", "sea", "shadow", "sky", "smoke",
    "snow", "star", "sun", "surf", "thunder", "tree", "wave",
];

/// `misty-meadow-12345`, as Heroku names apps.
pub fn random() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{}-{}-{:05}",
        ADJECTIVES.choose(&mut rng).unwrap(),
        NOUNS.choose(&mut rng).unwrap(),
        rng.gen_range(0..100000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_heroku() {
        for ok in ["hello", "my-app-2", "abc"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "../x",
            "Hello",
            "ab",
            "1abc",
            "a_b",
            "x-",
            "",
            "a/b",
            &"a".repeat(31),
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn turns_dir_names_into_app_names() {
        assert_eq!(from_dir_name("hello").as_deref(), Some("hello"));
        assert_eq!(from_dir_name("My_App").as_deref(), Some("my-app"));
        assert_eq!(from_dir_name("2048 game").as_deref(), Some("game"));
        assert_eq!(from_dir_name("__").as_deref(), None);
        assert_eq!(from_dir_name("ab").as_deref(), None);
        assert_eq!(from_dir_name(&"x".repeat(40)).unwrap().len(), 30);
    }

    #[test]
    fn random_names_are_valid() {
        for _ in 0..100 {
            let n = random();
            assert!(validate(&n).is_ok(), "{n}");
        }
    }
}
