//! Nothing a user writes may crash the loader: random text and random edits
//! of a real scenario either load or come back as located errors.

use std::path::Path;

use kubesim::scenario::load_str;
use proptest::prelude::*;

const SCENARIO: &str = include_str!("../../scenarios/three-node.yaml");

fn check(text: &str) -> Result<(), TestCaseError> {
    let base = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    if let Err(errors) = load_str("fuzz.yaml", text, base) {
        prop_assert!(!errors.is_empty());
        for e in errors {
            let shown = e.to_string();
            prop_assert!(
                shown.starts_with("fuzz.yaml") || shown.contains(".yaml"),
                "{}",
                shown
            );
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

/// Inputs that once crashed the YAML parser underneath the loader.
#[test]
fn known_parser_crashers_are_syntax_errors() {
    for text in ["\"\\", "a: \"\\", "- '\\\n\"\\"] {
        let err = load_str("fuzz.yaml", text, Path::new(".")).unwrap_err();
        assert!(
            err[0].message.contains("YAML syntax error"),
            "{text:?}: {err:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        // A fixed seed keeps CI reproducible; change it to explore further.
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x006b_7562_6573_696d),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check(&text)?;
    }

    #[test]
    fn edited_scenarios_never_panic(
        cut in 0usize..SCENARIO.len(),
        len in 0usize..12,
        insert in prop::sample::select(vec!["", " ", "\n", ":", "- ", "{", "]", "-1", "x: y\n", "\t", "'", "&a", "*a", "!!int "]),
    ) {
        let mut text: String = SCENARIO.to_string();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, insert);
        check(&text)?;
    }
}
