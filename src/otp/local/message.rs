//! What the user receives: the message rendered from the templates and the start parameters
//! the self-hosted provider honours (and those it refuses).

use super::LocalOtpProvider;
use super::record::{Record, transaction};
use crate::error::{Error, ErrorKind, Result};
use crate::otp::sender::OutgoingMessage;
use crate::otp::template::MessageTemplate;
use crate::otp::{Channel, StartVerification};
use crate::secret::Secret;

impl LocalOtpProvider {
    /// The message delivering `code` for `record` to `to`, rendered from the templates and the
    /// start parameters (the caller sends it once the record is written).
    pub(super) fn message(
        &self,
        to: &str,
        record: &Record,
        code: Secret,
    ) -> Result<OutgoingMessage> {
        let template = self.config.templates.for_locale(record.locale.as_deref());
        let minutes = self.config.code_ttl.as_secs().div_ceil(60);
        let code_text = code
            .expose_str()
            .ok_or_else(|| Error::storage("code is not text"))?;
        let body = match &record.custom_message {
            Some(text) => MessageTemplate::new(text.clone())?.render(code_text, minutes),
            None => template.render(code_text, minutes),
        };
        let txn = transaction(&record.amount, &record.payee);
        let sms_hash = match (&record.app_hash, &record.channel) {
            (Some(hash), Channel::Sms) => Some(hash),
            _ => None,
        };
        // The rendered template as is, unless a friendly name, a transaction or an app hash
        // changes it.
        let body = if record.friendly_name.is_none() && txn.is_none() && sms_hash.is_none() {
            body
        } else {
            let mut text = body.expose_str().unwrap_or_default().to_owned();
            if let Some(name) = &record.friendly_name {
                if text.contains("{friendly_name}") {
                    text = text.replace("{friendly_name}", name);
                } else {
                    text = format!("{name}: {text}");
                }
            }
            if let Some((amount, payee)) = txn {
                if text.contains("{amount}") || text.contains("{payee}") {
                    text = text.replace("{amount}", amount).replace("{payee}", payee);
                } else {
                    text = format!("{text}\nAmount: {amount}\nPayee: {payee}");
                }
            }
            if let Some(hash) = sms_hash {
                text = format!("{text}\n{hash}");
            }
            Secret::from(text)
        };
        let mut message = OutgoingMessage::new(record.channel.clone(), to.to_owned(), body, code);
        if let Some(subject) = template.subject() {
            message = message.subject(subject);
        }
        Ok(message)
    }
}

/// The start parameters the self-hosted provider honours (locale, friendly name, custom message,
/// PSD2 amount and payee, app hash) are checked; those that only Twilio can act on are refused
/// rather than silently ignored. `DeviceIp` and `Tags` are informational and accepted.
pub(super) fn check_local_parameters(request: &StartVerification) -> Result<()> {
    let unsupported = [
        ("send digits", request.send_digits.is_some()),
        ("rate limits", !request.rate_limits.is_empty()),
        (
            "channel configuration",
            request.channel_configuration.is_some(),
        ),
        ("template sid", request.template_sid.is_some()),
        (
            "template substitutions",
            !request.template_custom_substitutions.is_empty(),
        ),
        ("risk check", request.risk_check.is_some()),
        (
            "sna client token",
            request.enable_sna_client_token.is_some(),
        ),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("the self-hosted provider does not support the {name} parameter"),
        ));
    }
    if let Some(text) = &request.custom_message {
        MessageTemplate::new(text.clone()).map_err(|_| {
            Error::invalid_input("a custom message holds {code} once and is at most 1600 bytes")
        })?;
    }
    for (what, value, max) in [
        ("friendly name", &request.custom_friendly_name, 64),
        ("amount", &request.amount, 64),
        ("payee", &request.payee, 128),
        ("app hash", &request.app_hash, 32),
    ] {
        if let Some(v) = value
            && (v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control))
        {
            return Err(Error::invalid_input(format!(
                "the {what} is empty, too long or holds control characters"
            )));
        }
    }
    if request.amount.is_some() != request.payee.is_some() {
        return Err(Error::invalid_input(
            "a psd2 verification names both the amount and the payee",
        ));
    }
    Ok(())
}
