//! Comparing the spec with what a provider returned.

use serde_json::Value;

/// The spec fields (camelCase, as in the CRD) whose value differs at the provider. Only fields
/// the spec sets are compared: a field left out of the spec is the provider's to choose.
#[derive(Default)]
pub(super) struct Drift(Vec<String>);

impl Drift {
    /// A string field, compared exactly.
    pub fn text(self, field: &str, want: Option<&str>, have: &Value) -> Self {
        self.check(field, want.is_some_and(|w| have.as_str() != Some(w)))
    }

    /// A string field compared case-insensitively (emails, hex colours).
    pub fn text_ci(self, field: &str, want: Option<&str>, have: &Value) -> Self {
        self.check(field, want.is_some_and(|w| !have.as_str().is_some_and(|h| h.eq_ignore_ascii_case(w))))
    }

    /// A number or boolean field.
    pub fn value(self, field: &str, want: Option<Value>, have: &Value) -> Self {
        self.check(field, want.is_some_and(|w| &w != have))
    }

    pub fn check(mut self, field: &str, differs: bool) -> Self {
        if differs {
            self.0.push(field.to_owned());
        }
        self
    }

    pub fn fields(self) -> Vec<String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_fields_the_spec_sets_are_compared() {
        let have = json!({"name": "a", "email": "A@X.io", "limit": 5, "missing": null});
        let fields = Drift::default()
            .text("displayName", Some("a"), &have["name"])
            .text("companyName", None, &have["company"])
            .text_ci("owner.email", Some("a@x.io"), &have["email"])
            .value("rateLimit", Some(json!(5)), &have["limit"])
            .fields();
        assert!(fields.is_empty(), "{fields:?}");
        let fields = Drift::default()
            .text("displayName", Some("b"), &have["name"])
            .text("timezone", Some("UTC"), &have["missing"])
            .value("rateLimit", Some(json!(6)), &have["limit"])
            .fields();
        assert_eq!(fields, ["displayName", "timezone", "rateLimit"]);
    }
}
