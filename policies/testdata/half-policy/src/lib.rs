//! Test-only component that is not a policy: it exports `configure` but neither
//! `check-command` nor `check-forward`, so loading it must be refused with a message naming
//! them.

wit_bindgen::generate!({
    inline: r#"
        package test:half-policy;
        world half {
            export configure: func(settings: list<tuple<string, string>>) -> result<_, string>;
        }
    "#,
});

struct Half;

impl Guest for Half {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
}

export!(Half);
