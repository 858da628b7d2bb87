//! Message templates for codes the self-hosted provider delivers: one default and optional
//! per-locale variants, with `{code}` and `{minutes}` placeholders.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// The text of one message: a body that must contain `{code}`, and an optional subject (used by
/// email senders).
///
/// Placeholders: `{code}` (the one-time code) and `{minutes}` (how long the code stays valid,
/// rounded up to whole minutes).
///
/// ```
/// use keyward::otp::MessageTemplate;
/// let t = MessageTemplate::new("Votre code : {code} (valable {minutes} min)")?
///     .with_subject("Votre code de vérification");
/// assert_eq!(t.body(), "Votre code : {code} (valable {minutes} min)");
/// assert!(MessageTemplate::new("no placeholder").is_err());
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    body: String,
    subject: Option<String>,
    /// How many `{minutes}` placeholders the body holds (so a render knows its length at once).
    minutes_placeholders: usize,
}

impl MessageTemplate {
    /// A template with this body. Fails with [`Config`](crate::ErrorKind::Config) unless the
    /// body contains `{code}` exactly once and is at most 1,600 bytes (ten SMS segments).
    pub fn new(body: impl Into<String>) -> Result<Self> {
        let body = body.into();
        if body.matches("{code}").count() != 1 {
            return Err(Error::config(
                "a message template must contain the {code} placeholder exactly once",
            ));
        }
        if body.len() > 1_600 {
            return Err(Error::config(
                "a message template must be at most 1600 bytes",
            ));
        }
        Ok(MessageTemplate {
            minutes_placeholders: body.matches("{minutes}").count(),
            body,
            subject: None,
        })
    }

    /// Sets the subject line (for email).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The body with its placeholders.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The subject line, if any.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Renders the body for `code`, valid for `minutes`. The result holds the code, so it is a
    /// [`Secret`].
    pub fn render(&self, code: &str, minutes: u64) -> Secret {
        // The exact length first, so the buffer holding the code is allocated once and never
        // reallocated (a reallocation would leave a copy behind).
        let mut digits = [0u8; 20];
        let minutes = crate::decimal::text(minutes, &mut digits);
        // `{code}` once (checked by `new`), `{minutes}` as counted there: placeholders never
        // overlap, so `matches` counts what `fill` replaces.
        let len = self.body.len() - "{code}".len()
            + code.len()
            + self.minutes_placeholders * minutes.len()
            - self.minutes_placeholders * "{minutes}".len();
        let mut text = String::with_capacity(len);
        self.fill(code, minutes, |part| text.push_str(part));
        debug_assert_eq!(text.len(), len);
        Secret::from(text)
    }

    /// Calls `out` with each piece of the rendered body, in order.
    fn fill<'s>(&'s self, code: &'s str, minutes: &'s str, mut out: impl FnMut(&'s str)) {
        let mut rest = self.body.as_str();
        while let Some(at) = rest.find('{') {
            let (before, tail) = rest.split_at(at);
            out(before);
            if let Some(after) = tail.strip_prefix("{code}") {
                out(code);
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{minutes}") {
                out(minutes);
                rest = after;
            } else {
                out("{");
                rest = tail.get(1..).unwrap_or_default();
            }
        }
        out(rest);
    }
}

impl Default for MessageTemplate {
    fn default() -> Self {
        MessageTemplate {
            body: "Your verification code is {code}. It expires in {minutes} minutes.".to_owned(),
            subject: Some("Your verification code".to_owned()),
            minutes_placeholders: 1,
        }
    }
}

/// A default [`MessageTemplate`] plus per-locale variants.
///
/// Lookup for a locale such as `pt-BR`: the exact tag (case-insensitive, `_` and `-` equal), then
/// the language alone (`pt`), then the default.
///
/// ```
/// use keyward::otp::{MessageTemplate, MessageTemplates};
/// let templates = MessageTemplates::default()
///     .with_locale("fr", MessageTemplate::new("Votre code est {code}")?)
///     .with_locale("pt-BR", MessageTemplate::new("Seu código é {code}")?);
/// assert_eq!(templates.for_locale(Some("fr-CA")).body(), "Votre code est {code}");
/// assert_eq!(templates.for_locale(Some("pt_br")).body(), "Seu código é {code}");
/// assert!(templates.for_locale(Some("de")).body().starts_with("Your verification code"));
/// assert!(templates.for_locale(None).body().starts_with("Your verification code"));
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageTemplates {
    default: MessageTemplate,
    by_locale: BTreeMap<String, MessageTemplate>,
}

impl MessageTemplates {
    /// Templates with this default and no locale variants.
    pub fn new(default: MessageTemplate) -> Self {
        MessageTemplates {
            default,
            by_locale: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the template for `locale`.
    pub fn with_locale(mut self, locale: &str, template: MessageTemplate) -> Self {
        self.by_locale.insert(locale_key(locale), template);
        self
    }

    /// The template to use for `locale`.
    pub fn for_locale(&self, locale: Option<&str>) -> &MessageTemplate {
        let Some(locale) = locale else {
            return &self.default;
        };
        let key = locale_key(locale);
        if let Some(t) = self.by_locale.get(&key) {
            return t;
        }
        let language = key.split('-').next().unwrap_or_default();
        self.by_locale.get(language).unwrap_or(&self.default)
    }
}

fn locale_key(locale: &str) -> String {
    locale.trim().replace('_', "-").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_code_and_minutes() {
        let t = MessageTemplate::new("{code} valid {minutes} min").unwrap();
        assert_eq!(
            t.render("123456", 10).expose_str(),
            Some("123456 valid 10 min")
        );
        for minutes in [0, 7, 100, u64::MAX] {
            assert_eq!(
                t.render("123456", minutes).expose_str(),
                Some(format!("123456 valid {minutes} min").as_str())
            );
        }
    }

    #[test]
    fn the_default_is_what_new_builds() {
        let d = MessageTemplate::default();
        let built = MessageTemplate::new(d.body())
            .unwrap()
            .with_subject(d.subject().unwrap());
        assert_eq!(d, built);
    }

    #[test]
    fn other_braces_stay_as_written() {
        let t = MessageTemplate::new("{x} {{code}} {minutes {minutes}}{").unwrap();
        assert_eq!(
            t.render("42", 5).expose_str(),
            Some("{x} {42} {minutes 5}{")
        );
    }

    #[test]
    fn code_placeholder_required_once() {
        assert!(MessageTemplate::new("{code} {code}").is_err());
        assert!(MessageTemplate::new("x".repeat(1_601) + "{code}").is_err());
    }

    #[test]
    fn code_with_braces_is_not_reexpanded() {
        // One pass over the template: what a code holds is never expanded again.
        let t = MessageTemplate::new("{code}/{minutes}").unwrap();
        assert_eq!(
            t.render("ab{minutes}", 3).expose_str(),
            Some("ab{minutes}/3")
        );
    }
}
