//! The decoy answers for unknown identities and the fixed-width masks both kinds share.

use crate::normalize;
use crate::otp::Channel;

use super::LoginChallenge;

/// The shape of decoy answers for unknown identities: match your directory's contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecoyShape {
    /// `********NN`, channel SMS (the default).
    Phone,
    /// `x****@domain`, channel email.
    Email {
        /// The domain shown (your users' usual domain).
        domain: String,
    },
}

impl DecoyShape {
    /// The decoy answer for an identity whose keyed hash is `tag`: stable for one identity and
    /// one gate secret, unpredictable without the secret.
    pub(super) fn challenge(&self, tag: &[u8]) -> LoginChallenge {
        let byte = |i: usize| tag.get(i).copied().unwrap_or(0);
        let digits = u16::from_be_bytes([byte(0), byte(1)]) % 100;
        match self {
            DecoyShape::Phone => LoginChallenge {
                masked_destination: format!("********{digits:02}"),
                channel: Channel::Sms,
            },
            DecoyShape::Email { domain } => {
                let first = char::from(b'a' + byte(2) % 26);
                LoginChallenge {
                    masked_destination: format!("{first}****@{domain}"),
                    channel: Channel::Email,
                }
            }
        }
    }
}

/// `********` and the last two digits, whatever the number's length (as seed 000 masks).
pub(super) fn mask_phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits.iter().skip(digits.len().saturating_sub(2)).collect();
    format!("********{tail}")
}

/// The first character of the local part, four stars, the domain (fixed width).
pub(super) fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}****@{domain}")
        }
        None => normalize::mask(address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_have_fixed_width() {
        assert_eq!(mask_phone("+18005554321"), "********21");
        assert_eq!(mask_phone("+33612345678"), "********78");
        assert_eq!(mask_email("mabel@example.com"), "m****@example.com");
        assert_eq!(mask_email("m@example.com"), "m****@example.com");
    }

    #[test]
    fn decoys_have_the_shape_of_real_answers() {
        let phone = DecoyShape::Phone.challenge(&[0, 21, 3]);
        assert_eq!(phone.masked_destination, "********21");
        assert_eq!(phone.channel, Channel::Sms);
        let email = DecoyShape::Email {
            domain: "example.com".into(),
        }
        .challenge(&[0, 0, 2]);
        assert_eq!(email.masked_destination, "c****@example.com");
    }
}
